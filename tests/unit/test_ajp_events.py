"""Events are immutable values that cannot be built invalid: each rule of construction
is crossed once, and each limit of what one FORWARD_REQUEST packet can carry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ajpbalancer._build import compiled
from ajpbalancer.ajp import (
    ClientConnection,
    ConnectionClosed,
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    LocalProtocolError,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
    State,
)

BASE: dict[str, Any] = {
    "method": b"GET",
    "uri": b"/",
    "remote_addr": b"127.0.0.1",
    "server_name": b"h",
    "server_port": 80,
    "is_ssl": False,
    "headers": (),
}


def make(**changes: Any) -> ForwardRequest:
    return ForwardRequest(**{**BASE, **changes})


def test_a_minimal_request_has_mod_proxy_ajp_defaults() -> None:
    event = make()
    assert event.protocol == b"HTTP/1.1"
    assert event.remote_host is None
    assert event.request_attributes == ()
    assert event.body_length == 0


def test_events_are_read_only_slotted_and_hashable() -> None:
    event = make(headers=[(b"Host", b"h")])
    assert event.headers == ((b"Host", b"h"),)  # a list becomes a tuple
    # The fields are Final: mypy refuses an assignment in both builds (scripts/test
    # type-checks), the native build also at run time.
    if compiled():
        with pytest.raises(AttributeError):
            event.method = b"POST"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert hash(event) == hash(make(headers=((b"Host", b"h"),)))
    for other in (CPing(), CPong(), ConnectionClosed(), EndResponse(reuse=True)):
        assert other == type(other)(**dataclasses.asdict(other))
        assert not hasattr(other, "__dict__")


def test_events_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        RequestBody(b"x")  # type: ignore[call-arg]


def test_replace_recomputes_the_body_length() -> None:
    event = make(headers=((b"Content-Length", b"5"),))
    assert event.body_length == 5
    assert dataclasses.replace(event, headers=()).body_length == 0


@pytest.mark.parametrize(
    "uri", [b"", b"app", b"/a b", b"/a?b=1", b"/a\x00", b"/a\x7f", b"/a\tb", b"http://h/", b"**"]
)
def test_uri_must_be_a_bare_path(uri: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="uri must be a path"):
        make(uri=uri)


@pytest.mark.parametrize("uri", [b"/", b"*", b"/a%20b/c;x=1", b"/caf\xc3\xa9", b"/a#b"])
def test_uri_accepts_paths(uri: bytes) -> None:
    assert make(uri=uri).uri == uri


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", b"GE T"),
        ("method", b""),
        ("protocol", b"HTTP/1"),
        ("protocol", b"http/1.1"),
        ("remote_addr", b"1.2.3.4 "),
        ("remote_host", b"a\nb"),
        ("server_name", b"h\x00"),
        ("server_port", -1),
        ("server_port", 65536),
        ("secret", b"s\r\n"),
        ("remote_user", b"a\x00"),
        ("auth_type", b"\x7f"),
        ("query_string", b"a=1 b"),
        ("jvm_route", b"r\n"),
        ("headers", ((b"Host:", b"h"),)),
        ("headers", ((b"", b"h"),)),
        ("headers", ((b"X", b"a\r\nInjected: 1"),)),
        ("headers", ((b"X", b"a\x00b"),)),
        ("request_attributes", ((b"", b"v"),)),
        ("request_attributes", ((b"a b", b"v"),)),
        ("request_attributes", ((b"a", b"v\n"),)),
    ],
)
def test_invalid_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(LocalProtocolError):
        make(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "GET"),
        ("uri", "/"),
        ("server_port", "80"),
        ("is_ssl", 1),
        ("headers", "Host: h"),
        ("headers", ((b"Host", b"h", b"x"),)),
        ("headers", (("X", "y"),)),
        ("request_attributes", "x"),
        ("request_attributes", ((b"a",),)),
    ],
)
def test_fields_of_the_wrong_type_are_a_type_error(field: str, value: object) -> None:
    """A value of the wrong Python type is a TypeError in both builds (the compiled one's
    typed fields refuse it before any check runs); LocalProtocolError is for values of the
    right type that the protocol cannot carry."""
    with pytest.raises(TypeError):
        make(**{field: value})


def test_tls_fields_need_is_ssl() -> None:
    for field, value in [
        ("ssl_cert", b"PEM"),
        ("ssl_cipher", b"C"),
        ("ssl_session", b"S"),
        ("ssl_key_size", 128),
    ]:
        with pytest.raises(LocalProtocolError, match="need is_ssl"):
            make(**{field: value})
        assert getattr(make(is_ssl=True, **{field: value}), field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ssl_key_size", -1),
        ("ssl_key_size", 65536),
        ("ssl_cipher", b"A B"),
        ("ssl_session", b"\x01"),
        ("ssl_cert", b"PEM\x00"),
        ("ssl_cert", b"PEM\x1b"),
    ],
)
def test_invalid_tls_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(LocalProtocolError):
        make(is_ssl=True, **{field: value})


def test_a_certificate_keeps_its_line_breaks() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\r\nAA==\n\t-----END CERTIFICATE-----\n"
    assert make(is_ssl=True, ssl_cert=pem).ssl_cert == pem


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        ((), 0),
        (((b"Content-Length", b"0"),), 0),
        (((b"content-length", b"12"),), 12),
        (((b"CONTENT-LENGTH", b" 007 "),), 7),
        (((b"Transfer-Encoding", b"chunked"),), None),
        (((b"transfer-encoding", b"Chunked"),), None),
        (((b"Content-Lengthy", b"x"), (b"Transfer-Encodings", b"gzip")), 0),
    ],
)
def test_body_length_from_the_framing_headers(
    headers: tuple[tuple[bytes, bytes], ...], length: int | None
) -> None:
    assert make(headers=headers).body_length == length


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        (((b"Content-Length", b"1"), (b"Content-Length", b"1")), "more than one Content-Length"),
        (((b"Content-Length", b"1"), (b"Transfer-Encoding", b"chunked")), "both"),
        (((b"Transfer-Encoding", b"gzip"),), "other than a single 'chunked'"),
        (((b"Transfer-Encoding", b"gzip, chunked"),), "other than a single 'chunked'"),
        (((b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")), "single"),
        (((b"Content-Length", b"-1"),), "invalid Content-Length"),
        (((b"Content-Length", b"1,1"),), "invalid Content-Length"),
        (((b"Content-Length", b""),), "invalid Content-Length"),
    ],
)
def test_ambiguous_framing_is_refused(headers: tuple[tuple[bytes, bytes], ...], match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match) as info:
        make(headers=headers)
    # The message may reach a client in an error page: values as text, never b'...'.
    assert "b'" not in str(info.value) and 'b"' not in str(info.value)


def test_values_in_messages_are_quoted_text_not_python_bytes() -> None:
    with pytest.raises(LocalProtocolError) as info:
        make(headers=((b"Content-Length", b"5, 5"),))
    assert str(info.value) == "invalid Content-Length '5, 5'"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": 199, "reason": b"x", "headers": ()},
        {"status": 1000, "reason": b"x", "headers": ()},
        {"status": 200, "reason": b"", "headers": ()},
        {"status": 200, "reason": b"O\rK", "headers": ()},
        {"status": 200, "reason": b"OK", "headers": ((b"Set Cookie", b"a"),)},
        {"status": 200, "reason": b"OK", "headers": ((b"Location", b"/\n"),)},
    ],
)
def test_invalid_send_headers_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        SendHeaders(**kwargs)


# The classes of bytes each kind of field may hold, written from RFC 9110 and AJP13
# apart from the module's own tables: a token (a method, a header name), a field value
# (no control byte but TAB, no DEL), a visible value (addresses, names, the query), a path.
TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
FIELD_VCHAR = frozenset([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
VISIBLE = frozenset([*range(0x21, 0x7F), *range(0x80, 0x100)])
PATH = VISIBLE - {ord("?")}
# A short value around one byte of any kind.
VALUES = st.tuples(st.binary(max_size=3), st.integers(0, 255), st.binary(max_size=3)).map(
    lambda parts: parts[0] + bytes([parts[1]]) + parts[2]
)


# Each kind of field: its class of bytes, and the request fields that carry a value there.
FIELDS: list[tuple[frozenset[int], Callable[[bytes], dict[str, Any]]]] = [
    (TCHAR, lambda v: {"method": v}),
    (PATH, lambda v: {"uri": b"/" + v}),
    (VISIBLE, lambda v: {"remote_addr": v}),
    (VISIBLE, lambda v: {"remote_host": v}),
    (VISIBLE, lambda v: {"server_name": v}),
    (VISIBLE, lambda v: {"query_string": v}),
    (FIELD_VCHAR, lambda v: {"secret": v}),
    (FIELD_VCHAR, lambda v: {"jvm_route": v}),
    (TCHAR, lambda v: {"headers": ((b"Host", b"h"), (v, b"1"))}),
    (FIELD_VCHAR, lambda v: {"headers": ((b"Host", b"h"), (b"X", v))}),
    (VISIBLE, lambda v: {"request_attributes": ((v, b"1"),)}),
    (FIELD_VCHAR, lambda v: {"request_attributes": ((b"a", v),)}),
]


@settings(max_examples=1000)
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_every_byte_of_every_field_is_accepted_exactly_when_its_class_allows_it(
    field: tuple[frozenset[int], Callable[[bytes], dict[str, Any]]], value: bytes
) -> None:
    """The checks on every request's path (joined values, one pass per class) accept a
    value exactly when each of its bytes is of the field's class."""
    allowed, build = field
    if all(b in allowed for b in value):
        assert make(**build(value)) == make(**build(value))
    else:
        with pytest.raises(LocalProtocolError):
            make(**build(value))


@given(value=VALUES, in_name=st.booleans())
def test_every_byte_of_a_response_header_is_accepted_exactly_when_its_class_allows_it(
    value: bytes, in_name: bool
) -> None:
    headers = ((value, b"v"),) if in_name else ((b"X", value),)
    if all(b in (TCHAR if in_name else FIELD_VCHAR) for b in value):
        assert SendHeaders(status=200, reason=b"OK", headers=headers).headers == headers
    else:
        with pytest.raises(LocalProtocolError):
            SendHeaders(status=200, reason=b"OK", headers=headers)


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/0.9"])
def test_any_http_version_of_one_digit_each_is_a_protocol(version: bytes) -> None:
    assert make(protocol=version).protocol == version


@pytest.mark.parametrize(
    "version", [b"HTTP/1.10", b"HTTP/1", b"HTTP/a.1", b"HTTP/1.1 ", b"HTTPS/1.1"]
)
def test_other_protocols_are_refused(version: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        make(protocol=version)


def test_a_reason_that_is_not_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        SendHeaders(status=200, reason="OK", headers=())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: GetBodyChunk(length=0),
        lambda: GetBodyChunk(length=65536),
    ],
)
def test_invalid_small_events_are_refused(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: EndResponse(reuse=1),  # type: ignore[arg-type]
        lambda: RequestBody(data="x"),  # type: ignore[arg-type]
        lambda: SendBodyChunk(data=bytearray(b"x")),  # type: ignore[arg-type]
    ],
)
def test_small_events_of_the_wrong_type_are_a_type_error(build: Any) -> None:
    with pytest.raises(TypeError):
        build()


# --- what one packet can carry ----------------------------------------------------------

FIXED = len(ClientConnection().send(make(headers=((b"Cookie", b""),))))
"""Size of the packet of `make` with an empty cookie: add the value's length to it."""


@pytest.mark.parametrize("size", [8192, 16384, 65536])
def test_a_request_that_fills_the_packet_exactly_fits(size: int) -> None:
    event = make(headers=((b"Cookie", b"c" * (size - FIXED)),))
    packet = ClientConnection(max_packet_size=size).send(event)
    assert len(packet) == size
    assert ServerConnection(max_packet_size=size).receive_data(packet)[0] == dataclasses.replace(
        event, headers=((b"cookie", b"c" * (size - FIXED)),)
    )


@pytest.mark.parametrize("size", [8192, 65536])
def test_a_request_one_byte_too_big_is_a_400(size: int) -> None:
    """mod_proxy_ajp answers 400 when the headers and attributes overflow the packet."""
    conn = ClientConnection(max_packet_size=size)
    with pytest.raises(LocalProtocolError) as info:
        conn.send(make(headers=((b"Cookie", b"c" * (size - FIXED + 1)),)))
    assert info.value.status_hint == 400
    assert str(info.value) == (
        f"request headers and attributes do not fit in one AJP packet of {size} bytes"
    )
    assert conn.state is State.ERROR


def test_a_big_client_certificate_overflows_the_packet() -> None:
    with pytest.raises(LocalProtocolError, match="do not fit") as info:
        ClientConnection().send(make(is_ssl=True, ssl_cert=b"A" * 9000))
    assert info.value.status_hint == 400


def test_a_fixed_field_that_overflows_is_a_400_too() -> None:
    """Overflow found only at the end (the are_done byte) gets the same answer."""
    event = make(headers=((b"Cookie", b"c" * (8192 - FIXED)),), ssl_key_size=1, is_ssl=True)
    with pytest.raises(LocalProtocolError, match="do not fit") as info:
        ClientConnection().send(event)
    assert info.value.status_hint == 400


def test_response_headers_that_overflow_are_a_local_500() -> None:
    server = ServerConnection()
    server.receive_data(ClientConnection().send(make()))
    with pytest.raises(LocalProtocolError, match="response headers do not fit") as info:
        server.send(SendHeaders(status=200, reason=b"OK", headers=((b"X", b"v" * 8192),)))
    assert info.value.status_hint == 500


def test_a_header_name_that_would_read_as_a_code_is_refused() -> None:
    """A literal name of 0xA000 bytes or more would be taken for a header code."""
    name = b"X" * 0xA000
    with pytest.raises(LocalProtocolError, match="header name of 40960 bytes") as info:
        ClientConnection(max_packet_size=65536).send(make(headers=((name, b""),)))
    assert info.value.status_hint == 400
    server = ServerConnection(max_packet_size=65536)
    server.receive_data(ClientConnection().send(make()))
    with pytest.raises(LocalProtocolError, match="header name of 40960 bytes"):
        server.send(SendHeaders(status=200, reason=b"OK", headers=((name, b""),)))
    ok = b"X" * 0x9FFF
    packet = ClientConnection(max_packet_size=65536).send(make(headers=((ok, b""),)))
    assert ServerConnection(max_packet_size=65536).receive_data(packet)[0] == make(
        headers=((ok, b""),)
    )


def test_too_many_headers_to_count_are_refused() -> None:
    many = tuple((b"X", b"") for _ in range(0x10000))
    with pytest.raises(LocalProtocolError, match="cannot be counted") as info:
        ClientConnection(max_packet_size=65536).send(make(headers=many))
    assert info.value.status_hint == 400
    server = ServerConnection()
    server.receive_data(ClientConnection().send(make()))
    with pytest.raises(LocalProtocolError, match="cannot be counted"):
        server.send(SendHeaders(status=200, reason=b"OK", headers=many))
