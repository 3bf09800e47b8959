"""The code tables and the transition table, iterated exhaustively.

Every method, request header and response header code is pinned to the protocol
document's value and round-trips through both ends; unknown codes are refused. Every
(state, event type) pair either moves as ``TRANSITIONS`` lists or is an error that
poisons the connection, on both ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.ajp import (
    TRANSITIONS,
    AJPProtocolError,
    ClientConnection,
    ConnectionClosed,
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    LocalProtocolError,
    RemoteProtocolError,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
    State,
)
from ajpbalancer.ajp._constants import (
    ATTRIBUTE_NAMES,
    METHOD_CODES,
    REQUEST_HEADER_CODES,
    RESPONSE_HEADERS_BY_CODE,
)
from ajpbalancer.ajp._messages import (
    CPONG_PACKET,
    END_RESPONSE_PACKETS,
    FLUSH_PACKET,
    encode_get_body_chunk,
    encode_send_headers,
)
from ajpbalancer.ajp._state import CONTAINER_SENDS, NEXT_CYCLE, WEB_SERVER_SENDS
from tests.unit import ajp_vectors as v

SPEC_METHODS = [
    "OPTIONS",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "TRACE",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "ACL",
    "REPORT",
    "VERSION-CONTROL",
    "CHECKIN",
    "CHECKOUT",
    "UNCHECKOUT",
    "SEARCH",
    "MKWORKSPACE",
    "UPDATE",
    "LABEL",
    "MERGE",
    "BASELINE-CONTROL",
    "MKACTIVITY",
]
SPEC_REQUEST_HEADERS = [
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "cookie2",
    "host",
    "pragma",
    "referer",
    "user-agent",
]
SPEC_RESPONSE_HEADERS = [
    "Content-Type",
    "Content-Language",
    "Content-Length",
    "Date",
    "Last-Modified",
    "Location",
    "Set-Cookie",
    "Set-Cookie2",
    "Servlet-Engine",
    "Status",
    "WWW-Authenticate",
]


def request(
    method: bytes = b"GET", headers: tuple[tuple[bytes, bytes], ...] = ()
) -> ForwardRequest:
    return ForwardRequest(
        method=method,
        uri=b"/",
        remote_addr=b"127.0.0.1",
        server_name=b"h",
        server_port=80,
        is_ssl=False,
        headers=headers,
    )


def through(event: ForwardRequest) -> tuple[bytes, ForwardRequest]:
    packet = ClientConnection().send(event)
    (decoded,) = ServerConnection().receive_data(packet)
    assert isinstance(decoded, ForwardRequest)
    return packet, decoded


# --- code tables ------------------------------------------------------------------------


def test_method_table_is_the_documented_one() -> None:
    assert {m.encode(): i for i, m in enumerate(SPEC_METHODS, start=1)} == METHOD_CODES
    assert METHOD_CODES[b"BASELINE-CONTROL"] == 26  # hyphen: Tomcat's spelling


@pytest.mark.parametrize(("method", "code"), list(METHOD_CODES.items()))
def test_every_method_code_round_trips(method: bytes, code: int) -> None:
    packet, decoded = through(request(method))
    assert packet[5] == code
    assert packet.endswith(b"\x00\x00\xff")  # no headers, no attribute: no stored_method
    assert decoded.method == method


@pytest.mark.parametrize("method", [b"PATCH", b"get", b"BASELINE_CONTROL", b"X-CUSTOM"])
def test_methods_outside_the_table_are_stored(method: bytes) -> None:
    packet, decoded = through(request(method))
    assert packet[5] == 0xFF
    stored = b"\x0d" + len(method).to_bytes(2, "big") + method + b"\x00\xff"
    assert packet.endswith(stored)
    assert decoded.method == method


def forward_with_method_byte(code: int) -> bytes:
    packet = bytearray(ClientConnection().send(request()))
    packet[5] = code
    return bytes(packet)


@pytest.mark.parametrize("code", [0, 28, 0x7F, 0xFE])
def test_unknown_method_codes_are_refused(code: int) -> None:
    with pytest.raises(RemoteProtocolError, match="unknown AJP method code"):
        ServerConnection().receive_data(forward_with_method_byte(code))


def test_request_header_table_is_the_documented_one() -> None:
    expected = {h.encode(): 0xA001 + i for i, h in enumerate(SPEC_REQUEST_HEADERS)}
    assert expected == REQUEST_HEADER_CODES


@pytest.mark.parametrize(("name", "code"), list(REQUEST_HEADER_CODES.items()))
@pytest.mark.parametrize("case", [bytes.lower, bytes.upper, bytes.title])
def test_every_request_header_code_round_trips(
    name: bytes, code: int, case: Callable[[bytes], bytes]
) -> None:
    value = b"1" if name == b"content-length" else b"v"
    packet, decoded = through(request(headers=((case(name), value),)))
    assert code.to_bytes(2, "big") + b"\x00\x01" + value + b"\x00" in packet
    assert name not in packet.lower()
    assert decoded.headers == ((name, value),)


@pytest.mark.parametrize("code", [0xA000, 0xA00F, 0xA0FF])
def test_unknown_request_header_codes_are_refused(code: int) -> None:
    packet = ClientConnection().send(request(headers=((b"Host", b"h"),)))
    bad = packet.replace(b"\xa0\x0b", code.to_bytes(2, "big"))
    with pytest.raises(RemoteProtocolError, match="unknown AJP request header code"):
        ServerConnection().receive_data(bad)


def test_response_header_table_is_the_documented_one() -> None:
    expected = {0xA001 + i: h.encode() for i, h in enumerate(SPEC_RESPONSE_HEADERS)}
    assert expected == RESPONSE_HEADERS_BY_CODE


@pytest.mark.parametrize(("code", "name"), list(RESPONSE_HEADERS_BY_CODE.items()))
@pytest.mark.parametrize("case", [bytes.lower, bytes.upper, bytes.title])
def test_every_response_header_code_round_trips(
    code: int, name: bytes, case: Callable[[bytes], bytes]
) -> None:
    event = SendHeaders(status=200, reason=b"OK", headers=((case(name), b"v"),))
    server = ServerConnection()
    server.receive_data(ClientConnection().send(request()))
    packet = server.send(event)
    assert packet.endswith(b"\x00\x01" + code.to_bytes(2, "big") + b"\x00\x01v\x00")
    client = ClientConnection()
    client.send(request())
    assert client.receive_data(packet) == [
        SendHeaders(status=200, reason=b"OK", headers=((name, b"v"),))
    ]


@pytest.mark.parametrize("code", [0xA000, 0xA00C, 0xA0FF])
def test_unknown_response_header_codes_are_refused(code: int) -> None:
    packet = b"AB\x00\x0c\x04\x00\xc8\x00\x02OK\x00\x00\x01" + code.to_bytes(2, "big")
    packet += b"\x00\x00\x00"
    packet = packet[:2] + (len(packet) - 4).to_bytes(2, "big") + packet[4:]
    client = ClientConnection()
    client.send(request())
    with pytest.raises(RemoteProtocolError, match="unknown AJP response header code"):
        client.receive_data(packet)


def test_attribute_table_is_the_documented_one() -> None:
    assert ATTRIBUTE_NAMES == {
        0x01: "context",
        0x02: "servlet_path",
        0x03: "remote_user",
        0x04: "auth_type",
        0x05: "query_string",
        0x06: "jvm_route",
        0x07: "ssl_cert",
        0x08: "ssl_cipher",
        0x09: "ssl_session",
        0x0A: "req_attribute",
        0x0B: "ssl_key_size",
        0x0C: "secret",
        0x0D: "stored_method",
        0xFF: "are_done",
    }


# --- the transition table, exhaustively -------------------------------------------------

NO_BODY = request()
ONE_BYTE_BODY = request(b"POST", ((b"Content-Length", b"1"),))
HEADERS_EVENT = SendHeaders(status=200, reason=b"OK", headers=())

CLIENT_SENDS: dict[type[Event], Event] = {
    ForwardRequest: NO_BODY,
    CPing: CPing(),
    RequestBody: RequestBody(data=b"x"),
}
CLIENT_RECEIVES: dict[type[Event], bytes] = {
    SendHeaders: encode_send_headers(HEADERS_EVENT, 8192),
    SendBodyChunk: FLUSH_PACKET,  # the one body chunk allowed before SEND_HEADERS too
    GetBodyChunk: encode_get_body_chunk(GetBodyChunk(length=100)),
    EndResponse: END_RESPONSE_PACKETS[True],
    CPong: CPONG_PACKET,
    ConnectionClosed: b"",
}
SERVER_SENDS: dict[type[Event], Event] = {
    SendHeaders: HEADERS_EVENT,
    SendBodyChunk: SendBodyChunk(data=b""),
    GetBodyChunk: GetBodyChunk(length=100),
    EndResponse: EndResponse(reuse=True),
    CPong: CPong(),
}
SERVER_RECEIVES: dict[type[Event], bytes] = {
    ForwardRequest: ClientConnection().send(NO_BODY),
    CPing: v.CPING,
    RequestBody: v.END_OF_BODY,
    ConnectionClosed: b"",
}


def test_the_role_tables_cover_every_event() -> None:
    assert set(CLIENT_SENDS) == WEB_SERVER_SENDS
    assert set(SERVER_SENDS) == CONTAINER_SENDS
    assert set(CLIENT_RECEIVES) == CONTAINER_SENDS | {ConnectionClosed}
    assert set(SERVER_RECEIVES) == WEB_SERVER_SENDS | {ConnectionClosed}
    assert {event for _, event in TRANSITIONS} <= WEB_SERVER_SENDS | CONTAINER_SENDS | {
        ConnectionClosed
    }


def client_at(state: State, owed: bool = False) -> ClientConnection:
    """A client in ``state``; with ``owed``, a request body packet is owed (if it can be)."""
    conn = ClientConnection()
    if state is State.CPING_SENT:
        conn.send(CPing())
    elif state in (State.REQUEST_SENT, State.RESPONSE, State.DONE):
        conn.send(ONE_BYTE_BODY if owed and state is not State.DONE else NO_BODY)
        if state is not State.REQUEST_SENT:
            conn.receive_data(CLIENT_RECEIVES[SendHeaders])
        if state is State.DONE:
            conn.receive_data(END_RESPONSE_PACKETS[True])
    elif state is State.ERROR:
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(b"??")
    elif state is State.CLOSED:
        conn.receive_data(b"")
    assert conn.state is state
    return conn


def server_at(state: State, expecting: bool = False) -> ServerConnection:
    """A server in ``state``; with ``expecting``, a body packet is owed to it (if it can be)."""
    conn = ServerConnection()
    if state is State.CPING_SENT:
        conn.receive_data(v.CPING)
    elif state in (State.REQUEST_SENT, State.RESPONSE, State.DONE):
        conn.receive_data(SERVER_RECEIVES[ForwardRequest])
        if state is not State.REQUEST_SENT:
            conn.send(HEADERS_EVENT)
        if state is State.DONE:
            conn.send(EndResponse(reuse=True))
        elif expecting:
            conn.send(GetBodyChunk(length=100))
    elif state is State.ERROR:
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(b"??")
    elif state is State.CLOSED:
        conn.receive_data(b"")
    assert conn.state is state
    return conn


def expect(
    conn: ClientConnection | ServerConnection,
    state: State,
    event: type[Event],
    act: Callable[[], Any],
    sending: bool,
) -> None:
    expected = TRANSITIONS.get((state, event))
    if expected is not None:
        act()
        assert conn.state is expected, (state, event)
        return
    unusable = state in (State.ERROR, State.CLOSED)
    error = LocalProtocolError if sending or unusable else RemoteProtocolError
    with pytest.raises(error):
        act()
    assert conn.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        act()  # and it stays poisoned


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(CLIENT_SENDS))
def test_client_send_follows_the_table(state: State, event: type[Event]) -> None:
    conn = client_at(state, owed=event is RequestBody)
    expect(conn, state, event, lambda: conn.send(CLIENT_SENDS[event]), sending=True)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(CLIENT_RECEIVES))
def test_client_receive_follows_the_table(state: State, event: type[Event]) -> None:
    conn = client_at(state)
    expect(conn, state, event, lambda: conn.receive_data(CLIENT_RECEIVES[event]), sending=False)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(SERVER_SENDS))
def test_server_send_follows_the_table(state: State, event: type[Event]) -> None:
    conn = server_at(state)
    expect(conn, state, event, lambda: conn.send(SERVER_SENDS[event]), sending=True)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(SERVER_RECEIVES))
def test_server_receive_follows_the_table(state: State, event: type[Event]) -> None:
    conn = server_at(state, expecting=event is RequestBody)
    expect(conn, state, event, lambda: conn.receive_data(SERVER_RECEIVES[event]), sending=False)


@pytest.mark.parametrize("event", list(SERVER_SENDS))
def test_a_side_cannot_send_the_other_sides_events(event: type[Event]) -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError, match="web server does not send"):
        client.send(SERVER_SENDS[event])
    assert client.state is State.ERROR
    server = ServerConnection()
    for sent in CLIENT_SENDS.values():
        with pytest.raises(LocalProtocolError):
            ServerConnection().send(sent)
    with pytest.raises(LocalProtocolError, match="container does not send"):
        server.send(ConnectionClosed())


@pytest.mark.parametrize("state", list(State))
def test_start_next_cycle_only_from_done_with_reuse(state: State) -> None:
    for conn in (client_at(state), server_at(state)):
        if state in NEXT_CYCLE:
            conn.start_next_cycle()
            assert conn.state is NEXT_CYCLE[state]
        else:
            with pytest.raises(LocalProtocolError):
                conn.start_next_cycle()
            assert conn.state is State.ERROR


# --- a random walk: every step follows the table or poisons the connection --------------

CLIENT_STEPS: list[tuple[str, type[Event]]] = [("send", t) for t in CLIENT_SENDS] + [
    ("receive", t) for t in CLIENT_RECEIVES
]


@given(st.lists(st.sampled_from([*CLIENT_STEPS, ("next", Event)]), max_size=12))
def test_client_random_walk_follows_the_table(steps: list[tuple[str, type[Event]]]) -> None:
    conn = ClientConnection()
    for how, event in steps:
        before = conn.state
        try:
            if how == "send":
                conn.send(CLIENT_SENDS[event])
            elif how == "receive":
                conn.receive_data(CLIENT_RECEIVES[event])
            else:
                conn.start_next_cycle()
        except AJPProtocolError:
            assert conn.state is State.ERROR
            continue
        if how == "next":
            assert before is State.DONE
            assert conn.state is State.IDLE
        else:
            assert conn.state is TRANSITIONS[(before, event)]
