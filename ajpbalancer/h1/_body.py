"""Message body framing for HTTP/1.1: decide how a body is delimited, and read it.

Readers are incremental and sans-I/O: ``feed(data)`` returns the body pieces found in
``data`` and, once the body has ended, the bytes that followed it (the next message).
They buffer only what a framing line needs (a chunk-size line, a trailer field), each
with a limit, never the body itself.
"""

from __future__ import annotations

import re
from typing import NoReturn, Protocol

from ajpbalancer.h1._errors import HTTPProtocolError
from ajpbalancer.h1._events import BodyMode
from ajpbalancer.h1._head import RequestHead, ResponseHead, header_values

_DIGITS = re.compile(rb"[0-9]{1,18}")
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"|\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*\"))?)*)"
)
# A trailer field line is a header field line (RFC 9112 §7.1.2): a token name, a colon,
# a value without control characters other than HTAB.
_TRAILER_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*")
MAX_CHUNK_LINE = 4096
MAX_TRAILER = 8192


class BodyReader(Protocol):
    """What every framing reader does."""

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        """Body pieces in ``data``; then None while the body goes on, else what follows it."""
        ...

    def eof(self) -> None:
        """The peer closed: raise if that cut the body short."""
        ...


class ContentLengthReader:
    __slots__ = ("_status", "remaining")

    def __init__(self, length: int, status: int) -> None:
        self.remaining = length
        self._status = status

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        n = self.remaining
        if len(data) < n:
            self.remaining = n - len(data)
            return ([data] if data else []), None
        self.remaining = 0
        return ([data[:n]] if n else []), data[n:]

    def eof(self) -> None:
        if self.remaining:
            raise HTTPProtocolError("connection closed inside the body", self._status)


class CloseDelimitedReader:
    """A response body that ends when the member closes the connection."""

    __slots__ = ()

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        return ([data] if data else []), None

    def eof(self) -> None:
        return None


_SIZE, _DATA, _DATA_CRLF, _TRAILER, _DONE = range(5)


class ChunkedReader:
    """Decodes ``Transfer-Encoding: chunked``; chunk extensions and trailers are dropped."""

    __slots__ = ("_line", "_remaining", "_state", "_status", "_trailer_bytes")

    def __init__(self, status: int) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._line = b""
        self._trailer_bytes = 0
        self._status = status

    def _error(self, message: str) -> HTTPProtocolError:
        return HTTPProtocolError(message, self._status)

    def _take_line(self, data: bytes, pos: int, limit: int) -> tuple[bytes | None, int]:
        end = data.find(b"\n", pos)
        if end < 0:
            self._line += data[pos:]
            if len(self._line) > limit + 1:  # + 1: the CR of a CRLF whose LF is still to come
                raise self._error("chunked framing line too long")
            return None, len(data)
        line = self._line + data[pos : end + 1]
        self._line = b""
        if len(line) > limit + 2:
            raise self._error("chunked framing line too long")
        # find, not ``b"\r" in``: bytes' ``in`` first tries its operand as an integer
        # and pays for the TypeError (about 2,000 instructions each time).
        if not line.endswith(b"\r\n") or line.find(b"\r", 0, len(line) - 2) >= 0:
            raise self._error("bare CR or LF in chunked framing")
        return line[:-2], end + 1

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        pieces: list[bytes] = []
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, n - pos)
                pieces.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_CRLF
            elif state == _SIZE:
                line, pos = self._take_line(data, pos, MAX_CHUNK_LINE)
                if line is None:
                    break
                m = _CHUNK_LINE.fullmatch(line)
                if m is None:
                    raise self._error("invalid chunk size line")
                size = int(m.group(1), 16)
                if size:
                    self._remaining = size
                    self._state = _DATA
                else:
                    self._state = _TRAILER
            elif state == _DATA_CRLF:
                line, pos = self._take_line(data, pos, 0)
                if line is None:
                    break
                if line:
                    raise self._error("chunk data longer than its size")
                self._state = _SIZE
            elif state == _TRAILER:
                line, pos = self._take_line(data, pos, MAX_TRAILER)
                if line is None:
                    break
                if not line:
                    self._state = _DONE
                    return pieces, data[pos:]
                self._trailer_bytes += len(line)
                if self._trailer_bytes > MAX_TRAILER or _TRAILER_FIELD.fullmatch(line) is None:
                    raise self._error("invalid or oversized trailer")
            else:  # _DONE: callers stop feeding once the body ended
                return pieces, data[pos:]
        return pieces, None

    def eof(self) -> None:
        if self._state != _DONE:
            raise self._error("connection closed inside a chunked body")


def _content_length(headers: list[tuple[bytes, bytes]], status: int) -> int | None:
    values = header_values(headers, b"content-length")
    if not values:
        if any(name.lower() == b"content-length" for name, _ in headers):
            raise HTTPProtocolError("empty Content-Length", status)
        return None
    first = values[0]
    for v in values:
        if v != first:
            raise HTTPProtocolError("conflicting Content-Length values", status)
    if _DIGITS.fullmatch(first) is None:
        raise HTTPProtocolError("invalid Content-Length", status)
    return int(first)


def _is_chunked(headers: list[tuple[bytes, bytes]], status: int) -> bool | None:
    """True for exactly ``chunked``, None when absent; other codings are refused."""
    present = any(name.lower() == b"transfer-encoding" for name, _ in headers)
    if not present:
        return None
    codings = [c.lower() for c in header_values(headers, b"transfer-encoding")]
    if codings == [b"chunked"]:
        return True
    _check_codings(codings, status)


def _check_codings(codings: list[bytes], status: int) -> NoReturn:
    """Raise the right error for a Transfer-Encoding list other than exactly chunked."""
    if codings.count(b"chunked") > 1:
        raise HTTPProtocolError("chunked applied more than once", status)
    if codings and codings[-1] == b"chunked":
        # A coding under chunked (gzip, chunked) is valid HTTP but not something we
        # forward to members that cannot be asked whether they accept it.
        raise HTTPProtocolError(
            "transfer codings other than chunked", 501 if status < 500 else status
        )
    raise HTTPProtocolError("Transfer-Encoding must end with chunked", status)


def request_framing(
    version: bytes, lengths: list[bytes], codings: list[bytes]
) -> tuple[BodyMode, int | None]:
    """How a request's body is delimited, from the values of its ``Content-Length`` and
    ``Transfer-Encoding`` fields (``lengths``, ``codings``: one entry per field line).

    Stricter than for responses, as Apache 2.4 is with requests: a single Content-Length
    field of digits only (two fields, even equal, a list such as ``5, 5``, an empty or
    ``5,`` value are refused); Transfer-Encoding exactly ``chunked`` (an empty field or
    list element, other codings, chunked twice are refused); never both; none on
    HTTP/1.0. Every refusal is a 400 (501 for codings we do not forward): these are the
    shapes request smuggling relies on.
    """
    if codings:
        if any(not c.strip(b" \t") for c in codings):
            raise HTTPProtocolError("empty Transfer-Encoding", 400)
        tokens = [t.strip(b" \t").lower() for c in codings for t in c.split(b",")]
        if b"" in tokens:
            raise HTTPProtocolError("empty element in Transfer-Encoding", 400)
        if tokens != [b"chunked"]:
            _check_codings(tokens, 400)
        if lengths:
            raise HTTPProtocolError("both Content-Length and Transfer-Encoding", 400)
        if version == b"HTTP/1.0":
            raise HTTPProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)
        return BodyMode.CHUNKED, None
    if not lengths:
        return BodyMode.NONE, None
    if len(lengths) > 1:
        raise HTTPProtocolError("more than one Content-Length field", 400)
    value = lengths[0]
    if _DIGITS.fullmatch(value) is None:
        raise HTTPProtocolError("invalid Content-Length", 400)
    length = int(value)
    return (BodyMode.LENGTH if length else BodyMode.NONE), length


def request_body_reader(head: RequestHead) -> tuple[BodyReader | None, int | None]:
    """The reader for a request's body (None: no body) and its declared length (see
    :func:`request_framing` for what is refused)."""
    lengths = [v for n, v in head.headers if n.lower() == b"content-length"]
    codings = [v for n, v in head.headers if n.lower() == b"transfer-encoding"]
    mode, length = request_framing(head.version, lengths, codings)
    return body_reader(mode, length, 400), length


def body_reader(mode: BodyMode, length: int | None, status: int) -> BodyReader | None:
    """A reader for a body framed as ``mode``; ``status`` is the answer to a bad one."""
    if mode is BodyMode.CHUNKED:
        return ChunkedReader(status)
    if mode is BodyMode.LENGTH:
        assert length is not None
        return ContentLengthReader(length, status)
    return None


def response_body_reader(
    head: ResponseHead, request_method: bytes, lnames: list[bytes] | None = None
) -> tuple[BodyReader | None, int | None]:
    """The reader for a member's response body (None: no body) and its declared length.

    ``lnames``: the head's field names in lower case, when the caller has them already."""
    status = head.status
    if lnames is None:
        lnames = [name.lower() for name, _ in head.headers]
    chunked = _is_chunked(head.headers, 502) if b"transfer-encoding" in lnames else None
    length = _content_length(head.headers, 502) if b"content-length" in lnames else None
    if chunked and length is not None:
        raise HTTPProtocolError("member sent both Content-Length and Transfer-Encoding", 502)
    if request_method == b"HEAD" or status < 200 or status in (204, 304):
        return None, length
    if chunked:
        return ChunkedReader(502), None
    if length is not None:
        return (ContentLengthReader(length, 502) if length else None), length
    return CloseDelimitedReader(), None
