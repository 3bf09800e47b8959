"""Golden AJP13 packets, written by hand from the protocol document, with their events.

Each constant is one packet (or a short exchange) byte for byte, annotated field by
field; none is produced by the encoder under test. Unit tests check that the codec
encodes the events to exactly these bytes and decodes these bytes to exactly the events.
The request vectors are also meant to be replayed against a real Tomcat (integration
tests): they address the test webapp's ``/app/echo`` and are valid there
(`FORWARD_PATCH_TLS` needs the connector's ``secret="s3cret"`` or no secret at all).
"""

from __future__ import annotations

from ajpbalancer.ajp import (
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
)

# --- Web server to container ------------------------------------------------------------

FORWARD_GET = (
    b"\x12\x34\x00\xae"  # magic 0x1234, payload length 174
    b"\x02"  # FORWARD_REQUEST
    b"\x02"  # method: GET
    b"\x00\x08HTTP/1.1\x00"  # protocol
    b"\x00\x09/app/echo\x00"  # req_uri
    b"\x00\x0b203.0.113.7\x00"  # remote_addr
    b"\xff\xff"  # remote_host: null string, no bytes and no NUL after it
    b"\x00\x0fwww.example.com\x00"  # server_name
    b"\x00\x50"  # server_port 80
    b"\x00"  # is_ssl: false
    b"\x00\x05"  # num_headers
    b"\xa0\x0b\x00\x0fwww.example.com\x00"  # host (code 0xA00B) and its value
    b"\xa0\x0e\x00\x04ajpb\x00"  # user-agent (code 0xA00E)
    b"\x00\x07X-Forty\x00\x00\x017\x00"  # a literal 7-byte name: not content-type
    b"\x00\x08X-Custom\x00\x00\x018\x00"  # a literal 8-byte name: not content-length
    b"\xa0\x01\x00\x03*/*\x00"  # accept (code 0xA001)
    b"\x05\x00\x03q=1\x00"  # query_string
    b"\x06\x00\x05node1\x00"  # jvm_route
    b"\x0a\x00\x0fAJP_REMOTE_PORT\x00\x00\x0554321\x00"  # req_attribute name, value
    b"\xff"  # are_done
)
"""GET /app/echo?q=1 over plain HTTP: coded and literal header names, query, route,
the client port as a request attribute (as mod_proxy_ajp sends it)."""

FORWARD_GET_EVENT = ForwardRequest(
    method=b"GET",
    uri=b"/app/echo",
    remote_addr=b"203.0.113.7",
    server_name=b"www.example.com",
    server_port=80,
    is_ssl=False,
    headers=(
        (b"host", b"www.example.com"),
        (b"user-agent", b"ajpb"),
        (b"X-Forty", b"7"),
        (b"X-Custom", b"8"),
        (b"accept", b"*/*"),
    ),
    query_string=b"q=1",
    jvm_route=b"node1",
    request_attributes=((b"AJP_REMOTE_PORT", b"54321"),),
)
"""`FORWARD_GET` as an event (coded names decode lower-case, as Tomcat names them)."""

FORWARD_PATCH_TLS = (
    b"\x12\x34\x00\xcf"  # payload length 207
    b"\x02"  # FORWARD_REQUEST
    b"\xff"  # method: SC_M_JK_STORED (PATCH is not in the method table)
    b"\x00\x08HTTP/1.1\x00"  # protocol
    b"\x00\x09/app/echo\x00"  # req_uri
    b"\x00\x09192.0.2.1\x00"  # remote_addr
    b"\x00\x00\x00"  # remote_host: the empty string (not null)
    b"\x00\x0esecure.example\x00"  # server_name
    b"\x01\xbb"  # server_port 443
    b"\x01"  # is_ssl: true
    b"\x00\x03"  # num_headers
    b"\xa0\x08\x00\x015\x00"  # content-length: 5
    b"\xa0\x07\x00\x0atext/plain\x00"  # content-type
    b"\xa0\x0b\x00\x0esecure.example\x00"  # host
    b"\x0c\x00\x06s3cret\x00"  # secret (first, as mod_proxy_ajp sends it)
    b"\x03\x00\x05alice\x00"  # remote_user
    b"\x04\x00\x05Basic\x00"  # auth_type
    b"\x08\x00\x16TLS_AES_128_GCM_SHA256\x00"  # ssl_cipher
    b"\x09\x00\x04abcd\x00"  # ssl_session
    b"\x0b\x00\x80"  # ssl_key_size 128: a uint16, not a string
    b"\x0d\x00\x05PATCH\x00"  # stored_method
    b"\x0a\x00\x10AJP_SSL_PROTOCOL\x00\x00\x07TLSv1.3\x00"  # req_attribute name, value
    b"\xff"  # are_done
)
"""PATCH over TLS with a secret, user, cipher, session and key size; its Content-Length
is 5, so `BODY_HELLO` follows it unasked."""

FORWARD_PATCH_TLS_EVENT = ForwardRequest(
    method=b"PATCH",
    uri=b"/app/echo",
    remote_addr=b"192.0.2.1",
    remote_host=b"",
    server_name=b"secure.example",
    server_port=443,
    is_ssl=True,
    headers=(
        (b"content-length", b"5"),
        (b"content-type", b"text/plain"),
        (b"host", b"secure.example"),
    ),
    secret=b"s3cret",
    remote_user=b"alice",
    auth_type=b"Basic",
    ssl_cipher=b"TLS_AES_128_GCM_SHA256",
    ssl_session=b"abcd",
    ssl_key_size=128,
    request_attributes=((b"AJP_SSL_PROTOCOL", b"TLSv1.3"),),
)

FORWARD_HEAD_CERT = (
    b"\x12\x34\x00\x77"  # payload length 119
    b"\x02"  # FORWARD_REQUEST
    b"\x03"  # method: HEAD
    b"\x00\x08HTTP/1.0\x00"  # protocol
    b"\x00\x01/\x00"  # req_uri
    b"\x00\x03::1\x00"  # remote_addr
    b"\xff\xff"  # remote_host: null
    b"\x00\x09localhost\x00"  # server_name
    b"\x20\xfb"  # server_port 8443
    b"\x01"  # is_ssl
    b"\x00\x00"  # no headers
    b"\x05\x00\x00\x00"  # query_string: empty ("/?")
    b"\x06\x00\x02n2\x00"  # jvm_route
    b"\x07\x00\x3b"  # ssl_cert, 59 bytes of PEM (a placeholder, not a real certificate)
    b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n\x00"
    b"\x0b\x01\x00"  # ssl_key_size 256
    b"\xff"  # are_done
)
"""HEAD / over TLS with a client certificate (PEM lines keep their LFs) and an empty
query string. The certificate is a placeholder: Tomcat logs an error if asked to parse it."""

FORWARD_HEAD_CERT_EVENT = ForwardRequest(
    method=b"HEAD",
    protocol=b"HTTP/1.0",
    uri=b"/",
    remote_addr=b"::1",
    server_name=b"localhost",
    server_port=8443,
    is_ssl=True,
    headers=(),
    query_string=b"",
    jvm_route=b"n2",
    ssl_cert=b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    ssl_key_size=256,
)

BODY_HELLO = (
    b"\x12\x34\x00\x07"  # magic, payload length 7
    b"\x00\x05"  # chunk length 5
    b"hello"  # the bytes
)
"""A request body packet: length n+2, then n, then the bytes; no type byte, no NUL."""
BODY_HELLO_EVENT = RequestBody(data=b"hello")

END_OF_BODY = b"\x12\x34\x00\x00"
"""The end-of-body packet as the protocol document writes it (what the codec sends)."""
END_OF_BODY_HTTPD = b"\x12\x34\x00\x02\x00\x00"
"""The end-of-body packet as httpd's ``ajp_send_data_msg`` writes it (a 0-byte chunk)."""
END_OF_BODY_EVENT = RequestBody(data=b"")

CPING = b"\x12\x34\x00\x01\x0a"
"""CPING (type 10)."""
CPING_EVENT = CPing()

# --- Container to web server ------------------------------------------------------------

CPONG = b"\x41\x42\x00\x01\x09"
"""CPONG_REPLY (type 9), magic "AB"."""
CPONG_EVENT = CPong()

SEND_HEADERS_200 = (
    b"AB\x00\x4d"  # magic "AB", payload length 77
    b"\x04"  # SEND_HEADERS
    b"\x00\xc8"  # status 200
    b"\x00\x03200\x00"  # reason: Tomcat sends the status digits
    b"\x00\x06"  # num_headers
    b"\xa0\x01\x00\x0atext/plain\x00"  # Content-Type (code 0xA001)
    b"\xa0\x03\x00\x015\x00"  # Content-Length (code 0xA003)
    b"\x00\x07X-Seven\x00\x00\x017\x00"  # a literal 7-byte name
    b"\x00\x08X-Custom\x00\x00\x018\x00"  # a literal 8-byte name
    b"\xa0\x07\x00\x03a=1\x00"  # Set-Cookie (code 0xA007)
    b"\xa0\x07\x00\x03b=2\x00"  # Set-Cookie again: a separate header
)
"""200 with coded and literal names and two Set-Cookie headers."""
SEND_HEADERS_200_EVENT = SendHeaders(
    status=200,
    reason=b"200",
    headers=(
        (b"Content-Type", b"text/plain"),
        (b"Content-Length", b"5"),
        (b"X-Seven", b"7"),
        (b"X-Custom", b"8"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ),
)

SEND_HEADERS_404_NULL_REASON = (
    b"AB\x00\x07"  # payload length 7
    b"\x04"  # SEND_HEADERS
    b"\x01\x94"  # status 404
    b"\xff\xff"  # reason: null
    b"\x00\x00"  # no headers
)
"""404 with a null reason phrase and no headers (the reason becomes ``b"404"``)."""
SEND_HEADERS_404_EVENT = SendHeaders(status=404, reason=b"404", headers=())

SEND_BODY_CHUNK_HELLO = (
    b"AB\x00\x09"  # payload length 9
    b"\x03"  # SEND_BODY_CHUNK
    b"\x00\x05"  # chunk length 5
    b"hello"  # the bytes
    b"\x00"  # NUL, not counted in the chunk length
)
"""SEND_BODY_CHUNK: type, chunk length, bytes, and a NUL that the length does not count."""
SEND_BODY_CHUNK_HELLO_EVENT = SendBodyChunk(data=b"hello")

FLUSH = (
    b"AB\x00\x04"  # payload length 4
    b"\x03"  # SEND_BODY_CHUNK
    b"\x00\x00"  # chunk length 0
    b"\x00"  # NUL
)
"""A zero-length SEND_BODY_CHUNK: an explicit flush, never the end of the response."""
FLUSH_EVENT = SendBodyChunk(data=b"")

GET_BODY_CHUNK_8186 = b"AB\x00\x03\x06\x1f\xfa"  # length 3, GET_BODY_CHUNK, 8186
"""GET_BODY_CHUNK for 8186 bytes (packet size 8192 - 6), what Tomcat asks for."""
GET_BODY_CHUNK_8186_EVENT = GetBodyChunk(length=8186)

GET_BODY_CHUNK_65535 = b"AB\x00\x03\x06\xff\xff"  # length 3, GET_BODY_CHUNK, 65535
"""GET_BODY_CHUNK for 65535 bytes (flup asks that much): the answer is capped."""
GET_BODY_CHUNK_65535_EVENT = GetBodyChunk(length=65535)

END_RESPONSE_REUSE = b"AB\x00\x02\x05\x01"  # length 2, END_RESPONSE, reuse 1
"""END_RESPONSE, the connection may be reused."""
END_RESPONSE_REUSE_EVENT = EndResponse(reuse=True)

END_RESPONSE_CLOSE = b"AB\x00\x02\x05\x00"  # length 2, END_RESPONSE, reuse 0
"""END_RESPONSE, the connection must be closed."""
END_RESPONSE_CLOSE_EVENT = EndResponse(reuse=False)

REQUEST_VECTORS = (
    (FORWARD_GET, FORWARD_GET_EVENT),
    (FORWARD_PATCH_TLS, FORWARD_PATCH_TLS_EVENT),
    (FORWARD_HEAD_CERT, FORWARD_HEAD_CERT_EVENT),
)
"""The FORWARD_REQUEST vectors and their events."""
