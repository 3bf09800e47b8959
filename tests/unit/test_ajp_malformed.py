"""Malformed, oversize and out-of-order input: each is the right error class with the
right status hint (502 from a container, 400 from a web server), never another exception
or a hang, and the connection stays poisoned afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.ajp import (
    AJPProtocolError,
    ClientConnection,
    CPing,
    ForwardRequest,
    GetBodyChunk,
    LocalProtocolError,
    RemoteProtocolError,
    RequestBody,
    SendHeaders,
    ServerConnection,
    State,
)
from tests.unit import ajp_vectors as v


def ab(payload: bytes) -> bytes:
    """A container packet around ``payload``."""
    return b"AB" + len(payload).to_bytes(2, "big") + payload


def ws(payload: bytes) -> bytes:
    """A web server packet around ``payload``."""
    return b"\x12\x34" + len(payload).to_bytes(2, "big") + payload


GET = ForwardRequest(
    method=b"GET",
    uri=b"/",
    remote_addr=b"127.0.0.1",
    server_name=b"h",
    server_port=80,
    is_ssl=False,
    headers=(),
)
POST_5 = ForwardRequest(
    method=b"POST",
    uri=b"/",
    remote_addr=b"127.0.0.1",
    server_name=b"h",
    server_port=80,
    is_ssl=False,
    headers=((b"Content-Length", b"5"),),
)
GET_BYTES = ClientConnection().send(GET)
POST_5_BYTES = ClientConnection().send(POST_5)


def waiting_client(request: ForwardRequest = GET) -> ClientConnection:
    conn = ClientConnection()
    conn.send(request)
    return conn


def responding_client() -> ClientConnection:
    conn = waiting_client()
    conn.receive_data(v.SEND_HEADERS_200)
    return conn


def assert_poisoned(conn: ClientConnection | ServerConnection) -> None:
    assert conn.state is State.ERROR
    assert not conn.reusable
    with pytest.raises(LocalProtocolError, match="must be discarded"):
        conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    with pytest.raises(LocalProtocolError):
        conn.send(CPing()) if isinstance(conn, ClientConnection) else conn.receive_data(v.CPING)
    assert conn.state is State.ERROR


def refused_by_client(conn: ClientConnection, data: bytes, match: str | None = None) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        conn.receive_data(data)
    assert info.value.status_hint == 502
    assert_poisoned(conn)


def refused_by_server(conn: ServerConnection, data: bytes, match: str | None = None) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        conn.receive_data(data)
    assert info.value.status_hint == 400
    assert_poisoned(conn)


# --- from the container -----------------------------------------------------------------


@pytest.mark.parametrize("data", [b"XB", b"\x12\x34\x00\x01\x09", b"aB\x00\x01\x09", b"A\x00"])
def test_client_refuses_bad_magic(data: bytes) -> None:
    refused_by_client(waiting_client(), data, "magic")


@pytest.mark.parametrize("size", [8192, 65536])
def test_client_refuses_an_oversize_packet_from_its_header_alone(size: int) -> None:
    conn = ClientConnection(max_packet_size=size)
    conn.send(GET)
    refused_by_client(conn, b"AB" + (size - 3).to_bytes(2, "big"), "larger than the packet size")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty AJP packet"),
        (b"\x00", "unknown AJP message type 0"),
        (b"\x02", "unknown AJP message type 2"),  # FORWARD_REQUEST goes the other way
        (b"\x07", "unknown AJP message type 7"),
        (b"\x0a", "unknown AJP message type 10"),
        (b"\xff", "unknown AJP message type 255"),
    ],
)
def test_client_refuses_unknown_message_types(payload: bytes, match: str) -> None:
    refused_by_client(waiting_client(), ab(payload), match)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x04\x00", "ends inside"),  # status cut short
        (b"\x04\x00\xc8\x00\x05OK\x00\x00\x00", "ends inside"),  # reason longer than the packet
        (b"\x04\x00\xc8\x00\x02OKX\x00\x00", "NUL"),  # no NUL after the reason
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x01", "ends inside"),  # one header announced, none
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x00\xa0\x01\x00\x01x\x00", "unexpected bytes"),  # 0, one
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x02\xa0\x01\x00\x01x\x00", "ends inside"),  # 2, one
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x01\xff\xff\x00\x01x\x00", "header name is a null"),
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x01\xa0\x01\xff\xff", "header value is a null"),
        (b"\x04\x00\x64\x00\x02OK\x00\x00\x00", "status must be an integer 200..999"),
        (b"\x04\x00\x00\x00\x02OK\x00\x00\x00", "status"),
        (b"\x04\x03\xe8\x00\x02OK\x00\x00\x00", "status"),  # 1000
        (b"\x04\x00\xc8\x00\x03O\nK\x00\x00\x00", "reason"),
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x01\xa0\x06\x00\x04/a\r\n\x00", "invalid byte"),
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x01\x00\x03a b\x00\x00\x01x\x00", "header name"),
        (b"\x04\x00\xc8\x00\x02OK\x00\x00\x01\xa0\x0c\x00\x01x\x00", "response header code"),
    ],
)
def test_client_refuses_malformed_send_headers(payload: bytes, match: str) -> None:
    refused_by_client(waiting_client(), ab(payload), match)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x03\x00\x06hello\x00", "says 6 bytes, its packet carries 5"),  # counts the NUL
        (b"\x03\x00\x04hello\x00", "says 4 bytes"),
        (b"\x03\x00\x05hello", "says 5 bytes, its packet carries 4"),  # no NUL at all
        (b"\x03\x00\x05helloX", "not NUL-terminated"),
        (b"\x03\x00", "ends inside"),
        (b"\x03\x00\x00", "ends before its NUL terminator"),
    ],
)
def test_client_refuses_malformed_body_chunks(payload: bytes, match: str) -> None:
    refused_by_client(responding_client(), ab(payload), match)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x05", "ends inside"),
        (b"\x05\x02", "boolean must be 0 or 1"),
        (b"\x05\x01\x00", "unexpected bytes after END_RESPONSE"),
    ],
)
def test_client_refuses_malformed_end_response(payload: bytes, match: str) -> None:
    refused_by_client(responding_client(), ab(payload), match)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x06\x00", "ends inside"),
        (b"\x06\x00\x00", "length must be an integer 1..65535"),
        (b"\x06\x00\x10\x00", "unexpected bytes after GET_BODY_CHUNK"),
    ],
)
def test_client_refuses_malformed_get_body_chunk(payload: bytes, match: str) -> None:
    refused_by_client(waiting_client(), ab(payload), match)


def test_client_refuses_a_cpong_with_trailing_bytes() -> None:
    conn = ClientConnection()
    conn.send(CPing())
    refused_by_client(conn, ab(b"\x09\x00"), "after CPONG_REPLY")


def test_client_refuses_a_second_send_headers() -> None:
    refused_by_client(responding_client(), v.SEND_HEADERS_200, "SEND_HEADERS is not allowed")


def test_client_refuses_body_data_before_send_headers() -> None:
    refused_by_client(waiting_client(), v.SEND_BODY_CHUNK_HELLO, "before SEND_HEADERS")


def test_client_refuses_end_response_before_send_headers() -> None:
    refused_by_client(waiting_client(), v.END_RESPONSE_REUSE, "END_RESPONSE is not allowed")


@pytest.mark.parametrize("setup", ["idle", "waiting", "responding"])
def test_client_refuses_a_cpong_it_did_not_ask_for(setup: str) -> None:
    factories: dict[str, Callable[[], ClientConnection]] = {
        "idle": ClientConnection,
        "waiting": waiting_client,
        "responding": responding_client,
    }
    conn = factories[setup]()
    refused_by_client(conn, v.CPONG, "CPONG_REPLY is not allowed")


def test_client_refuses_anything_but_cpong_after_cping() -> None:
    conn = ClientConnection()
    conn.send(CPing())
    refused_by_client(conn, v.SEND_HEADERS_200)


def test_client_refuses_get_body_chunk_after_the_end_of_body() -> None:
    conn = waiting_client()
    conn.receive_data(v.GET_BODY_CHUNK_8186)
    conn.send(RequestBody(data=b""))
    refused_by_client(conn, v.GET_BODY_CHUNK_8186, "after the end of the request body")


def test_client_refuses_get_body_chunk_while_a_packet_is_owed() -> None:
    refused_by_client(waiting_client(POST_5), v.GET_BODY_CHUNK_8186, "while a request body")


def test_client_refuses_unsolicited_data_after_end_response() -> None:
    conn = responding_client()
    refused_by_client(conn, v.END_RESPONSE_REUSE + v.FLUSH, "not allowed in state DONE")


def test_client_refuses_data_when_idle() -> None:
    refused_by_client(ClientConnection(), v.SEND_HEADERS_200, "state IDLE")


@pytest.mark.parametrize("setup", ["cping", "waiting", "responding"])
def test_client_refuses_a_close_in_the_middle_of_an_exchange(setup: str) -> None:
    if setup == "cping":
        conn = ClientConnection()
        conn.send(CPing())
    else:
        conn = waiting_client() if setup == "waiting" else responding_client()
    refused_by_client(conn, b"", "closed the connection in the middle of an exchange")


def test_client_refuses_a_close_inside_a_packet() -> None:
    conn = responding_client()
    conn.receive_data(v.END_RESPONSE_REUSE[:5])
    refused_by_client(conn, b"", "inside a packet")


# --- from the web server ----------------------------------------------------------------


def forward(**changes: object) -> bytes:
    fields = {
        "method": b"GET",
        "uri": b"/",
        "remote_addr": b"127.0.0.1",
        "server_name": b"h",
        "server_port": 80,
        "is_ssl": False,
        "headers": (),
    }
    fields.update(changes)
    return ClientConnection().send(ForwardRequest(**fields))  # type: ignore[arg-type]


def with_attributes(packet: bytes, attributes: bytes) -> bytes:
    """``packet`` (a FORWARD_REQUEST) with ``attributes`` before its are_done byte."""
    return ws(packet[4:-1] + attributes + b"\xff")


def patched(packet: bytes, old: bytes, new: bytes) -> bytes:
    """``packet`` with ``old`` replaced by ``new`` and its length fixed."""
    assert packet.count(old) == 1
    body = packet[4:].replace(old, new)
    return ws(body)


@pytest.mark.parametrize("data", [b"AB\x00\x01\x0a", b"\x12\x00", b"\x13"])
def test_server_refuses_bad_magic(data: bytes) -> None:
    refused_by_server(ServerConnection(), data, "magic")


def test_server_refuses_an_oversize_packet_from_its_header_alone() -> None:
    refused_by_server(ServerConnection(), b"\x12\x34\x1f\xfd", "larger")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty AJP packet where a message"),
        (b"\x07", "SHUTDOWN \\(7\\) is not supported"),
        (b"\x08", "PING \\(8\\) is not supported"),
        (b"\x03", "unknown AJP message type 3"),
        (b"\x0a\x00", "after CPING"),
    ],
)
def test_server_refuses_unknown_or_unsupported_messages(payload: bytes, match: str) -> None:
    refused_by_server(ServerConnection(), ws(payload), match)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (ws(GET_BYTES[4:-1]), "ends inside"),  # no are_done
        (ws(GET_BYTES[4:] + b"\x00"), "unexpected bytes after the FORWARD_REQUEST"),
        (patched(GET_BYTES, b"HTTP/1.1\x00", b"HTTP/1.1X"), "NUL"),
        (patched(GET_BYTES, b"\x00\x08HTTP/1.1\x00", b"\xff\xff"), "protocol is a null"),
        (patched(GET_BYTES, b"\x00\x01/\x00", b"\xff\xff"), "req_uri is a null"),
        (patched(GET_BYTES, b"\x00\x01/\x00", b"\x00\x03/?a\x00"), "uri must be a path"),
        (patched(GET_BYTES, b"\x00\x01/\x00", b"\x00\x07http://\x00"), "uri must be a path"),
        (patched(GET_BYTES, b"\x00\x50\x00\x00\x00", b"\x00\x50\x02\x00\x00"), "boolean"),
        (patched(GET_BYTES, b"\x00\x50\x00\x00\x00", b"\x00\x50\x00\x00\x01"), "ends inside"),
        (with_attributes(GET_BYTES, b"\x42"), "unknown AJP attribute code 0x42"),
        (patched(GET_BYTES, b"\x02\x02", b"\x02\xff"), "0xFF without a stored_method"),
        (with_attributes(GET_BYTES, b"\x0d\x00\x03GET\x00"), "with a coded method"),
        (
            with_attributes(GET_BYTES, b"\x05\x00\x00\x00\x05\x00\x00\x00"),
            "query_string sent twice",
        ),
        (with_attributes(GET_BYTES, b"\x0b\x00\x01\x0b\x00\x01"), "ssl_key_size sent twice"),
        (
            forward(is_ssl=True, ssl_cipher=b"x").replace(b"\x00\x50\x01", b"\x00\x50\x00"),
            "need is_ssl",
        ),
        (with_attributes(GET_BYTES, b"\x01"), "ends inside"),  # context without its string
    ],
)
def test_server_refuses_malformed_forward_requests(data: bytes, match: str) -> None:
    refused_by_server(ServerConnection(), data, match)


def test_server_refuses_a_duplicate_content_length() -> None:
    """Tomcat answers two Content-Length headers with 400."""
    data = forward(headers=((b"Content-Length", b"1"), (b"X", b"y")))
    data = patched(data, b"\x00\x01X\x00\x00\x01y\x00", b"\xa0\x08\x00\x011\x00")
    refused_by_server(ServerConnection(), data, "more than one Content-Length")


def test_server_refuses_a_duplicate_stored_method() -> None:
    data = with_attributes(forward(method=b"PATCH"), b"\x0d\x00\x01X\x00")
    refused_by_server(ServerConnection(), data, "stored_method sent twice")


def test_server_refuses_body_bytes_it_did_not_expect() -> None:
    """Without a Content-Length no body packet follows: these bytes read as a message."""
    conn = ServerConnection()
    conn.receive_data(GET_BYTES)
    refused_by_server(conn, v.BODY_HELLO, "unknown AJP message type 0")


def test_server_refuses_an_end_of_body_it_did_not_expect() -> None:
    conn = ServerConnection()
    conn.receive_data(GET_BYTES)
    refused_by_server(conn, v.END_OF_BODY, "empty AJP packet")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (ws(b"\x00\x06hello!"), "6 bytes, but 5 were asked for"),  # past the Content-Length
        (ws(b"\x00\x05hello!"), "unexpected bytes after the request body chunk"),
        (ws(b"\x00\x06hello"), "ends inside"),
        (ws(b"\x00"), "ends inside"),
        (v.END_OF_BODY, "ends 5 bytes before its Content-Length"),
        (ws(b"\x00\x00"), "ends 5 bytes before"),
    ],
)
def test_server_refuses_malformed_request_bodies(body: bytes, match: str) -> None:
    conn = ServerConnection()
    conn.receive_data(POST_5_BYTES)
    refused_by_server(conn, body, match)


def test_server_refuses_more_body_than_it_asked_for() -> None:
    conn = ServerConnection()
    conn.receive_data(forward(headers=((b"Transfer-Encoding", b"chunked"),)))
    conn.send(GetBodyChunk(length=3))
    refused_by_server(conn, v.BODY_HELLO, "5 bytes, but 3 were asked for")


def test_server_refuses_a_close_inside_a_request() -> None:
    conn = ServerConnection()
    conn.receive_data(POST_5_BYTES)
    refused_by_server(conn, b"", "closed the connection in the middle of an exchange")


# --- local misuse -----------------------------------------------------------------------


def test_errors_from_send_are_local_and_poison() -> None:
    conn = ClientConnection()
    with pytest.raises(LocalProtocolError) as info:
        conn.send(RequestBody(data=b"x"))
    assert info.value.status_hint == 500
    assert_poisoned(conn)


def test_server_misuse_is_local_and_poisons() -> None:
    conn = ServerConnection()
    conn.receive_data(POST_5_BYTES)
    with pytest.raises(LocalProtocolError, match="owed"):
        conn.send(GetBodyChunk(length=10))
    assert_poisoned(conn)


@pytest.mark.parametrize(
    "event",
    [SendHeaders(status=200, reason=b"OK", headers=())],
)
def test_a_closed_connection_refuses_everything(event: SendHeaders) -> None:
    conn = ServerConnection()
    assert conn.receive_data(b"") != []
    assert conn.state is State.CLOSED
    with pytest.raises(LocalProtocolError, match="closed by the peer"):
        conn.send(event)
    assert not conn.reusable
    assert conn.state.name == "ERROR"


# --- nothing else ever escapes ----------------------------------------------------------

VALID_RESPONSE = v.SEND_HEADERS_200 + v.SEND_BODY_CHUNK_HELLO + v.FLUSH + v.END_RESPONSE_REUSE


@given(st.binary(max_size=64))
def test_client_fed_random_bytes_raises_only_protocol_errors(data: bytes) -> None:
    conn = waiting_client()
    try:
        conn.receive_data(data)
    except RemoteProtocolError:
        assert conn.state is State.ERROR


@given(
    st.integers(min_value=0, max_value=len(VALID_RESPONSE) - 1),
    st.integers(min_value=0, max_value=255),
)
def test_client_fed_a_mutated_response_raises_only_protocol_errors(at: int, byte: int) -> None:
    data = bytearray(VALID_RESPONSE)
    data[at] = byte
    conn = waiting_client()
    try:
        conn.receive_data(bytes(data))
        conn.receive_data(b"")
    except AJPProtocolError:
        assert conn.state is State.ERROR


@given(
    st.sampled_from([v.FORWARD_GET, v.FORWARD_PATCH_TLS + v.BODY_HELLO, v.FORWARD_HEAD_CERT]),
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=0, max_value=255),
)
def test_server_fed_a_mutated_request_raises_only_protocol_errors(
    packet: bytes, at: int, byte: int
) -> None:
    data = bytearray(packet)
    data[at % len(data)] = byte
    conn = ServerConnection()
    try:
        conn.receive_data(bytes(data))
    except RemoteProtocolError:
        assert conn.state is State.ERROR
