"""Each AJP13 message as bytes: encoders from events, decoders from packet payloads.

The encoders write exactly what mod_proxy_ajp (``ajp_marshal_into_msgb``, web server
side) and Tomcat's ``AjpProcessor`` (container side) write. The decoders accept what
those two write and refuse everything else with `RemoteProtocolError`: unknown codes,
strings without their NUL, null strings where a value is required, counts that disagree
with the bytes, trailing bytes. Whether a message is allowed *now* is not decided here
but by the connection's state machine.
"""

from __future__ import annotations

from struct import Struct
from struct import error as struct_error
from typing import Final

from ajpbalancer.ajp._constants import (
    ATTR_ARE_DONE,
    ATTR_AUTH_TYPE,
    ATTR_CONTEXT,
    ATTR_JVM_ROUTE,
    ATTR_QUERY_STRING,
    ATTR_REMOTE_USER,
    ATTR_REQ_ATTRIBUTE,
    ATTR_SECRET,
    ATTR_SERVLET_PATH,
    ATTR_SSL_CERT,
    ATTR_SSL_CIPHER,
    ATTR_SSL_KEY_SIZE,
    ATTR_SSL_SESSION,
    ATTR_STORED_METHOD,
    CPING,
    CPONG_REPLY,
    ENCODED_REQUEST_HEADER_CODES,
    ENCODED_RESPONSE_HEADER_CODES,
    END_RESPONSE,
    FORWARD_REQUEST,
    GET_BODY_CHUNK,
    HEADER_CODE_MASK,
    HEADER_CODE_PREFIX,
    MAGIC_FROM_CONTAINER,
    MAGIC_TO_CONTAINER,
    MESSAGES_TO_CONTAINER,
    METHOD_CODES,
    METHODS_BY_CODE,
    NULL_STRING_LENGTH,
    REQUEST_HEADERS_BY_CODE,
    RESPONSE_HEADERS_BY_CODE,
    SEND_BODY_CHUNK,
    SEND_HEADERS,
    STORED_METHOD,
    STRING_ATTRIBUTES_IN_ORDER,
    U16,
)
from ajpbalancer.ajp._errors import LocalProtocolError, RemoteProtocolError
from ajpbalancer.ajp._events import (
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
)
from ajpbalancer.ajp._packet import PacketWriter, Reader

CPING_PACKET: Final = MAGIC_TO_CONTAINER + b"\x00\x01" + bytes([CPING])
CPONG_PACKET: Final = MAGIC_FROM_CONTAINER + b"\x00\x01" + bytes([CPONG_REPLY])
END_OF_BODY_PACKET: Final = MAGIC_TO_CONTAINER + b"\x00\x00"
"""The end-of-body packet as the AJP13 document writes it (httpd sends ``00 02 00 00``)."""
FLUSH_PACKET: Final = MAGIC_FROM_CONTAINER + b"\x00\x04" + bytes([SEND_BODY_CHUNK, 0, 0, 0])
"""SEND_BODY_CHUNK of no bytes: an explicit flush (Tomcat's ``flushMessageArray``)."""
END_RESPONSE_PACKETS: Final = {
    True: MAGIC_FROM_CONTAINER + b"\x00\x02" + bytes([END_RESPONSE, 1]),
    False: MAGIC_FROM_CONTAINER + b"\x00\x02" + bytes([END_RESPONSE, 0]),
}

_REQUEST_BODY_HEAD: Final = Struct(">2sHH")
_BODY_CHUNK_HEAD: Final = Struct(">2sHBH")
_GET_BODY_CHUNK: Final = Struct(">2sHBH")
_LITERAL_NAME_LIMIT: Final = HEADER_CODE_PREFIX
_BODY_CHUNK_OVERHEAD: Final = 4  # type byte, chunk length, NUL


# --- Web server to container ------------------------------------------------------------


def encode_forward_request(event: ForwardRequest, max_packet_size: int) -> bytes:
    """The FORWARD_REQUEST packet, field for field as ``ajp_marshal_into_msgb`` writes it.

    Raises `LocalProtocolError` with hint 400 if it does not fit in one packet (AJP13 has
    no continuation packet; mod_proxy_ajp answers 400 too). This is the hot path of every
    AJP request: the pieces are collected in a list and joined once (a string is its
    length, its bytes and a NUL), and the size is checked on the whole. A string too long
    to count (65,535 bytes or more) cannot fit a packet either: packing its length fails
    (or the size check does, for exactly 65,535), and that is the same overflow.
    """
    method_code = METHOD_CODES.get(event.method, STORED_METHOD)
    headers = event.headers
    if len(headers) > 0xFFFF:
        raise LocalProtocolError(f"{len(headers)} request headers cannot be counted in AJP13", 400)
    protocol, uri, addr, name = event.protocol, event.uri, event.remote_addr, event.server_name
    host = event.remote_host
    try:
        parts = [
            _FORWARD_HEAD[method_code],
            _length(protocol),
            protocol,
            _NUL,
            _length(uri),
            uri,
            _NUL,
            _length(addr),
            addr,
            _NUL,
            _NULL_STRING if host is None else _length(host) + host + _NUL,
            _length(name),
            name,
            _NUL,
            _PORT_SSL_COUNT.pack(event.server_port, event.is_ssl, len(headers)),
        ]
        names = _ENCODED_NAMES
        for hname, value in headers:
            encoded = names.get(hname)
            if encoded is None:
                encoded = _encoded_name(hname)
            parts += (encoded, _length(value), value, _NUL)
        # The string attributes, in STRING_ATTRIBUTES_IN_ORDER's order (a test holds
        # them to it): named one by one, as a loop over names would look each one up.
        _string_attribute(parts, _SECRET, event.secret)
        _string_attribute(parts, _REMOTE_USER, event.remote_user)
        _string_attribute(parts, _AUTH_TYPE, event.auth_type)
        _string_attribute(parts, _QUERY_STRING, event.query_string)
        _string_attribute(parts, _JVM_ROUTE, event.jvm_route)
        _string_attribute(parts, _SSL_CERT, event.ssl_cert)
        _string_attribute(parts, _SSL_CIPHER, event.ssl_cipher)
        _string_attribute(parts, _SSL_SESSION, event.ssl_session)
        if event.ssl_key_size is not None:
            parts += (_ATTRIBUTE_CODES[ATTR_SSL_KEY_SIZE], _u16_pack(event.ssl_key_size))
        if method_code == STORED_METHOD:
            method = event.method
            parts += (_ATTRIBUTE_CODES[ATTR_STORED_METHOD], _length(method), method, _NUL)
        req_attribute = _ATTRIBUTE_CODES[ATTR_REQ_ATTRIBUTE]
        for aname, value in event.request_attributes:
            parts += (req_attribute, _length(aname), aname, _NUL, _length(value), value, _NUL)
        parts.append(_ARE_DONE)
        payload = b"".join(parts)
        if len(payload) + 4 > max_packet_size:
            raise _request_overflow(max_packet_size)
        return MAGIC_TO_CONTAINER + _length(payload) + payload
    except struct_error:
        raise _request_overflow(max_packet_size) from None


def _string_attribute(parts: list[bytes], code: bytes, string: bytes | None) -> None:
    if string is not None:
        parts += (code, _length(string), string, _NUL)


def _encoded_name(name: bytes) -> bytes:
    """A request header name as a FORWARD_REQUEST carries it: its two-byte code if it has
    one, else the string (length, bytes, NUL). Names seen are kept, up to
    `_ENCODED_NAMES_LIMIT` names of at most `_ENCODED_NAME_MAX` bytes (a few tens of KiB
    at most, whatever clients send): clients send the same few spellings over and over."""
    coded = ENCODED_REQUEST_HEADER_CODES.get(name.lower())
    if coded is not None:
        encoded = coded
    elif len(name) >= _LITERAL_NAME_LIMIT:
        # Its length would read as a header code (0xA0xx) on the other side.
        raise LocalProtocolError(f"a header name of {len(name)} bytes cannot be sent", 400)
    else:
        encoded = _length(name) + name + _NUL
    if len(name) <= _ENCODED_NAME_MAX and len(_ENCODED_NAMES) < _ENCODED_NAMES_LIMIT:
        _ENCODED_NAMES[name] = encoded
    return encoded


def _request_overflow(max_packet_size: int) -> LocalProtocolError:
    return LocalProtocolError(
        f"request headers and attributes do not fit in one AJP packet of {max_packet_size} bytes",
        400,
    )


_FORWARD_HEAD: Final = {code: bytes([FORWARD_REQUEST, code]) for code in range(256)}
_ATTRIBUTE_CODES: Final = {code: bytes([code]) for code in range(256)}
_ARE_DONE: Final = bytes([ATTR_ARE_DONE])
_PORT_SSL_COUNT: Final = Struct(">H?H")
_NULL_STRING: Final = U16.pack(NULL_STRING_LENGTH)
_ENCODED_NAMES: Final[dict[bytes, bytes]] = {}
"""Request header names as sent (any case) → their encoding (see `_encoded_name`)."""
_ENCODED_NAMES_LIMIT: Final = 512
_ENCODED_NAME_MAX: Final = 64
_SECRET: Final = bytes([ATTR_SECRET])
_REMOTE_USER: Final = bytes([ATTR_REMOTE_USER])
_AUTH_TYPE: Final = bytes([ATTR_AUTH_TYPE])
_QUERY_STRING: Final = bytes([ATTR_QUERY_STRING])
_JVM_ROUTE: Final = bytes([ATTR_JVM_ROUTE])
_SSL_CERT: Final = bytes([ATTR_SSL_CERT])
_SSL_CIPHER: Final = bytes([ATTR_SSL_CIPHER])
_SSL_SESSION: Final = bytes([ATTR_SSL_SESSION])
_NUL: Final = b"\x00"
_u16_pack = U16.pack
_SHORT_LENGTHS: Final = [U16.pack(n) for n in range(1024)]


def _length(string: bytes) -> bytes:
    """A string's length as AJP writes it, two bytes big-endian: made once for lengths
    under 1 KiB (most of a request's strings), packed for longer ones, where a length
    of 65,536 or more raises ``struct.error`` as packing it does (an overflow)."""
    n = len(string)
    if n < 1024:
        return _SHORT_LENGTHS[n]
    return _u16_pack(n)


_u16_unpack_from = U16.unpack_from


def encode_request_body(data: bytes) -> bytes:
    """``12 34 | n+2 | n | data`` (no type byte, no NUL); empty data gives ``12 34 00 00``.

    The caller checks ``len(data)`` against the packet size.
    """
    if not data:
        return END_OF_BODY_PACKET
    n = len(data)
    return _REQUEST_BODY_HEAD.pack(MAGIC_TO_CONTAINER, n + 2, n) + data


def decode_request_message(payload: memoryview) -> Event:
    """A packet from the web server that is not body data: FORWARD_REQUEST or CPING."""
    if not payload:
        raise RemoteProtocolError("empty AJP packet where a message was expected")
    kind = payload[0]
    if kind == FORWARD_REQUEST:
        return decode_forward_request(payload)
    if kind == CPING:
        Reader(payload, 1).expect_end("CPING")
        return CPing()
    name = MESSAGES_TO_CONTAINER.get(kind)
    if name is not None:
        raise RemoteProtocolError(f"AJP {name} ({kind}) is not supported")
    raise RemoteProtocolError(f"unknown AJP message type {kind} from the web server")


def decode_forward_request(payload: memoryview) -> ForwardRequest:
    """A FORWARD_REQUEST payload (type byte included) back into its event."""
    r = Reader(payload, 1)
    method_code = r.byte()
    protocol = r.string("protocol")
    uri = r.string("req_uri")
    remote_addr = r.string("remote_addr")
    remote_host = r.optional_string()
    server_name = r.string("server_name")
    server_port = r.uint16()
    is_ssl = r.boolean()
    count = r.uint16()
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(count):
        word = r.peek_uint16()
        if word & HEADER_CODE_MASK == HEADER_CODE_PREFIX:
            r.uint16()
            name = REQUEST_HEADERS_BY_CODE.get(word)
            if name is None:
                raise RemoteProtocolError(f"unknown AJP request header code 0x{word:04X}")
        else:
            name = r.string("header name")
        headers.append((name, r.string("header value")))
    strings: dict[str, bytes] = {}
    names = dict(STRING_ATTRIBUTES_IN_ORDER)
    ssl_key_size: int | None = None
    stored: bytes | None = None
    attributes: list[tuple[bytes, bytes]] = []
    while True:
        code = r.byte()
        if code == ATTR_ARE_DONE:
            break
        if code == ATTR_REQ_ATTRIBUTE:
            attributes.append((r.string("attribute name"), r.string("attribute value")))
        elif code in names:
            if names[code] in strings:
                raise RemoteProtocolError(f"AJP attribute {names[code]} sent twice")
            strings[names[code]] = r.string(names[code])
        elif code == ATTR_SSL_KEY_SIZE:
            if ssl_key_size is not None:
                raise RemoteProtocolError("AJP attribute ssl_key_size sent twice")
            ssl_key_size = r.uint16()
        elif code == ATTR_STORED_METHOD:
            if stored is not None:
                raise RemoteProtocolError("AJP attribute stored_method sent twice")
            stored = r.string("stored_method")
        elif code in (ATTR_CONTEXT, ATTR_SERVLET_PATH):
            r.optional_string()  # unused by every container; read and ignored, as Tomcat does
        else:
            raise RemoteProtocolError(f"unknown AJP attribute code 0x{code:02X}")
    r.expect_end("the FORWARD_REQUEST attributes")
    if method_code == STORED_METHOD:
        if stored is None:
            raise RemoteProtocolError("AJP method 0xFF without a stored_method attribute")
        method = stored
    else:
        if stored is not None:
            raise RemoteProtocolError("AJP stored_method attribute with a coded method")
        coded = METHODS_BY_CODE.get(method_code)
        if coded is None:
            raise RemoteProtocolError(f"unknown AJP method code {method_code}")
        method = coded
    return ForwardRequest(
        method=method,
        protocol=protocol,
        uri=uri,
        remote_addr=remote_addr,
        remote_host=remote_host,
        server_name=server_name,
        server_port=server_port,
        is_ssl=is_ssl,
        headers=tuple(headers),
        ssl_key_size=ssl_key_size,
        request_attributes=tuple(attributes),
        **strings,
    )


def decode_request_body(payload: memoryview) -> RequestBody:
    """A request body packet: empty, or ``uint16 n | n bytes``; ``n == 0`` ends the body too."""
    if not payload:
        return RequestBody(data=b"")
    r = Reader(payload)
    data = r.raw(r.uint16())
    r.expect_end("the request body chunk")
    return RequestBody(data=data)


# --- Container to web server ------------------------------------------------------------


def encode_send_headers(event: SendHeaders, max_packet_size: int) -> bytes:
    """SEND_HEADERS with the known response header names as codes (case-insensitively)."""
    w = PacketWriter(MAGIC_FROM_CONTAINER, max_packet_size, what="response headers")
    w.put_byte(SEND_HEADERS)
    w.put_uint16(event.status)
    w.put_string(event.reason)
    headers = event.headers
    if len(headers) > 0xFFFF:
        raise LocalProtocolError(f"{len(headers)} response headers cannot be counted in AJP13")
    w.put_uint16(len(headers))
    codes = ENCODED_RESPONSE_HEADER_CODES
    for name, value in headers:
        coded = codes.get(name.lower())
        if coded is not None:
            w.put_raw(coded)
        elif len(name) >= _LITERAL_NAME_LIMIT:
            raise LocalProtocolError(f"a header name of {len(name)} bytes cannot be sent")
        else:
            w.put_string(name)
        w.put_string(value)
    return w.finish()


def encode_send_body_chunk(data: bytes) -> bytes:
    """``41 42 | n+4 | 03 | n | data | 00``; the caller keeps ``n`` within the packet size."""
    if not data:
        return FLUSH_PACKET
    n = len(data)
    return b"".join(
        (_BODY_CHUNK_HEAD.pack(MAGIC_FROM_CONTAINER, n + 4, SEND_BODY_CHUNK, n), data, b"\x00")
    )


def encode_get_body_chunk(event: GetBodyChunk) -> bytes:
    return _GET_BODY_CHUNK.pack(MAGIC_FROM_CONTAINER, 3, GET_BODY_CHUNK, event.length)


def decode_response_message(payload: memoryview) -> Event:
    """Any packet from the container."""
    if not payload:
        raise RemoteProtocolError("empty AJP packet from the container")
    kind = payload[0]
    if kind == SEND_BODY_CHUNK:
        # Most packets of a response: the well-formed case here, the rest (with its
        # diagnosis) in decode_send_body_chunk.
        size = len(payload)
        if size >= 4 and payload[-1] == 0 and _u16_unpack_from(payload, 1)[0] == size - 4:
            return SendBodyChunk(data=payload[3:-1].tobytes())
        return decode_send_body_chunk(payload)
    if kind == SEND_HEADERS:
        return decode_send_headers(payload)
    if kind == END_RESPONSE:
        if len(payload) == 2 and payload[1] <= 1:
            return _END_RESPONSE[payload[1]]
        r = Reader(payload, 1)
        reuse = r.boolean()
        r.expect_end("END_RESPONSE")
        return EndResponse(reuse=reuse)
    if kind == GET_BODY_CHUNK:
        r = Reader(payload, 1)
        length = r.uint16()
        r.expect_end("GET_BODY_CHUNK")
        return GetBodyChunk(length=length)
    if kind == CPONG_REPLY:
        Reader(payload, 1).expect_end("CPONG_REPLY")
        return _CPONG
    raise RemoteProtocolError(f"unknown AJP message type {kind} from the container")


_END_RESPONSE: Final = (EndResponse(reuse=False), EndResponse(reuse=True))
_CPONG: Final = CPong()
"""Events without a payload worth copying are values: one instance each serves all."""


def decode_send_body_chunk(payload: memoryview) -> SendBodyChunk:
    """``03 | n | data | 00``; n must be exactly the payload length - 4 (as httpd checks)."""
    if len(payload) < 3:
        Reader(payload, 1).uint16()  # raises: the packet ends inside its length
    (n,) = _u16_unpack_from(payload, 1)
    carried = len(payload) - _BODY_CHUNK_OVERHEAD
    if carried < 0:
        raise RemoteProtocolError("SEND_BODY_CHUNK ends before its NUL terminator")
    if n != carried:
        raise RemoteProtocolError(f"SEND_BODY_CHUNK says {n} bytes, its packet carries {carried}")
    if payload[-1] != 0:
        raise RemoteProtocolError("SEND_BODY_CHUNK is not NUL-terminated")
    return SendBodyChunk(data=payload[3:-1].tobytes())


def decode_send_headers(payload: memoryview) -> SendHeaders:
    """SEND_HEADERS; a null or empty reason becomes the status digits.

    A well-formed packet is read in one pass over a bytes copy (the hot path of every
    response); anything unexpected sends it to the primitive-by-primitive reader, which
    says exactly what is wrong.
    """
    data = payload.tobytes()
    try:
        event = _read_send_headers(data)
    except IndexError:
        event = None
    return event if event is not None else _decode_send_headers_checked(payload)


def _read_send_headers(data: bytes) -> SendHeaders | None:
    """SEND_HEADERS from ``data`` if it is well-formed; None (or an IndexError from
    reading past the end) if anything is off. Two-byte numbers are read byte by byte:
    compiled, that is two loads and a shift, where ``struct`` makes a tuple each time."""
    status = (data[1] << 8) | data[2]
    n = (data[3] << 8) | data[4]
    pos = 5
    if n == NULL_STRING_LENGTH:
        reason = b"%d" % status
    else:
        stop = pos + n
        if data[stop] != 0:
            return None
        reason = data[pos:stop] or b"%d" % status
        pos = stop + 1
    count = (data[pos] << 8) | data[pos + 1]
    pos += 2
    by_code = RESPONSE_HEADERS_BY_CODE
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(count):
        word = (data[pos] << 8) | data[pos + 1]
        if word & HEADER_CODE_MASK == HEADER_CODE_PREFIX:
            name = by_code.get(word)
            if name is None:
                return None
            pos += 2
        else:
            if word == NULL_STRING_LENGTH:
                return None
            stop = pos + 2 + word
            if data[stop] != 0:
                return None
            name = data[pos + 2 : stop]
            pos = stop + 1
        n = (data[pos] << 8) | data[pos + 1]
        if n == NULL_STRING_LENGTH:
            return None
        stop = pos + 2 + n
        if data[stop] != 0:
            return None
        headers.append((name, data[pos + 2 : stop]))
        pos = stop + 1
    if pos != len(data):
        return None
    return SendHeaders(status=status, reason=reason, headers=tuple(headers))


def _decode_send_headers_checked(payload: memoryview) -> SendHeaders:
    """SEND_HEADERS read primitive by primitive: every malformation is named."""
    r = Reader(payload, 1)
    status = r.uint16()
    reason = r.optional_string() or b"%d" % status
    count = r.uint16()
    found: list[tuple[bytes, bytes]] = []
    for _ in range(count):
        word = r.peek_uint16()
        if word & HEADER_CODE_MASK == HEADER_CODE_PREFIX:
            r.uint16()
            name = RESPONSE_HEADERS_BY_CODE.get(word)
            if name is None:
                raise RemoteProtocolError(f"unknown AJP response header code 0x{word:04X}")
        else:
            name = r.string("header name")
        found.append((name, r.string("header value")))
    r.expect_end("the SEND_HEADERS headers")
    return SendHeaders(status=status, reason=reason, headers=tuple(found))
