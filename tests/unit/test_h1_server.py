"""The HTTP/1.1 server connection: events from bytes however they are split, framing of
responses, keep-alive, pipelining with bounded read-ahead, ``100 Continue``, the switch
after a ``101``, and every (state, event) pair against the tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ajpbalancer.h1 import (
    ANSWER_WITHOUT_REQUEST,
    END_OF_MESSAGE,
    NEXT_CYCLE,
    READ_AHEAD,
    RECV_TRANSITIONS,
    SEND_TRANSITIONS,
    BodyMode,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    HTTPProtocolError,
    InformationalResponse,
    LocalProtocolError,
    RecvState,
    Request,
    Response,
    SendState,
    ServerConnection,
    Switched,
)

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"


def post(body: bytes, *, chunks: list[int] | None = None, extra: bytes = b"") -> bytes:
    """A POST of ``body``: Content-Length framed, or chunked into ``chunks`` sizes."""
    if chunks is None:
        return b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
            len(body),
            extra,
            body,
        )
    out = [b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", extra, b"\r\n"]
    pos = 0
    for size in chunks:
        piece = body[pos : pos + size]
        pos += size
        if piece:
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    if pos < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def answer(conn: ServerConnection, body: bytes = b"ok") -> bytes:
    """Answer the outstanding request in full; the bytes written."""
    return conn.start_response(200, [], len(body)) + conn.send_body(body) + conn.end_response()


def serve(pieces: list[bytes]) -> list[tuple[bytes, bytes, bytes]]:
    """Feed ``pieces`` to a connection, answering each request once its body ended, as a
    server does; the (method, target, body) of every request, in order."""
    conn = ServerConnection()
    seen: list[tuple[bytes, bytes, bytes]] = []
    current: list[bytes] | None = None
    head: Request | None = None

    def handle(events: list[Event]) -> None:
        nonlocal current, head
        for event in events:
            if isinstance(event, Request):
                head, current = event, []
            elif isinstance(event, Data):
                assert current is not None
                current.append(event.data)
            elif isinstance(event, EndOfMessage):
                assert head is not None and current is not None
                seen.append((head.head.method, head.head.target, b"".join(current)))
                answer(conn)
                handle(conn.next_events())

    for piece in pieces:
        handle(conn.receive_data(piece))
    return seen


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [p for p in out if p]


bodies = st.binary(max_size=300)
requests_st = st.lists(
    st.one_of(
        st.just(("GET", b"", None)),
        st.tuples(st.just("CL"), bodies, st.none()),
        st.tuples(st.just("TE"), bodies, st.lists(st.integers(1, 50), max_size=6)),
    ),
    min_size=1,
    max_size=5,
)


def encode(reqs: list[tuple[str, bytes, list[int] | None]]) -> tuple[bytes, list[bytes]]:
    stream = b""
    expected = []
    for kind, body, chunks in reqs:
        if kind == "GET":
            stream += GET
            expected.append(b"")
        else:
            stream += post(body, chunks=chunks if kind == "TE" else None)
            expected.append(body)
    return stream, expected


# -- the same events however the bytes are split ---------------------------------------


@given(requests_st)
def test_pipelined_requests_whole_give_every_request_and_body(
    reqs: list[tuple[str, bytes, list[int] | None]],
) -> None:
    stream, expected = encode(reqs)
    assert [body for _, _, body in serve([stream])] == expected


@settings(max_examples=30)
@given(requests_st)
def test_pipelined_requests_byte_by_byte_give_the_same(
    reqs: list[tuple[str, bytes, list[int] | None]],
) -> None:
    stream, expected = encode(reqs)
    assert serve([stream[i : i + 1] for i in range(len(stream))]) == serve([stream])
    assert [body for _, _, body in serve([stream])] == expected


@given(requests_st, st.lists(st.integers(0, 10_000), max_size=12))
def test_pipelined_requests_split_anywhere_give_the_same(
    reqs: list[tuple[str, bytes, list[int] | None]], cuts: list[int]
) -> None:
    stream, _ = encode(reqs)
    assert serve(splits(stream, cuts)) == serve([stream])


@given(st.binary(max_size=40))
def test_trailing_garbage_after_a_request_is_held_never_parsed_early(garbage: bytes) -> None:
    conn = ServerConnection()
    events = conn.receive_data(GET + garbage)
    assert [type(e) for e in events] == [Request, EndOfMessage]
    assert conn.recv_state is RecvState.DONE
    assert conn.buffered == len(garbage)


# -- request heads and framing ------------------------------------------------------------


def test_a_request_without_body_is_its_head_and_its_end() -> None:
    conn = ServerConnection()
    request, end = conn.receive_data(GET)
    assert isinstance(request, Request) and end is END_OF_MESSAGE
    assert (request.body, request.length) == (BodyMode.NONE, None)
    assert (conn.recv_state, conn.send_state) == (RecvState.DONE, SendState.WAIT)


def test_body_that_comes_with_the_head_is_checked_before_any_event() -> None:
    conn = ServerConnection()
    with pytest.raises(HTTPProtocolError) as info:
        conn.receive_data(
            b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
    assert info.value.status == 400
    assert conn.recv_state is RecvState.ERROR


def test_content_length_over_limit_request_body_is_413_at_the_head() -> None:
    conn = ServerConnection(max_body=10)
    with pytest.raises(HTTPProtocolError) as info:
        conn.receive_data(post(b"x" * 11))
    assert info.value.status == 413


def test_chunked_body_over_limit_request_body_is_413_when_it_crosses() -> None:
    conn = ServerConnection(max_body=10)
    events = conn.receive_data(post(b"", chunks=[]).replace(b"0\r\n\r\n", b"a\r\n0123456789\r\n"))
    assert [type(e) for e in events] == [Request, Data]
    with pytest.raises(HTTPProtocolError) as info:
        conn.receive_data(b"1\r\nx\r\n")
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("fields", "upgrade"),
    [
        (b"Connection: Upgrade\r\nUpgrade: websocket\r\n", b"websocket"),
        (
            b"Connection: keep-alive, upgrade\r\nUpgrade: h2c\r\nUpgrade: websocket\r\n",
            b"h2c, websocket",
        ),
        (b"Upgrade: websocket\r\n", None),
        (b"Connection: upgrade\r\n", None),
    ],
)
def test_upgrade_is_asked_only_with_both_fields(fields: bytes, upgrade: bytes | None) -> None:
    conn = ServerConnection()
    request = conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")[0]
    assert isinstance(request, Request)
    assert request.upgrade == upgrade


def test_upgrade_in_http_1_0_is_not_asked() -> None:
    conn = ServerConnection()
    request = conn.receive_data(b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n")[0]
    assert isinstance(request, Request) and request.upgrade is None


def test_absolute_form_becomes_origin_form_with_its_host() -> None:
    conn = ServerConnection()
    request = conn.receive_data(b"GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert isinstance(request, Request)
    assert request.head.target == b"/a?b"


def test_eof_between_requests_is_connection_closed() -> None:
    conn = ServerConnection()
    conn.receive_data(GET)
    answer(conn)
    assert conn.next_events() == []
    assert conn.receive_data(b"") == [ConnectionClosed()]
    assert conn.recv_state is RecvState.CLOSED


def test_eof_inside_a_body_is_the_clients_error() -> None:
    conn = ServerConnection()
    conn.receive_data(post(b"abc")[:-1])
    with pytest.raises(HTTPProtocolError):
        conn.receive_data(b"")
    assert conn.recv_state is RecvState.ERROR


# -- responses ----------------------------------------------------------------------------


def started(request: bytes = GET) -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(request)
    return conn


def test_known_length_is_content_length_and_keeps_the_connection() -> None:
    conn = started()
    assert conn.start_response(200, [(b"A", b"b")], 2) == (
        b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 2\r\n\r\n"
    )
    assert conn.send_body(b"ok") == b"ok"
    assert conn.end_response() == b""
    assert (conn.recv_state, conn.send_state) == (RecvState.IDLE, SendState.IDLE)


def test_unknown_length_is_chunked_for_http_1_1() -> None:
    conn = started()
    head = conn.start_response(200, [], None)
    assert head.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    assert conn.send_body(b"abc") == b"3\r\nabc\r\n"
    assert conn.send_body(b"") == b""
    assert conn.end_response() == b"0\r\n\r\n"


def test_unknown_length_closes_an_http_1_0_connection() -> None:
    conn = started(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert conn.start_response(200, [], None).endswith(b"Connection: close\r\n\r\n")
    assert conn.send_body(b"abc") == b"abc"
    assert conn.end_response() == b""
    assert conn.send_state is SendState.MUST_CLOSE


def test_http_1_0_keep_alive_is_said_back() -> None:
    conn = started(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert conn.start_response(200, [], 0).endswith(b"Connection: keep-alive\r\n\r\n")
    conn.end_response()
    assert conn.send_state is SendState.IDLE


def test_head_response_keeps_content_length_and_has_no_body() -> None:
    conn = started(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Content-Length: 5\r\n" in conn.start_response(200, [], 5)
    assert conn.send_body(b"hello") == b""
    assert conn.end_response() == b""


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_and_no_framing(status: int) -> None:
    conn = started()
    head = conn.start_response(status, [], None)
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert conn.send_body(b"x") == b""


def test_more_body_than_content_length_is_a_local_error() -> None:
    conn = started()
    conn.start_response(200, [], 2)
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"abc")
    assert conn.send_state is SendState.ERROR


def test_ending_short_of_content_length_is_a_local_error() -> None:
    conn = started()
    conn.start_response(200, [], 2)
    conn.send_body(b"a")
    with pytest.raises(LocalProtocolError):
        conn.end_response()


def test_connection_close_from_the_client_is_honoured() -> None:
    conn = started(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert conn.start_response(200, [], 0).endswith(b"Connection: close\r\n\r\n")
    conn.end_response()
    assert conn.send_state is SendState.MUST_CLOSE


def test_an_error_before_any_request_is_framed_for_http_1_1_and_closes() -> None:
    conn = ServerConnection()
    with pytest.raises(HTTPProtocolError):
        conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n")
    head = conn.start_response(400, [], 3)
    assert head == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    conn.send_body(b"bad")
    conn.end_response()
    assert conn.send_state is SendState.MUST_CLOSE


def test_a_response_before_the_body_drops_the_rest_then_serves_the_next() -> None:
    conn = started(post(b"0123456789")[:-6])
    answer(conn)
    assert conn.recv_state is RecvState.DISCARD
    events = conn.receive_data(b"456789" + GET)
    assert [type(e) for e in events] == [Request, EndOfMessage]
    assert conn.discarded == 0  # counted per cycle: the new request started a new one


# -- 100 Continue ---------------------------------------------------------------------------


EXPECT = b"Expect: 100-continue\r\n"


def test_100_continue_is_allowed_once_while_the_client_waits() -> None:
    conn = started(post(b"abc", extra=EXPECT)[:-3])
    assert conn.continue_allowed
    assert conn.send(InformationalResponse(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not conn.continue_allowed
    with pytest.raises(LocalProtocolError):
        conn.send(InformationalResponse(100))


def test_100_continue_is_not_allowed_without_expect() -> None:
    conn = started(post(b"abc")[:-3])
    assert not conn.continue_allowed


def test_answering_an_expecting_client_without_100_closes_the_connection() -> None:
    """The client may or may not send its body after a final answer: reading on would
    take its next request for the body, so the connection closes (RFC 9110 §10.1.1)."""
    conn = started(post(b"abc", extra=EXPECT)[:-3])
    head = conn.start_response(404, [], 0)
    assert head.endswith(b"Connection: close\r\n\r\n")
    conn.end_response()
    assert conn.send_state is SendState.MUST_CLOSE


def test_answering_after_100_continue_keeps_the_connection() -> None:
    conn = started(post(b"abc", extra=EXPECT)[:-3])
    conn.send(InformationalResponse(100))
    assert not conn.start_response(200, [], 0).endswith(b"Connection: close\r\n\r\n")


# -- the switch after 101 -------------------------------------------------------------------

UPGRADE = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"


def test_101_switches_and_hands_over_what_followed_the_request() -> None:
    conn = started(UPGRADE + b"\x81\x05hello")
    head = conn.send(InformationalResponse(101, [(b"Upgrade", b"websocket")]))
    assert head == b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    assert (conn.recv_state, conn.send_state) == (RecvState.SWITCHED, SendState.SWITCHED)
    assert conn.next_events() == [Switched(b"\x81\x05hello")]
    assert conn.next_events() == []
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_101_to_a_request_that_did_not_ask_is_a_local_error() -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send(InformationalResponse(101))


def test_another_answer_to_an_upgrade_request_is_an_ordinary_response() -> None:
    conn = started(UPGRADE + GET)
    answer(conn)
    assert [type(e) for e in conn.next_events()] == [Request, EndOfMessage]


# -- read-ahead -----------------------------------------------------------------------------


def test_pipelined_bytes_stop_being_wanted_at_the_read_ahead_bound() -> None:
    conn = started()
    fed = 0
    while conn.wants_data:
        conn.receive_data(GET)
        fed += len(GET)
        assert fed < 10 * READ_AHEAD
    assert READ_AHEAD <= conn.buffered < READ_AHEAD + len(GET)
    answer(conn)
    events = conn.next_events()  # one request at a time: the next one is parsed now
    assert [type(e) for e in events] == [Request, EndOfMessage]
    assert conn.wants_data


@given(st.integers(1, 70_000))
def test_whatever_the_read_size_held_bytes_stay_within_the_bound_plus_one_read(size: int) -> None:
    conn = started()
    stream = GET * (3 * READ_AHEAD // len(GET))
    pos = 0
    while conn.wants_data and pos < len(stream):
        conn.receive_data(stream[pos : pos + size])
        pos += size
    assert conn.buffered < READ_AHEAD + size


# -- every (state, event) pair ------------------------------------------------------------


def in_send_state(state: SendState) -> ServerConnection:
    conn = ServerConnection()
    if state is SendState.IDLE:
        return conn
    conn.receive_data(UPGRADE)
    if state is SendState.WAIT:
        return conn
    if state is SendState.BODY:
        conn.start_response(200, [], None)
    elif state is SendState.MUST_CLOSE:
        conn.start_response(200, [], 0, close=True)
        conn.end_response()
    elif state is SendState.SWITCHED:
        conn.send(InformationalResponse(101))
    elif state is SendState.ERROR:
        with pytest.raises(LocalProtocolError):
            conn.send(END_OF_MESSAGE)
    assert conn.send_state is state
    return conn


SENDS = {
    InformationalResponse: lambda: InformationalResponse(102),
    Response: lambda: Response(200, length=0),
    Data: lambda: Data(b"x"),
    EndOfMessage: lambda: END_OF_MESSAGE,
}


@pytest.mark.parametrize("state", list(SendState))
@pytest.mark.parametrize("kind", list(SENDS))
def test_sending_follows_the_table(state: SendState, kind: type) -> None:
    conn = in_send_state(state)
    new = SEND_TRANSITIONS.get((state, kind))
    if state is SendState.IDLE and kind is Response:
        assert conn.recv_state in ANSWER_WITHOUT_REQUEST
        conn.send(SENDS[kind]())  # an answer with no request: it closes
        assert conn.send(END_OF_MESSAGE) == b""
        assert conn.send_state is SendState.MUST_CLOSE
        return
    if new is None:
        with pytest.raises(LocalProtocolError):
            conn.send(SENDS[kind]())
        assert conn.send_state is SendState.ERROR
        return
    conn.send(SENDS[kind]())
    if kind is EndOfMessage:
        assert conn.send_state is SendState.IDLE  # kept alive: the next cycle
    else:
        assert conn.send_state is new


def in_recv_state(state: RecvState) -> ServerConnection:
    conn = ServerConnection()
    if state is RecvState.HEAD:
        conn.receive_data(b"GET /")
    elif state is RecvState.BODY:
        conn.receive_data(post(b"abc")[:-3])
    elif state is RecvState.DONE:
        conn.receive_data(GET)
    elif state is RecvState.DISCARD:
        conn.receive_data(post(b"abc")[:-3])
        answer(conn)
    elif state is RecvState.SWITCHED:
        conn.receive_data(UPGRADE)
        conn.send(InformationalResponse(101))
    elif state is RecvState.CLOSED:
        conn.receive_data(b"")
    elif state is RecvState.ERROR:
        with pytest.raises(HTTPProtocolError):
            conn.receive_data(b"\x00\r\n\r\n")
    assert conn.recv_state is state
    return conn


@pytest.mark.parametrize("state", list(RecvState))
def test_receiving_data_or_eof_follows_the_table(state: RecvState) -> None:
    """Bytes are taken in every state where a client may send them; an end of input
    between requests is a ConnectionClosed exactly where the table lists one."""
    takes_bytes = state not in (RecvState.SWITCHED, RecvState.CLOSED, RecvState.ERROR)
    conn = in_recv_state(state)
    if takes_bytes:
        conn.receive_data(b"a")
    else:
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"a")
    conn = in_recv_state(state)
    if state in (RecvState.SWITCHED, RecvState.CLOSED, RecvState.ERROR):
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"")
    elif state in (RecvState.BODY,):
        with pytest.raises(HTTPProtocolError):
            conn.receive_data(b"")
    else:
        closed = conn.receive_data(b"")
        assert (closed == [ConnectionClosed()]) == ((state, ConnectionClosed) in RECV_TRANSITIONS)
        assert conn.recv_state is RecvState.CLOSED


def test_next_cycle_table_covers_the_states_a_response_can_end_in() -> None:
    assert set(NEXT_CYCLE) == {RecvState.DONE, RecvState.BODY}


def test_an_answer_to_a_head_that_never_completed_is_framed_and_closes() -> None:
    """A request head that did not arrive in time is answered 408: no request was parsed."""
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHo")
    head = conn.start_response(408, [], 0)
    assert head.endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    conn.end_response()
    assert (conn.recv_state, conn.send_state) == (RecvState.ERROR, SendState.MUST_CLOSE)
