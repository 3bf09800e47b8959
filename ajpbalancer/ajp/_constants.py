"""The AJP13 code tables, as data: message types, methods, header names, attributes.

Sources: the AJPv13 protocol document (tomcat-connectors ``xdocs/ajp/ajpv13a.xml``),
Tomcat's ``org.apache.coyote.ajp.Constants`` and httpd's ``modules/proxy/ajp.h``. Where
the document and the code disagree the code wins: method 26 is ``BASELINE-CONTROL``
(hyphen, as Tomcat decodes it), integers are unsigned 16-bit (0..65535).
"""

from __future__ import annotations

from struct import Struct
from typing import Final

# --- Packets ----------------------------------------------------------------------------

MAGIC_TO_CONTAINER: Final = b"\x12\x34"
"""The first two bytes of every packet from the web server to the container."""
MAGIC_FROM_CONTAINER: Final = b"AB"
"""The first two bytes of every packet from the container to the web server (0x41 0x42)."""

HEADER_LEN: Final = 4
"""Magic (2 bytes) and payload length (uint16); the length does not count these 4 bytes."""

DEFAULT_MAX_PACKET_SIZE: Final = 8192
"""httpd's ``AJP_MSG_BUFFER_SZ`` and Tomcat's default ``packetSize``."""
MIN_MAX_PACKET_SIZE: Final = 8192
MAX_MAX_PACKET_SIZE: Final = 65536
"""httpd's ``AJP_MAX_BUFFER_SZ``, Tomcat's largest ``packetSize``."""

REQUEST_BODY_OVERHEAD: Final = 6
"""Header (4) and chunk length (2) of a request body packet: max chunk = packet size - 6."""
RESPONSE_BODY_OVERHEAD: Final = 8
"""Header (4), type (1), chunk length (2) and NUL (1) of SEND_BODY_CHUNK: packet size - 8."""

NULL_STRING_LENGTH: Final = 0xFFFF
"""A string length of 0xFFFF means "null": no bytes and no NUL terminator follow."""

U16: Final = Struct(">H")
U16_PAIR: Final = Struct(">HH")
PACKET_HEAD: Final = Struct(">2sH")

# --- Message types ----------------------------------------------------------------------

FORWARD_REQUEST: Final = 2
SHUTDOWN: Final = 7
PING: Final = 8
CPING: Final = 10

SEND_BODY_CHUNK: Final = 3
SEND_HEADERS: Final = 4
END_RESPONSE: Final = 5
GET_BODY_CHUNK: Final = 6
CPONG_REPLY: Final = 9

MESSAGES_TO_CONTAINER: Final[dict[int, str]] = {
    FORWARD_REQUEST: "FORWARD_REQUEST",
    SHUTDOWN: "SHUTDOWN",
    PING: "PING",
    CPING: "CPING",
}
"""Message types the web server sends (a request body packet has no type byte)."""

MESSAGES_FROM_CONTAINER: Final[dict[int, str]] = {
    SEND_BODY_CHUNK: "SEND_BODY_CHUNK",
    SEND_HEADERS: "SEND_HEADERS",
    END_RESPONSE: "END_RESPONSE",
    GET_BODY_CHUNK: "GET_BODY_CHUNK",
    CPONG_REPLY: "CPONG_REPLY",
}
"""Message types the container sends."""

# --- Methods ----------------------------------------------------------------------------

METHOD_CODES: Final[dict[bytes, int]] = {
    b"OPTIONS": 1,
    b"GET": 2,
    b"HEAD": 3,
    b"POST": 4,
    b"PUT": 5,
    b"DELETE": 6,
    b"TRACE": 7,
    b"PROPFIND": 8,
    b"PROPPATCH": 9,
    b"MKCOL": 10,
    b"COPY": 11,
    b"MOVE": 12,
    b"LOCK": 13,
    b"UNLOCK": 14,
    b"ACL": 15,
    b"REPORT": 16,
    b"VERSION-CONTROL": 17,
    b"CHECKIN": 18,
    b"CHECKOUT": 19,
    b"UNCHECKOUT": 20,
    b"SEARCH": 21,
    b"MKWORKSPACE": 22,
    b"UPDATE": 23,
    b"LABEL": 24,
    b"MERGE": 25,
    b"BASELINE-CONTROL": 26,
    b"MKACTIVITY": 27,
}
"""Method byte by method name (case-sensitive, as method names are)."""

METHODS_BY_CODE: Final[dict[int, bytes]] = {code: name for name, code in METHOD_CODES.items()}

STORED_METHOD: Final = 0xFF
"""``SC_M_JK_STORED``: the method is not in the table; attribute 0x0D carries its name."""

# --- Header names -----------------------------------------------------------------------

REQUEST_HEADER_CODES: Final[dict[bytes, int]] = {
    b"accept": 0xA001,
    b"accept-charset": 0xA002,
    b"accept-encoding": 0xA003,
    b"accept-language": 0xA004,
    b"authorization": 0xA005,
    b"connection": 0xA006,
    b"content-type": 0xA007,
    b"content-length": 0xA008,
    b"cookie": 0xA009,
    b"cookie2": 0xA00A,
    b"host": 0xA00B,
    b"pragma": 0xA00C,
    b"referer": 0xA00D,
    b"user-agent": 0xA00E,
}
"""Request header code by lower-case name (names match case-insensitively)."""

REQUEST_HEADERS_BY_CODE: Final[dict[int, bytes]] = {
    code: name for name, code in REQUEST_HEADER_CODES.items()
}
"""Request header name (lower-case, as Tomcat decodes it) by code."""

RESPONSE_HEADERS_BY_CODE: Final[dict[int, bytes]] = {
    0xA001: b"Content-Type",
    0xA002: b"Content-Language",
    0xA003: b"Content-Length",
    0xA004: b"Date",
    0xA005: b"Last-Modified",
    0xA006: b"Location",
    0xA007: b"Set-Cookie",
    0xA008: b"Set-Cookie2",
    0xA009: b"Servlet-Engine",
    0xA00A: b"Status",
    0xA00B: b"WWW-Authenticate",
}
"""Response header name, in its canonical case, by code."""

RESPONSE_HEADER_CODES: Final[dict[bytes, int]] = {
    name.lower(): code for code, name in RESPONSE_HEADERS_BY_CODE.items()
}
"""Response header code by lower-case name."""

HEADER_CODE_MASK: Final = 0xFF00
HEADER_CODE_PREFIX: Final = 0xA000
"""A header name whose first uint16 has high byte 0xA0 is a code, otherwise a string length
(so a literal header name can never be 0xA000 bytes or longer)."""

ENCODED_REQUEST_HEADER_CODES: Final[dict[bytes, bytes]] = {
    name: U16.pack(code) for name, code in REQUEST_HEADER_CODES.items()
}
ENCODED_RESPONSE_HEADER_CODES: Final[dict[bytes, bytes]] = {
    name: U16.pack(code) for name, code in RESPONSE_HEADER_CODES.items()
}

# --- Request attributes -----------------------------------------------------------------

ATTR_CONTEXT: Final = 0x01
ATTR_SERVLET_PATH: Final = 0x02
ATTR_REMOTE_USER: Final = 0x03
ATTR_AUTH_TYPE: Final = 0x04
ATTR_QUERY_STRING: Final = 0x05
ATTR_JVM_ROUTE: Final = 0x06
ATTR_SSL_CERT: Final = 0x07
ATTR_SSL_CIPHER: Final = 0x08
ATTR_SSL_SESSION: Final = 0x09
ATTR_REQ_ATTRIBUTE: Final = 0x0A
ATTR_SSL_KEY_SIZE: Final = 0x0B
ATTR_SECRET: Final = 0x0C
ATTR_STORED_METHOD: Final = 0x0D
ATTR_ARE_DONE: Final = 0xFF

ATTRIBUTE_NAMES: Final[dict[int, str]] = {
    ATTR_CONTEXT: "context",
    ATTR_SERVLET_PATH: "servlet_path",
    ATTR_REMOTE_USER: "remote_user",
    ATTR_AUTH_TYPE: "auth_type",
    ATTR_QUERY_STRING: "query_string",
    ATTR_JVM_ROUTE: "jvm_route",
    ATTR_SSL_CERT: "ssl_cert",
    ATTR_SSL_CIPHER: "ssl_cipher",
    ATTR_SSL_SESSION: "ssl_session",
    ATTR_REQ_ATTRIBUTE: "req_attribute",
    ATTR_SSL_KEY_SIZE: "ssl_key_size",
    ATTR_SECRET: "secret",
    ATTR_STORED_METHOD: "stored_method",
    ATTR_ARE_DONE: "are_done",
}
"""Attribute name by code; the names of the string-valued ones are ForwardRequest fields."""

STRING_ATTRIBUTES_IN_ORDER: Final[tuple[tuple[int, str], ...]] = (
    (ATTR_SECRET, "secret"),
    (ATTR_REMOTE_USER, "remote_user"),
    (ATTR_AUTH_TYPE, "auth_type"),
    (ATTR_QUERY_STRING, "query_string"),
    (ATTR_JVM_ROUTE, "jvm_route"),
    (ATTR_SSL_CERT, "ssl_cert"),
    (ATTR_SSL_CIPHER, "ssl_cipher"),
    (ATTR_SSL_SESSION, "ssl_session"),
)
"""The string attributes a FORWARD_REQUEST carries, in mod_proxy_ajp's order; after them
come ssl_key_size (uint16), stored_method, the req_attribute pairs and are_done."""
