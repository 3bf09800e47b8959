"""Parse and serialise HTTP/1.1 message heads (request and response), strictly.

A head is everything up to and including the empty line. Parsing is strict in the way a
security boundary must be (RFC 9110/9112): no bare CR or LF, no obs-fold, header names
are tokens with no whitespace before the colon, values carry no control characters,
request-targets carry no space or control characters. Whatever is doubtful is an error,
never a guess. Header names and values stay ``bytes``; repeated fields stay separate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ajpbalancer.h1._errors import HTTPProtocolError

Headers = list[tuple[bytes, bytes]]

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110 §5.6.2 token."""
_FIELD_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"[\x21\x22\x24-\x7e]+")  # visible ASCII except "#" (no fragments)
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_STATUS = re.compile(rb"[0-9]{3}")
_OWS = b" \t"


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Size limits on a message head; Apache's defaults (LimitRequestLine and friends)."""

    max_line: int = 8190
    max_field: int = 8190
    max_fields: int = 100

    @property
    def max_head(self) -> int:
        """Largest possible head in bytes: the line, the fields and their CRLFs."""
        return self.max_line + 2 + self.max_fields * (self.max_field + 2) + 2


DEFAULT_LIMITS = HeadLimits()


@dataclass(slots=True, init=False)
class RequestHead:
    """A parsed request line and header fields (names as sent, values without OWS).

    A constructor of its own: compiled, where ``dataclass`` would generate an interpreted
    one (see :mod:`ajpbalancer.ajp._events`)."""

    method: bytes
    target: bytes
    version: bytes
    headers: Headers

    def __init__(self, method: bytes, target: bytes, version: bytes, headers: Headers) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    def get(self, lname: bytes) -> bytes | None:
        """The first value of the field named ``lname`` (lower-case), or None."""
        return header_get(self.headers, lname)


@dataclass(slots=True, init=False)
class ResponseHead:
    """A parsed status line and header fields (a constructor of its own, as above)."""

    version: bytes
    status: int
    reason: bytes
    headers: Headers

    def __init__(self, version: bytes, status: int, reason: bytes, headers: Headers) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers

    def get(self, lname: bytes) -> bytes | None:
        return header_get(self.headers, lname)


def header_get(headers: Headers, lname: bytes) -> bytes | None:
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None


def header_values(headers: Headers, lname: bytes) -> list[bytes]:
    """Every value of the fields named ``lname``, split on commas, stripped, non-empty."""
    out: list[bytes] = []
    for name, value in headers:
        if name.lower() == lname:
            out.extend(v.strip(_OWS) for v in value.split(b",") if v.strip(_OWS))
    return out


def find_head_end(buf: bytes | bytearray, limit: int, status: int) -> int:
    """Index just past the head's empty line in ``buf``, or -1 if more data is needed.

    Raises when no head ends within ``limit`` bytes (``status`` is the answer to give).
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > limit:
            raise HTTPProtocolError("message head too large", status)
        return -1
    if end + 4 > limit:
        raise HTTPProtocolError("message head too large", status)
    return end + 4


def _parse_fields(lines: list[bytes], limits: HeadLimits, remote_status: int) -> Headers:
    if len(lines) > limits.max_fields:
        raise HTTPProtocolError("too many header fields", 431 if remote_status < 500 else 502)
    headers: Headers = []
    for line in lines:
        if len(line) > limits.max_field:
            raise HTTPProtocolError("header field too long", 431 if remote_status < 500 else 502)
        if not line or line[0] in _OWS:
            raise HTTPProtocolError("obsolete line folding is not allowed", remote_status)
        name, colon, value = line.partition(b":")
        if not colon or TOKEN.fullmatch(name) is None:
            raise HTTPProtocolError("invalid header field name", remote_status)
        value = value.strip(_OWS)
        if _FIELD_VALUE_BAD.search(value) is not None:
            raise HTTPProtocolError("invalid header field value", remote_status)
        headers.append((name, value))
    return headers


def _split_lines(head: bytes, remote_status: int) -> list[bytes]:
    body = head[:-4] if head.endswith(b"\r\n\r\n") else head
    lines = body.split(b"\r\n")
    for line in lines:
        if b"\r" in line or b"\n" in line:
            raise HTTPProtocolError("bare CR or LF in message head", remote_status)
    return lines


# The fast path of :func:`parse_request_head`: a valid head is recognised by two regular
# expressions (the request line, then all field lines at once) and its fields extracted
# by a third, in C. Anything they do not accept goes through the line-by-line parser,
# which finds the problem and says what it is; so the fast path decides nothing alone.
_TCHARS = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_VCHARS = rb"\x21-\x7e\x80-\xff"
_FAST_STATUS_LINE = re.compile(
    rb"(HTTP/1\.[0-9]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?\r\n"
)
_FAST_REQUEST_LINE = re.compile(
    rb"([" + _TCHARS + rb"]+) ([\x21\x22\x24-\x7e]+) (HTTP/1\.[01])\r\n"
)


def _field_line(group: bytes) -> bytes:
    """A field line: a token, a colon, optional whitespace, a value of visible bytes with
    inner runs of SP/HTAB (never first or last), optional whitespace, CRLF. ``group``
    opens the name's and the value's groups: ``b"("`` captures them, ``b"(?:"`` not."""
    value = rb"(?:[" + _VCHARS + rb"]+(?:[ \t]+[" + _VCHARS + rb"]+)*)?"
    return group + rb"[" + _TCHARS + rb"]+):[ \t]*" + group + value + rb")[ \t]*\r\n"


_FIELD_LINES = re.compile(rb"(?:" + _field_line(rb"(?:") + rb")*")
_FIELD_FINDER = re.compile(_field_line(rb"("))


def _fast_fields(head: bytes, start: int, limits: HeadLimits) -> Headers | None:
    """The field lines of ``head`` from ``start`` (up to its final CRLF) if they are
    certainly valid and within the limits, else None (the line parser decides)."""
    stop = len(head) - 2
    if start == stop:
        return []
    if stop - start <= limits.max_field and _FIELD_LINES.fullmatch(head, start, stop):
        headers: Headers = _FIELD_FINDER.findall(head, start, stop)
        if len(headers) <= limits.max_fields:
            return headers
    return None


def parse_request_head(head: bytes, limits: HeadLimits = DEFAULT_LIMITS) -> RequestHead:
    """Parse a request head (as found by :func:`find_head_end`)."""
    m = _FAST_REQUEST_LINE.match(head)
    if m is not None and m.end() - 2 <= limits.max_line and head.endswith(b"\r\n\r\n"):
        headers = _fast_fields(head, m.end(), limits)
        if headers is not None:
            return RequestHead(m.group(1), m.group(2), m.group(3), headers)
    return _parse_request_head_by_line(head, limits)


def _parse_request_head_by_line(head: bytes, limits: HeadLimits) -> RequestHead:
    lines = _split_lines(head, 400)
    method, target, version = parse_request_line(lines[0], limits)
    return RequestHead(method, target, version, _parse_fields(lines[1:], limits, 400))


def parse_request_line(
    line: bytes, limits: HeadLimits = DEFAULT_LIMITS
) -> tuple[bytes, bytes, bytes]:
    """Method, target and version of a request line (without its CRLF), strictly.

    An HTTP/0.9 line (no version) is 400; a version other than 1.x (the HTTP/2 preface)
    is 505.
    """
    if len(line) > limits.max_line:
        raise HTTPProtocolError("request line too long", 414)
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HTTPProtocolError("malformed request line", 400)
    method, target, version = parts
    if TOKEN.fullmatch(method) is None:
        raise HTTPProtocolError("invalid method", 400)
    if _TARGET.fullmatch(target) is None:
        raise HTTPProtocolError("invalid request target", 400)
    if _VERSION.fullmatch(version) is None:
        raise HTTPProtocolError("invalid HTTP version", 400)
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HTTPProtocolError("HTTP version not supported", 505)
    return method, target, version


def parse_response_head(head: bytes, limits: HeadLimits = DEFAULT_LIMITS) -> ResponseHead:
    """Parse a member's response head; every problem is the member's (502)."""
    m = _FAST_STATUS_LINE.match(head)
    if m is not None and m.end() - 2 <= limits.max_line and head.endswith(b"\r\n\r\n"):
        headers = _fast_fields(head, m.end(), limits)
        if headers is not None:
            return ResponseHead(m.group(1), int(m.group(2)), m.group(3) or b"", headers)
    return _parse_response_head_by_line(head, limits)


def _parse_response_head_by_line(head: bytes, limits: HeadLimits) -> ResponseHead:
    lines = _split_lines(head, 502)
    line = lines[0]
    if len(line) > limits.max_line:
        raise HTTPProtocolError("status line too long", 502)
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if _VERSION.fullmatch(version) is None or not version.startswith(b"HTTP/1."):
        raise HTTPProtocolError("invalid status line from member", 502)
    if _STATUS.fullmatch(code) is None or int(code) < 100:
        raise HTTPProtocolError("invalid status code from member", 502)
    if _FIELD_VALUE_BAD.search(reason) is not None:
        raise HTTPProtocolError("invalid reason phrase from member", 502)
    return ResponseHead(version, int(code), reason, _parse_fields(lines[1:], limits, 502))


def serialize_request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def serialize_response_head(version: bytes, status: int, reason: bytes, headers: Headers) -> bytes:
    parts = [version, b" %d " % status, reason, b"\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
