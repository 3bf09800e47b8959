"""The AJP13 events: read-only values, each validated when it is constructed.

A connection object turns events into bytes (``send``) and bytes into events
(``receive_data``). An invalid event cannot exist: constructing one raises
`LocalProtocolError` (the codec re-raises it as `RemoteProtocolError` when the invalid
value came from the peer). Header names and values, and every string field, are ``bytes``.

Each event is a slotted dataclass (equality, ``repr``, hashing) with a constructor of its
own: the one ``dataclass`` would generate is interpreted Python in the native build, about
1.3 µs for a FORWARD_REQUEST against 0.04 µs compiled. Fields are ``Final``: mypy refuses
an assignment, and the native build raises ``AttributeError`` at run time.

Web server to container: `ForwardRequest`, `RequestBody`, `CPing`.
Container to web server: `SendHeaders`, `SendBodyChunk`, `GetBodyChunk`, `EndResponse`,
`CPong`. Either side: `ConnectionClosed` (the peer closed the connection).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from ajpbalancer.ajp._errors import LocalProtocolError

Headers = tuple[tuple[bytes, bytes], ...]
HeaderFields = Sequence[tuple[bytes, bytes]]
"""What an event's header (or attribute) field is given as: a tuple or a list of pairs;
the event keeps a tuple."""

_TOKEN_BYTE = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN: Final = re.compile(_TOKEN_BYTE + rb"+")
_VERSION: Final = re.compile(rb"HTTP/[0-9]\.[0-9]")
_DIGITS: Final = re.compile(rb"[0-9]+")
# A field value / reason phrase / free text: no control characters except TAB, no DEL.
_TEXT_BAD: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A request path: no control characters, no space, no DEL, no '?' (the query travels apart).
_URI_BAD: Final = re.compile(rb"[\x00-\x20\x7f?]")
# Addresses, names, the query string: visible bytes only.
_VISIBLE_BAD: Final = re.compile(rb"[\x00-\x20\x7f]")
# A PEM certificate (chain): lines, so CR, LF and TAB are allowed; no other controls.
_PEM_BAD: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# The same classes as the patterns above, as translation tables, for the checks on every
# request's and response's path: a table maps each byte its class allows to itself and
# every other byte to another one, so ``value.translate(TABLE) == value`` exactly when the
# value is clean. One pass in C with no table to build (``translate(None, ALLOWED)``
# builds one per call) and no pattern to set up (a regular expression's search does).
def _class_table(allowed: bytes) -> bytes:
    """A translation table keeping the bytes of ``allowed`` and changing every other."""
    return bytes(b if b in allowed else (0x41 if b != 0x41 else 0x42) for b in range(256))


_TOKEN_OK: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TEXT_OK: Final = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
_VISIBLE_OK: Final = bytes([*range(0x21, 0x7F), *range(0x80, 0x100)])
_TOKEN_TABLE: Final = _class_table(_TOKEN_OK)
_TEXT_TABLE: Final = _class_table(_TEXT_OK)
_VISIBLE_TABLE: Final = _class_table(_VISIBLE_OK)
_VERSIONS: Final = frozenset(
    b"HTTP/%d.%d" % (major, minor) for major in range(10) for minor in range(10)
)


def _bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        # A value of the wrong Python type is a TypeError, as the compiled build's typed
        # fields make it; LocalProtocolError is for values the protocol cannot carry.
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    return value


def _shown(value: object) -> str:
    """``value`` for an error message a client may read: bytes as quoted text (escaped
    where not printable ASCII), never as a Python ``b'...'`` literal."""
    if isinstance(value, bytes | bytearray):
        return "'" + bytes(value).decode("ascii", "backslashreplace") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


def _check(name: str, value: object, bad: re.Pattern[bytes]) -> None:
    if bad.search(_bytes(name, value)) is not None:
        raise LocalProtocolError(f"invalid byte in {name}: {_shown(value)}")


def _check_optional(name: str, value: object, bad: re.Pattern[bytes]) -> None:
    if value is not None:
        _check(name, value, bad)


def _uint16(name: str, value: object, low: int = 0, high: int = 0xFFFF) -> None:
    if not isinstance(value, int):  # a bool is an int (True is 1), in both builds
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise LocalProtocolError(f"{name} must be an integer {low}..{high}, not {_shown(value)}")


def _headers(name: str, value: object) -> Headers:
    """Validate a header list; returns it as a tuple of 2-tuples."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of (name, value) pairs")
    out = tuple(value)
    for pair in out:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"{name} must be a tuple of (name, value) pairs")
        hname, hvalue = pair
        if _TOKEN.fullmatch(_bytes("a header name", hname)) is None:
            raise LocalProtocolError(f"invalid header name {_shown(hname)}")
        _check(f"header {_shown(hname)}", hvalue, _TEXT_BAD)
    return out


def _pairs(name: str, value: object) -> Headers:
    """A header (or attribute) list given as a list: the tuple an event keeps. Its pairs
    are checked with the other fields."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of (name, value) pairs")
    return tuple(value)


class Event:
    """Base of every AJP event."""

    __slots__ = ()


# --- Web server to container ------------------------------------------------------------


@dataclass(slots=True, init=False, unsafe_hash=True)
class ForwardRequest(Event):
    """A FORWARD_REQUEST: the request line, the client and server, headers, attributes.

    ``uri`` is the path only (``/...`` or ``*``): no query (it goes in ``query_string``),
    no space, control byte or DEL. ``remote_host`` None is sent as the null string (the
    container may then look the name up itself). ``headers`` go in order, repeated names
    stay separate; at most one ``Content-Length``; ``Transfer-Encoding`` only as
    ``chunked`` and never with a ``Content-Length``. The TLS fields need ``is_ssl``.
    ``request_attributes`` are the ``req_attribute`` (0x0A) name/value pairs, in order.

    Methods outside the AJP method table (PATCH, any extension) are sent as method byte
    0xFF plus the ``stored_method`` attribute; decoding gives the method back here, so
    ``stored_method`` never appears as a field.
    """

    method: Final[bytes]
    protocol: Final[bytes]
    uri: Final[bytes]
    remote_addr: Final[bytes]
    remote_host: Final[bytes | None]
    server_name: Final[bytes]
    server_port: Final[int]
    is_ssl: Final[bool]
    headers: Final[Headers]
    secret: Final[bytes | None]
    remote_user: Final[bytes | None]
    auth_type: Final[bytes | None]
    query_string: Final[bytes | None]
    jvm_route: Final[bytes | None]
    ssl_cert: Final[bytes | None]
    ssl_cipher: Final[bytes | None]
    ssl_session: Final[bytes | None]
    ssl_key_size: Final[int | None]
    request_attributes: Final[Headers]
    _body_length: int | None = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        *,
        method: bytes,
        protocol: bytes = b"HTTP/1.1",
        uri: bytes,
        remote_addr: bytes,
        remote_host: bytes | None = None,
        server_name: bytes,
        server_port: int,
        is_ssl: bool,
        headers: HeaderFields,
        secret: bytes | None = None,
        remote_user: bytes | None = None,
        auth_type: bytes | None = None,
        query_string: bytes | None = None,
        jvm_route: bytes | None = None,
        ssl_cert: bytes | None = None,
        ssl_cipher: bytes | None = None,
        ssl_session: bytes | None = None,
        ssl_key_size: int | None = None,
        request_attributes: HeaderFields = (),
    ) -> None:
        self.method = method
        self.protocol = protocol
        self.uri = uri
        self.remote_addr = remote_addr
        self.remote_host = remote_host
        self.server_name = server_name
        self.server_port = server_port
        self.is_ssl = is_ssl
        self.headers = headers if type(headers) is tuple else _pairs("headers", headers)
        self.secret = secret
        self.remote_user = remote_user
        self.auth_type = auth_type
        self.query_string = query_string
        self.jvm_route = jvm_route
        self.ssl_cert = ssl_cert
        self.ssl_cipher = ssl_cipher
        self.ssl_session = ssl_session
        self.ssl_key_size = ssl_key_size
        self.request_attributes = (
            request_attributes
            if type(request_attributes) is tuple
            else _pairs("request_attributes", request_attributes)
        )
        if not _forward_request_ok(self):
            _check_forward_request(self)
        self._body_length = _body_length(self.headers)

    @property
    def body_length(self) -> int | None:
        """Bytes of request body: the Content-Length, 0 without one, None if chunked."""
        return self._body_length


def _forward_request_ok(r: ForwardRequest) -> bool:
    """True if every field of ``r`` is valid, found with a few joined checks.

    This is every AJP request's hot path: the fields are checked in groups (one type
    check per value as it is collected, one pass per kind of field over the joined
    values) instead of one by one. The byte classes of the checks allow no separator
    character, so a joined value is clean exactly when each part is. False says only
    that something is off: the caller then runs `_check_forward_request`, which names it
    (or, for lists given where tuples are expected, accepts them).
    """
    headers = r.headers
    attributes = r.request_attributes
    port = r.server_port
    method, protocol, uri = r.method, r.protocol, r.uri
    if (
        type(headers) is not tuple
        or type(attributes) is not tuple
        or type(port) is not int
        or not 0 <= port <= 0xFFFF
        or type(r.is_ssl) is not bool
        or type(method) is not bytes
        or type(protocol) is not bytes
        or type(uri) is not bytes
    ):
        return False
    # The method is a token as header names are, and the path is visible bytes without
    # "?": each joins the values of its class, so that one pass checks them all.
    # Field by field, not ``for value in (a, b, ...)``: compiled, that builds a tuple and
    # iterates it through the generic protocol, for every request.
    addr, server = r.remote_addr, r.server_name
    if type(addr) is not bytes or type(server) is not bytes:
        return False
    visible: list[bytes] = [uri, addr, server]
    text: list[bytes] = []
    names: list[bytes] = [method]
    if not (
        _collect(visible, r.remote_host)
        and _collect(visible, r.query_string)
        and _collect(visible, r.ssl_cipher)
        and _collect(visible, r.ssl_session)
        and _collect(text, r.secret)
        and _collect(text, r.remote_user)
        and _collect(text, r.auth_type)
        and _collect(text, r.jvm_route)
    ):
        return False
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            return False
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes or not name:
            return False
        names.append(name)
        text.append(value)
    for pair in attributes:
        if type(pair) is not tuple or len(pair) != 2:
            return False
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes or not name:
            return False
        visible.append(name)
        text.append(value)
    cert = r.ssl_cert
    key_size = r.ssl_key_size
    if (cert is not None and type(cert) is not bytes) or (
        key_size is not None and (type(key_size) is not int or not 0 <= key_size <= 0xFFFF)
    ):
        return False
    if not r.is_ssl and (
        cert is not None
        or r.ssl_cipher is not None
        or r.ssl_session is not None
        or key_size is not None
    ):
        return False
    joined_names = b"".join(names)
    joined_visible = b"".join(visible)
    joined_text = b"".join(text)
    return (
        bool(method)
        and protocol in _VERSIONS
        and (uri.startswith(b"/") or uri == b"*")
        and uri.find(b"?") < 0  # not ``b"?" in``: see h1._body
        and joined_names.translate(_TOKEN_TABLE) == joined_names
        and joined_visible.translate(_VISIBLE_TABLE) == joined_visible
        and joined_text.translate(_TEXT_TABLE) == joined_text
        and (cert is None or _PEM_BAD.search(cert) is None)
    )


def _collect(values: list[bytes], optional: object) -> bool:
    """Add an optional field's value to ``values``; False if it is neither None nor bytes."""
    if optional is None:
        return True
    if type(optional) is not bytes:
        return False
    values.append(optional)
    return True


def _check_forward_request(r: ForwardRequest) -> None:
    """Every field of ``r`` checked in turn: raises naming the first bad one."""
    if _TOKEN.fullmatch(_bytes("method", r.method)) is None:
        raise LocalProtocolError(f"invalid method {_shown(r.method)}")
    if _VERSION.fullmatch(_bytes("protocol", r.protocol)) is None:
        raise LocalProtocolError(f"invalid protocol {_shown(r.protocol)}")
    uri = _bytes("uri", r.uri)
    if not (uri.startswith(b"/") or uri == b"*") or _URI_BAD.search(uri) is not None:
        raise LocalProtocolError(
            f"uri must be a path starting with '/' (or '*'), without a query, spaces "
            f"or control bytes: {_shown(uri)}"
        )
    _check("remote_addr", r.remote_addr, _VISIBLE_BAD)
    _check_optional("remote_host", r.remote_host, _VISIBLE_BAD)
    _check("server_name", r.server_name, _VISIBLE_BAD)
    _uint16("server_port", r.server_port)
    if not isinstance(r.is_ssl, bool):
        raise TypeError(f"is_ssl must be a bool, not {type(r.is_ssl).__name__}")
    _headers("headers", r.headers)
    _check_optional("secret", r.secret, _TEXT_BAD)
    _check_optional("remote_user", r.remote_user, _TEXT_BAD)
    _check_optional("auth_type", r.auth_type, _TEXT_BAD)
    _check_optional("jvm_route", r.jvm_route, _TEXT_BAD)
    _check_optional("query_string", r.query_string, _VISIBLE_BAD)
    _check_optional("ssl_cert", r.ssl_cert, _PEM_BAD)
    _check_optional("ssl_cipher", r.ssl_cipher, _VISIBLE_BAD)
    _check_optional("ssl_session", r.ssl_session, _VISIBLE_BAD)
    if r.ssl_key_size is not None:
        _uint16("ssl_key_size", r.ssl_key_size)
    if not r.is_ssl and (
        r.ssl_cert is not None
        or r.ssl_cipher is not None
        or r.ssl_session is not None
        or r.ssl_key_size is not None
    ):
        raise LocalProtocolError("ssl_cert, ssl_cipher, ssl_session, ssl_key_size need is_ssl")
    for pair in r.request_attributes:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError("request_attributes must be (name, value) pairs")
        aname, avalue = pair
        if not _bytes("a request attribute name", aname) or _VISIBLE_BAD.search(aname):
            raise LocalProtocolError(f"invalid request attribute name {_shown(aname)}")
        _check(f"request attribute {_shown(aname)}", avalue, _TEXT_BAD)


def _body_length(headers: HeaderFields) -> int | None:
    """What the framing headers say; refuses every ambiguous combination (smuggling)."""
    lengths: list[bytes] = []
    encodings: list[bytes] = []
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            lengths.append(value)
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            encodings.append(value)
    if encodings:
        if lengths:
            raise LocalProtocolError(
                "a request cannot have both Content-Length and Transfer-Encoding"
            )
        if len(encodings) > 1 or encodings[0].strip(b" \t").lower() != b"chunked":
            raise LocalProtocolError(
                "Transfer-Encoding other than a single 'chunked' cannot be forwarded: "
                f"{_shown(encodings)}"
            )
        return None
    if not lengths:
        return 0
    if len(lengths) > 1:
        raise LocalProtocolError("a request cannot have more than one Content-Length header")
    value = lengths[0].strip(b" \t")
    if _DIGITS.fullmatch(value) is None:
        raise LocalProtocolError(f"invalid Content-Length {_shown(lengths[0])}")
    return int(value)


@dataclass(slots=True, init=False, unsafe_hash=True)
class RequestBody(Event):
    """A request body packet; empty ``data`` is the end-of-body packet."""

    data: Final[bytes]

    def __init__(self, *, data: bytes) -> None:
        self.data = _bytes("data", data)


@dataclass(slots=True, unsafe_hash=True)
class CPing(Event):
    """CPING: is the container alive? It answers with CPONG."""


# --- Container to web server ------------------------------------------------------------


@dataclass(slots=True, init=False, unsafe_hash=True)
class SendHeaders(Event):
    """SEND_HEADERS: the response status, reason and headers.

    ``status`` is 200..999: AJP13 has no interim (1xx) responses. ``reason`` is never
    empty (Tomcat bug 45026: a null reason crashed mod_jk); a null or empty reason
    received from a container becomes the status digits, which is what Tomcat sends.
    """

    status: Final[int]
    reason: Final[bytes]
    headers: Final[Headers]

    def __init__(self, *, status: int, reason: bytes, headers: HeaderFields) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers if type(headers) is tuple else _pairs("headers", headers)
        if not _send_headers_ok(self):
            _uint16("status", status, 200, 999)
            if not _bytes("reason", reason):
                raise LocalProtocolError("reason must not be empty (send the status digits)")
            _check("reason", reason, _TEXT_BAD)
            _headers("headers", self.headers)


def _send_headers_ok(event: SendHeaders) -> bool:
    """True if every field is valid, found with joined checks (as `_forward_request_ok`:
    every response passes here); False sends the caller to the checks that name it."""
    status, reason, headers = event.status, event.reason, event.headers
    if type(status) is not int or not 200 <= status <= 999 or type(headers) is not tuple:
        return False
    if type(reason) is not bytes or not reason:
        return False
    names: list[bytes] = []
    text = [reason]
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            return False
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes or not name:
            return False
        names.append(name)
        text.append(value)
    joined_text = b"".join(text)
    joined_names = b"".join(names)
    return (
        joined_text.translate(_TEXT_TABLE) == joined_text
        and joined_names.translate(_TOKEN_TABLE) == joined_names
    )


@dataclass(slots=True, init=False, unsafe_hash=True)
class SendBodyChunk(Event):
    """SEND_BODY_CHUNK: response body bytes; empty ``data`` is an explicit flush."""

    data: Final[bytes]

    def __init__(self, *, data: bytes) -> None:
        self.data = _bytes("data", data)


@dataclass(slots=True, init=False, unsafe_hash=True)
class GetBodyChunk(Event):
    """GET_BODY_CHUNK: the container asks for up to ``length`` (1..65535) more body bytes."""

    length: Final[int]

    def __init__(self, *, length: int) -> None:
        _uint16("length", length, 1)
        self.length = length


@dataclass(slots=True, init=False, unsafe_hash=True)
class EndResponse(Event):
    """END_RESPONSE: the response is complete; ``reuse`` says the connection may be reused."""

    reuse: Final[bool]

    def __init__(self, *, reuse: bool) -> None:
        if not isinstance(reuse, bool):
            raise TypeError(f"reuse must be a bool, not {type(reuse).__name__}")
        self.reuse = reuse


@dataclass(slots=True, unsafe_hash=True)
class CPong(Event):
    """CPONG_REPLY: the answer to CPING."""


# --- Either side ------------------------------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)
class ConnectionClosed(Event):
    """The peer closed the connection (``receive_data(b"")``) where that is allowed."""


WIRE_NAMES: Final[dict[type[Event], str]] = {
    ForwardRequest: "FORWARD_REQUEST",
    RequestBody: "request body packet",
    CPing: "CPING",
    SendHeaders: "SEND_HEADERS",
    SendBodyChunk: "SEND_BODY_CHUNK",
    GetBodyChunk: "GET_BODY_CHUNK",
    EndResponse: "END_RESPONSE",
    CPong: "CPONG_REPLY",
    ConnectionClosed: "connection close",
}
"""Each event's message name in the AJP13 documentation (for error messages)."""


def wire_name(event: Event) -> str:
    return WIRE_NAMES.get(type(event), type(event).__name__)
