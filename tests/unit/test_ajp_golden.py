"""Golden vectors: the codec writes exactly the hand-written bytes of ``ajp_vectors`` and
reads them back to exactly their events, fed whole, one byte at a time, and with the
next packet right behind (which must be decoded next, not swallowed or mangled).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from ajpbalancer.ajp import (
    ClientConnection,
    Event,
    ForwardRequest,
    SendHeaders,
    ServerConnection,
    State,
    _messages,
)
from ajpbalancer.ajp._constants import STRING_ATTRIBUTES_IN_ORDER
from tests.unit import ajp_vectors as v

PLAIN_GET = ForwardRequest(
    method=b"GET",
    uri=b"/",
    remote_addr=b"127.0.0.1",
    server_name=b"h",
    server_port=80,
    is_ssl=False,
    headers=(),
)
"""A request with no body, to put a client in REQUEST_SENT."""
PLAIN_GET_BYTES = (
    b"\x12\x34\x00\x29\x02\x02\x00\x08HTTP/1.1\x00\x00\x01/\x00"
    b"\x00\x09127.0.0.1\x00\xff\xff\x00\x01h\x00\x00\x50\x00\x00\x00\xff"
)


def pieces(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    return [data[i : i + 1] for i in range(len(data))]


def feed(receive: Callable[[bytes], list[Event]], chunks: Iterable[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events += receive(chunk)
    return events


def client_waiting(request: ForwardRequest = PLAIN_GET) -> ClientConnection:
    conn = ClientConnection()
    conn.send(request)
    return conn


def client_in_response(request: ForwardRequest = PLAIN_GET) -> ClientConnection:
    conn = client_waiting(request)
    conn.receive_data(v.SEND_HEADERS_200)
    return conn


def server_with_request() -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(PLAIN_GET_BYTES)
    return conn


def server_in_response() -> ServerConnection:
    conn = server_with_request()
    conn.send(v.SEND_HEADERS_200_EVENT)
    return conn


def test_plain_get_helper_bytes_are_what_the_client_sends() -> None:
    assert ClientConnection().send(PLAIN_GET) == PLAIN_GET_BYTES


# --- encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(("packet", "event"), v.REQUEST_VECTORS)
def test_forward_request_encodes_to_the_golden_bytes(packet: bytes, event: ForwardRequest) -> None:
    assert ClientConnection().send(event) == packet


def test_request_body_and_end_of_body_encode_to_the_golden_bytes() -> None:
    conn = ClientConnection()
    conn.send(v.FORWARD_PATCH_TLS_EVENT)
    assert conn.send(v.BODY_HELLO_EVENT) == v.BODY_HELLO
    conn.receive_data(v.GET_BODY_CHUNK_8186)
    assert conn.send(v.END_OF_BODY_EVENT) == v.END_OF_BODY


def test_cping_encodes_to_the_golden_bytes() -> None:
    assert ClientConnection().send(v.CPING_EVENT) == v.CPING


def test_container_messages_encode_to_the_golden_bytes() -> None:
    conn = server_with_request()
    assert conn.send(v.GET_BODY_CHUNK_8186_EVENT) == v.GET_BODY_CHUNK_8186
    conn.receive_data(v.END_OF_BODY)
    assert conn.send(v.SEND_HEADERS_200_EVENT) == v.SEND_HEADERS_200
    assert conn.send(v.SEND_BODY_CHUNK_HELLO_EVENT) == v.SEND_BODY_CHUNK_HELLO
    assert conn.send(v.FLUSH_EVENT) == v.FLUSH
    assert conn.send(v.END_RESPONSE_REUSE_EVENT) == v.END_RESPONSE_REUSE
    conn.start_next_cycle()
    conn.receive_data(PLAIN_GET_BYTES)
    assert conn.send(v.SEND_HEADERS_404_EVENT) == (b"AB\x00\x0b\x04\x01\x94\x00\x03404\x00\x00\x00")
    assert conn.send(v.END_RESPONSE_CLOSE_EVENT) == v.END_RESPONSE_CLOSE
    server = ServerConnection()
    server.receive_data(v.CPING)
    assert server.send(v.CPONG_EVENT) == v.CPONG


def test_get_body_chunk_65535_encodes_to_the_golden_bytes() -> None:
    conn = server_with_request()
    assert conn.send(v.GET_BODY_CHUNK_65535_EVENT) == v.GET_BODY_CHUNK_65535


def test_send_headers_names_are_coded_whatever_their_case() -> None:
    event = SendHeaders(
        status=200,
        reason=b"200",
        headers=(
            (b"content-type", b"text/plain"),
            (b"CONTENT-LENGTH", b"5"),
            (b"X-Seven", b"7"),
            (b"X-Custom", b"8"),
            (b"set-cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
        ),
    )
    assert server_with_request().send(event) == v.SEND_HEADERS_200


def sent_get(*headers: tuple[bytes, bytes], tls: bool = False, **strings: bytes) -> bytes:
    """The packet a client sends for a GET of ``/`` with ``headers`` and string fields."""
    return ClientConnection().send(
        ForwardRequest(
            method=b"GET",
            uri=b"/",
            remote_addr=b"127.0.0.1",
            server_name=b"h",
            server_port=443 if tls else 80,
            is_ssl=tls,
            headers=headers,
            **strings,  # type: ignore[arg-type]
        )
    )


def test_forward_request_string_attributes_go_in_mod_proxy_ajps_order() -> None:
    values = {attribute: b"v-" + attribute.encode() for _, attribute in STRING_ATTRIBUTES_IN_ORDER}
    packet = sent_get(tls=True, **values)
    places = []
    for code, attribute in STRING_ATTRIBUTES_IN_ORDER:
        value = values[attribute]
        field = bytes([code]) + len(value).to_bytes(2, "big") + value + b"\x00"
        assert packet.count(field) == 1, attribute
        places.append(packet.index(field))
    assert places == sorted(places)


def test_request_header_names_are_coded_whatever_their_case() -> None:
    coded = sent_get((b"Accept", b"a"), (b"X-Mine", b"b"))
    assert b"\xa0\x01\x00\x01a\x00" in coded  # SC_REQ_ACCEPT
    assert b"\x00\x06X-Mine\x00\x00\x01b\x00" in coded
    # The second time (names seen are kept) and in other spellings: the same bytes.
    assert sent_get((b"Accept", b"a"), (b"X-Mine", b"b")) == coded
    assert sent_get((b"ACCEPT", b"a"), (b"X-Mine", b"b")) == coded
    assert sent_get((b"accept", b"a"), (b"X-Mine", b"b")) == coded


def test_names_seen_are_kept_within_bounds() -> None:
    for i in range(2 * _messages._ENCODED_NAMES_LIMIT):
        name = b"X-Name-%d" % i
        long_name = b"X-" + b"n" * _messages._ENCODED_NAME_MAX + b"%d" % i
        packet = sent_get((name, b"1"), (long_name, b"2"))
        assert len(name).to_bytes(2, "big") + name + b"\x00\x00\x011\x00" in packet
        assert len(long_name).to_bytes(2, "big") + long_name + b"\x00\x00\x012\x00" in packet
    assert len(_messages._ENCODED_NAMES) <= _messages._ENCODED_NAMES_LIMIT
    assert all(len(n) <= _messages._ENCODED_NAME_MAX for n in _messages._ENCODED_NAMES)


# --- decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize(("packet", "event"), v.REQUEST_VECTORS)
def test_forward_request_decodes(packet: bytes, event: ForwardRequest, how: str) -> None:
    conn = ServerConnection()
    assert feed(conn.receive_data, pieces(packet, how)) == [event]
    assert conn.state is State.REQUEST_SENT


@pytest.mark.parametrize(("packet", "event"), v.REQUEST_VECTORS)
def test_forward_request_with_the_next_packet_behind_it(
    packet: bytes, event: ForwardRequest
) -> None:
    """Bytes after a FORWARD_REQUEST are kept for the next packet: its unasked body when
    it has a Content-Length, otherwise the start of an end-of-body packet completed after
    the container asked for the body."""
    conn = ServerConnection()
    follow = v.BODY_HELLO if event.body_length else v.END_OF_BODY_HTTPD
    assert conn.receive_data(packet + follow[:3]) == [event]
    if not event.body_length:
        conn.send(v.GET_BODY_CHUNK_8186_EVENT)
    expected = v.BODY_HELLO_EVENT if event.body_length else v.END_OF_BODY_EVENT
    assert conn.receive_data(follow[3:]) == [expected]
    assert conn.body_finished


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize("end", [v.END_OF_BODY, v.END_OF_BODY_HTTPD])
def test_request_body_and_both_end_of_body_forms_decode(how: str, end: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(v.FORWARD_PATCH_TLS)
    assert feed(conn.receive_data, pieces(v.BODY_HELLO, how)) == [v.BODY_HELLO_EVENT]
    conn.send(v.GET_BODY_CHUNK_8186_EVENT)
    assert feed(conn.receive_data, pieces(end, how)) == [v.END_OF_BODY_EVENT]
    assert conn.body_finished


@pytest.mark.parametrize("how", ["whole", "bytewise"])
def test_cping_decodes_and_cpong_too(how: str) -> None:
    server = ServerConnection()
    assert feed(server.receive_data, pieces(v.CPING, how)) == [v.CPING_EVENT]
    client = ClientConnection()
    client.send(v.CPING_EVENT)
    assert feed(client.receive_data, pieces(v.CPONG, how)) == [v.CPONG_EVENT]
    assert client.state is State.IDLE


@pytest.mark.parametrize("how", ["whole", "bytewise"])
def test_whole_response_decodes(how: str) -> None:
    exchange = (
        v.GET_BODY_CHUNK_8186
        + v.SEND_HEADERS_200
        + v.SEND_BODY_CHUNK_HELLO
        + v.FLUSH
        + v.END_RESPONSE_REUSE
    )
    conn = client_waiting()
    assert feed(conn.receive_data, pieces(exchange, how)) == [
        v.GET_BODY_CHUNK_8186_EVENT,
        v.SEND_HEADERS_200_EVENT,
        v.SEND_BODY_CHUNK_HELLO_EVENT,
        v.FLUSH_EVENT,
        v.END_RESPONSE_REUSE_EVENT,
    ]
    assert conn.state is State.DONE


@pytest.mark.parametrize(
    ("packet", "event"),
    [
        (v.SEND_HEADERS_200, v.SEND_HEADERS_200_EVENT),
        (v.SEND_HEADERS_404_NULL_REASON, v.SEND_HEADERS_404_EVENT),
        (v.GET_BODY_CHUNK_8186, v.GET_BODY_CHUNK_8186_EVENT),
        (v.GET_BODY_CHUNK_65535, v.GET_BODY_CHUNK_65535_EVENT),
    ],
)
@pytest.mark.parametrize("how", ["whole", "bytewise"])
def test_container_message_decodes_before_the_headers(
    packet: bytes, event: Event, how: str
) -> None:
    conn = client_waiting()
    assert feed(conn.receive_data, pieces(packet, how)) == [event]


@pytest.mark.parametrize(
    ("packet", "event"),
    [
        (v.SEND_BODY_CHUNK_HELLO, v.SEND_BODY_CHUNK_HELLO_EVENT),
        (v.FLUSH, v.FLUSH_EVENT),
        (v.END_RESPONSE_REUSE, v.END_RESPONSE_REUSE_EVENT),
        (v.END_RESPONSE_CLOSE, v.END_RESPONSE_CLOSE_EVENT),
    ],
)
@pytest.mark.parametrize("how", ["whole", "bytewise"])
def test_container_message_decodes_after_the_headers(packet: bytes, event: Event, how: str) -> None:
    conn = client_in_response()
    assert feed(conn.receive_data, pieces(packet, how)) == [event]


@pytest.mark.parametrize(
    "packet", [v.SEND_BODY_CHUNK_HELLO, v.FLUSH, v.SEND_HEADERS_200, v.GET_BODY_CHUNK_8186]
)
def test_container_message_with_the_next_packet_behind_it(packet: bytes) -> None:
    """Whatever follows a packet in the same read is left for the next packet: here the
    first 3 bytes of END_RESPONSE, completed by the next read."""
    conn = client_waiting() if packet == v.SEND_HEADERS_200 else client_in_response()
    events = conn.receive_data(packet + v.END_RESPONSE_REUSE[:3])
    assert len(events) == 1
    assert conn.receive_data(v.END_RESPONSE_REUSE[3:]) == [v.END_RESPONSE_REUSE_EVENT]
    assert conn.state is State.DONE
