"""How requests, bodies and responses flow through both ends: which body packet is owed
when and how big, when the connection may be reused, what a body-less response does
with body chunks, and the container side's own rules."""

from __future__ import annotations

import pytest

from ajpbalancer.ajp import (
    ClientConnection,
    ConnectionClosed,
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    LocalProtocolError,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
    State,
)
from tests.unit import ajp_vectors as v


def request(method: bytes = b"GET", *headers: tuple[bytes, bytes]) -> ForwardRequest:
    return ForwardRequest(
        method=method,
        uri=b"/",
        remote_addr=b"127.0.0.1",
        server_name=b"h",
        server_port=80,
        is_ssl=False,
        headers=headers,
    )


def length(n: int) -> tuple[bytes, bytes]:
    return (b"content-length", str(n).encode())


CHUNKED = (b"Transfer-Encoding", b"chunked")


def get_body_chunk(n: int) -> bytes:
    return b"AB\x00\x03\x06" + n.to_bytes(2, "big")


def headers(status: int = 200) -> bytes:
    server = ServerConnection()
    server.receive_data(ClientConnection().send(request()))
    return server.send(SendHeaders(status=status, reason=b"R", headers=()))


def body_chunk(data: bytes) -> bytes:
    n = len(data)
    return b"AB" + (n + 4).to_bytes(2, "big") + b"\x03" + n.to_bytes(2, "big") + data + b"\x00"


class Pair:
    """A client and a server joined by a perfect wire."""

    def __init__(self, size: int = 8192) -> None:
        self.client = ClientConnection(max_packet_size=size)
        self.server = ServerConnection(max_packet_size=size)

    def up(self, event: Event) -> list[Event]:
        return self.server.receive_data(self.client.send(event))

    def down(self, event: Event) -> list[Event]:
        data = self.server.send(event)
        return self.client.receive_data(data) if data else []


# --- the request body, client side ------------------------------------------------------


def test_content_length_owes_the_first_packet_unasked() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", length(5)))
    assert (conn.body_packet_owed, conn.body_owed, conn.body_finished) == (True, 5, False)
    assert conn.send(RequestBody(data=b"hel")) == b"\x12\x34\x00\x05\x00\x03hel"
    assert (conn.body_packet_owed, conn.body_owed, conn.body_finished) == (False, 0, False)
    conn.receive_data(get_body_chunk(8186))
    assert (conn.body_packet_owed, conn.body_owed) == (True, 2)  # capped at what is left
    conn.send(RequestBody(data=b"lo"))
    assert conn.body_finished
    assert not conn.body_packet_owed


def test_the_first_packet_is_capped_at_the_packet_size() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", length(100_000)))
    assert conn.body_owed == conn.max_body_chunk == 8186
    with pytest.raises(LocalProtocolError, match="8187 request body bytes, but only 8186"):
        conn.send(RequestBody(data=b"x" * 8187))


@pytest.mark.parametrize("framing", [(), (length(0),)])
def test_no_body_owes_nothing_until_asked(framing: tuple[tuple[bytes, bytes], ...]) -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", *framing))
    assert (conn.body_packet_owed, conn.body_owed, conn.body_finished) == (False, 0, True)
    with pytest.raises(LocalProtocolError, match="no request body packet is owed"):
        conn.send(RequestBody(data=b""))


def test_a_get_body_chunk_for_a_body_less_request_is_answered_with_the_end() -> None:
    """Tomcat asks when it does not know the length; httpd answers with an empty packet."""
    conn = ClientConnection()
    conn.send(request())
    conn.receive_data(get_body_chunk(8186))
    assert (conn.body_packet_owed, conn.body_owed) == (True, 0)
    assert conn.send(RequestBody(data=b"")) == v.END_OF_BODY


def test_a_body_less_request_sends_no_data_even_when_asked() -> None:
    conn = ClientConnection()
    conn.send(request())
    conn.receive_data(get_body_chunk(10))
    with pytest.raises(LocalProtocolError, match="1 request body bytes, but only 0"):
        conn.send(RequestBody(data=b"x"))


def test_a_chunked_body_is_sent_only_when_asked_and_ends_with_the_empty_packet() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", CHUNKED))
    assert (conn.body_packet_owed, conn.body_finished) == (False, False)
    conn.receive_data(get_body_chunk(100))
    assert conn.body_owed == 100
    conn.send(RequestBody(data=b"x" * 100))
    conn.receive_data(get_body_chunk(65535))
    assert conn.body_owed == 8186
    conn.send(RequestBody(data=b"x" * 10))
    assert not conn.body_finished
    conn.receive_data(get_body_chunk(8186))
    conn.send(RequestBody(data=b""))
    assert conn.body_finished


def test_a_content_length_body_cannot_end_early() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", length(5)))
    with pytest.raises(LocalProtocolError, match="ends 5 bytes before its Content-Length"):
        conn.send(RequestBody(data=b""))


def test_a_content_length_body_cannot_run_over() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", length(5)))
    conn.send(RequestBody(data=b"hello"))
    conn.receive_data(get_body_chunk(8186))
    with pytest.raises(LocalProtocolError, match="only 0 are owed"):
        conn.send(RequestBody(data=b"!"))


def test_body_is_never_sent_twice_for_one_ask() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", CHUNKED))
    conn.receive_data(get_body_chunk(10))
    conn.send(RequestBody(data=b"a"))
    with pytest.raises(LocalProtocolError, match="no request body packet is owed"):
        conn.send(RequestBody(data=b"b"))


def test_the_owed_packet_may_follow_send_headers() -> None:
    """The servlet may answer before reading; Tomcat still reads the owed packet."""
    conn = ClientConnection()
    conn.send(request(b"POST", length(5)))
    conn.receive_data(v.SEND_HEADERS_200)
    assert conn.body_owed == 5
    conn.send(RequestBody(data=b"hello"))
    conn.receive_data(get_body_chunk(8186))  # and it may still ask for more
    conn.send(RequestBody(data=b""))
    conn.receive_data(v.END_RESPONSE_REUSE)
    assert conn.reusable


def test_end_response_while_a_packet_is_owed_forbids_reuse() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", length(5)))
    events = conn.receive_data(v.SEND_HEADERS_200 + v.END_RESPONSE_REUSE)
    assert events[-1] == EndResponse(reuse=True)
    assert conn.state is State.DONE
    assert not conn.reusable
    with pytest.raises(LocalProtocolError, match="did not allow reuse"):
        conn.start_next_cycle()


def test_nothing_can_be_sent_after_end_response() -> None:
    conn = ClientConnection()
    conn.send(request(b"POST", length(5)))
    conn.receive_data(v.SEND_HEADERS_200 + v.END_RESPONSE_CLOSE)
    with pytest.raises(LocalProtocolError, match="not allowed in state DONE"):
        conn.send(RequestBody(data=b"hello"))


# --- reuse ------------------------------------------------------------------------------


def test_reuse_starts_a_clean_next_cycle() -> None:
    conn = ClientConnection()
    assert conn.reusable
    conn.send(request(b"POST", CHUNKED))
    conn.receive_data(get_body_chunk(8186))
    conn.send(RequestBody(data=b""))
    conn.receive_data(v.SEND_HEADERS_200)
    assert not conn.reusable
    conn.receive_data(v.END_RESPONSE_REUSE)
    assert conn.reusable
    conn.start_next_cycle()
    assert conn.state is State.IDLE
    assert (conn.body_packet_owed, conn.body_finished) == (False, True)
    conn.send(request(b"POST", length(3)))
    assert conn.body_owed == 3


def test_reuse_0_closes() -> None:
    conn = ClientConnection()
    conn.send(request())
    conn.receive_data(v.SEND_HEADERS_200 + v.END_RESPONSE_CLOSE)
    assert (conn.state, conn.reusable) == (State.DONE, False)
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    assert conn.state is State.ERROR


@pytest.mark.parametrize("before", ["idle", "done"])
def test_a_close_between_exchanges_is_an_event(before: str) -> None:
    conn = ClientConnection()
    if before == "done":
        conn.send(request())
        conn.receive_data(v.SEND_HEADERS_200 + v.END_RESPONSE_REUSE)
    assert conn.receive_data(b"") == [ConnectionClosed()]
    assert conn.state is State.CLOSED
    assert not conn.reusable
    with pytest.raises(LocalProtocolError, match="closed by the peer"):
        conn.send(CPing())


def test_cping_cpong_goes_back_to_idle() -> None:
    conn = ClientConnection()
    assert conn.send(CPing()) == v.CPING
    assert (conn.state, conn.reusable) == (State.CPING_SENT, False)
    assert conn.receive_data(v.CPONG) == [CPong()]
    assert (conn.state, conn.reusable) == (State.IDLE, True)
    conn.send(request())


# --- the response, client side ----------------------------------------------------------


def test_a_flush_before_send_headers_is_ignored() -> None:
    conn = ClientConnection()
    conn.send(request())
    assert conn.receive_data(v.FLUSH) == []
    assert conn.state is State.REQUEST_SENT
    assert conn.receive_data(v.SEND_HEADERS_200 + v.FLUSH) == [
        v.SEND_HEADERS_200_EVENT,
        SendBodyChunk(data=b""),
    ]


def test_body_chunks_after_the_headers_are_returned_in_order() -> None:
    conn = ClientConnection()
    conn.send(request())
    events = conn.receive_data(
        v.SEND_HEADERS_200 + body_chunk(b"a") + body_chunk(b"b" * 8184) + v.END_RESPONSE_REUSE
    )
    assert events[1:] == [
        SendBodyChunk(data=b"a"),
        SendBodyChunk(data=b"b" * 8184),
        EndResponse(reuse=True),
    ]


@pytest.mark.parametrize(
    ("method", "status", "kept"),
    [
        (b"HEAD", 200, False),
        (b"GET", 204, False),
        (b"GET", 205, False),
        (b"GET", 304, False),
        (b"GET", 200, True),
        (b"GET", 404, True),
        (b"POST", 201, True),
    ],
)
def test_body_chunks_of_a_body_less_response_are_dropped(
    method: bytes, status: int, kept: bool
) -> None:
    """httpd's HTTP output filter discards them, Tomcat never sends them: dropped, no error.
    Flushes still come through."""
    conn = ClientConnection()
    conn.send(request(method))
    events = conn.receive_data(headers(status) + body_chunk(b"x") + v.FLUSH + v.END_RESPONSE_REUSE)
    body = [e for e in events if isinstance(e, SendBodyChunk)]
    assert body == ([SendBodyChunk(data=b"x")] if kept else []) + [SendBodyChunk(data=b"")]
    assert conn.reusable


def test_get_body_chunk_is_capped_by_the_packet_size() -> None:
    for size in (8192, 65536):
        conn = ClientConnection(max_packet_size=size)
        conn.send(request(b"POST", CHUNKED))
        conn.receive_data(get_body_chunk(65535))
        assert conn.body_owed == conn.max_body_chunk == size - 6


@pytest.mark.parametrize("size", [8191, 65537, 0])
def test_packet_size_must_be_8192_to_65536(size: int) -> None:
    for cls in (ClientConnection, ServerConnection):
        with pytest.raises(ValueError, match=r"8192\.\.65536"):
            cls(max_packet_size=size)


def test_packet_size_is_exposed_with_the_chunk_limits() -> None:
    client, server = ClientConnection(16384), ServerConnection(16384)
    assert client.max_packet_size == server.max_packet_size == 16384
    assert client.max_body_chunk == server.max_request_chunk == 16378
    assert server.max_body_chunk == 16376


# --- the container side -----------------------------------------------------------------


def test_server_reads_the_unsolicited_first_packet_and_asks_for_the_rest() -> None:
    pair = Pair()
    assert pair.up(request(b"POST", length(10))) == [request(b"POST", length(10))]
    assert pair.server.body_expected
    assert pair.up(RequestBody(data=b"12345")) == [RequestBody(data=b"12345")]
    assert not pair.server.body_expected
    assert not pair.server.body_finished
    assert pair.down(GetBodyChunk(length=8186)) == [GetBodyChunk(length=8186)]
    assert pair.server.body_expected
    assert pair.up(RequestBody(data=b"67890")) == [RequestBody(data=b"67890")]
    assert pair.server.body_finished
    assert pair.down(SendHeaders(status=200, reason=b"OK", headers=()))
    assert pair.down(EndResponse(reuse=True)) == [EndResponse(reuse=True)]
    pair.client.start_next_cycle()
    pair.server.start_next_cycle()
    assert pair.server.state is State.IDLE
    assert pair.up(CPing()) == [CPing()]
    assert pair.down(CPong()) == [CPong()]


def test_server_reads_a_chunked_body_to_its_end() -> None:
    pair = Pair()
    pair.up(request(b"POST", CHUNKED))
    assert not pair.server.body_expected
    pair.down(GetBodyChunk(length=65535))
    assert pair.client.body_owed == 8186
    pair.up(RequestBody(data=b"x" * 8186))
    pair.down(GetBodyChunk(length=8186))
    assert pair.up(RequestBody(data=b"")) == [RequestBody(data=b"")]
    assert pair.server.body_finished
    with pytest.raises(LocalProtocolError, match="after the end of the request body"):
        pair.server.send(GetBodyChunk(length=1))


def test_server_cuts_long_body_data_into_packets() -> None:
    pair = Pair()
    pair.up(request())
    pair.down(SendHeaders(status=200, reason=b"OK", headers=()))
    data = bytes(range(256)) * 100  # 25600 bytes: 8184 + 8184 + 8184 + 1048
    packets = pair.server.send(SendBodyChunk(data=data))
    assert len(packets) == len(data) + 4 * 8
    events = pair.client.receive_data(packets)
    assert [len(e.data) for e in events if isinstance(e, SendBodyChunk)] == [8184] * 3 + [1048]
    assert b"".join(e.data for e in events if isinstance(e, SendBodyChunk)) == data


@pytest.mark.parametrize(("method", "status"), [(b"HEAD", 200), (b"GET", 304), (b"GET", 204)])
def test_server_swallows_the_body_of_a_body_less_response(method: bytes, status: int) -> None:
    """As Tomcat does: the data is not sent; flushes still are."""
    pair = Pair()
    pair.up(request(method))
    pair.down(SendHeaders(status=status, reason=b"R", headers=()))
    assert pair.server.send(SendBodyChunk(data=b"body")) == b""
    assert pair.server.send(SendBodyChunk(data=b"")) == v.FLUSH


def test_server_may_flush_before_its_headers_but_not_send_data() -> None:
    pair = Pair()
    pair.up(request())
    assert pair.down(SendBodyChunk(data=b"")) == []  # the client ignores it
    with pytest.raises(LocalProtocolError, match="before SEND_HEADERS"):
        pair.server.send(SendBodyChunk(data=b"x"))


def test_server_cannot_end_the_response_before_the_owed_body_packet() -> None:
    """Tomcat reads (swallows) the outstanding packet before END_RESPONSE."""
    pair = Pair()
    pair.up(request(b"POST", length(5)))
    pair.down(SendHeaders(status=200, reason=b"OK", headers=()))
    with pytest.raises(LocalProtocolError, match="receive it first"):
        pair.server.send(EndResponse(reuse=True))


def test_server_asks_at_most_one_packet_at_a_time() -> None:
    pair = Pair()
    pair.up(request(b"POST", CHUNKED))
    pair.down(GetBodyChunk(length=10))
    with pytest.raises(LocalProtocolError, match="while a request body packet is owed"):
        pair.server.send(GetBodyChunk(length=10))


def test_server_end_response_without_reuse_is_final() -> None:
    pair = Pair()
    pair.up(request())
    pair.down(SendHeaders(status=500, reason=b"500", headers=()))
    pair.down(EndResponse(reuse=False))
    assert not pair.server.reusable
    with pytest.raises(LocalProtocolError):
        pair.server.start_next_cycle()


def test_server_sees_a_close_between_requests() -> None:
    conn = ServerConnection()
    assert conn.reusable
    assert conn.receive_data(b"") == [ConnectionClosed()]
    assert conn.state is State.CLOSED
