"""Write coalescing: what the proxy writes while handling one read leaves as one write.

Writes go out at once (``write_through``), so without coalescing a response head, its
body and the chunked terminator written while handling one member read would be three
sends, three TCP segments with TCP_NODELAY (Twisted's buffer used to join them). Every
entry point of input (a client read, a member read, a member connection coming up) holds
the one :class:`~ajpbalancer._transport.Outbox` the frontends and members share, and the
outermost release sends what each connection was given. These tests count the ``write``
calls the transports see, in the in-memory proxy.
"""

from __future__ import annotations

import pytest

from ajpbalancer.ajp import CPong, EndResponse, RequestBody, SendBodyChunk, SendHeaders
from ajpbalancer.frontend import FrontendProtocol
from tests.unit.proxyharness import Harness, Member, Transport, response, without_date
from tests.unit.test_proxy_ajp_memory import GET, Container, ajp_harness, forward, get_sent

MEMBER_HOST = "127.0.0.2"
HTTP_ONLY = (
    "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
    f"ProxyPass = / http://{MEMBER_HOST}:8080/\n"
)


def record(transport: Transport) -> list[str | bytes]:
    """The writes (bytes) and closes ("close", "abort") ``transport`` sees, in order."""
    events: list[str | bytes] = []
    write, lose, abort = transport.write, transport.loseConnection, transport.abortConnection

    def recorded_write(data: bytes) -> None:
        events.append(data)
        write(data)

    def recorded_lose() -> None:
        events.append("close")
        lose()

    def recorded_abort() -> None:
        events.append("abort")
        abort()

    transport.write = recorded_write  # type: ignore[method-assign]
    transport.loseConnection = recorded_lose  # type: ignore[method-assign]
    transport.abortConnection = recorded_abort  # type: ignore[method-assign]
    return events


def http_sent(
    request: bytes = GET, harness: Harness | None = None
) -> tuple[FrontendProtocol, Transport, Member]:
    """A proxy with an HTTP member, a client whose ``request`` reached the member."""
    h = harness or Harness(HTTP_ONLY)
    proto, client = h.client()
    proto.dataReceived(request)
    member = h.accept_member()
    member.sent()
    return proto, client, member


def test_a_chunked_answer_in_one_member_read_is_one_write_to_the_client() -> None:
    _proto, client, member = http_sent()
    writes = record(client)
    member.reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert len(writes) == 1  # head, two chunks and the terminator
    assert without_date(client.value()) == (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
    )


def test_an_ajp_answer_in_one_member_read_is_one_write_to_the_client() -> None:
    _h, client, tomcat = get_sent()
    tomcat.received()
    writes = record(client)
    tomcat.answer(b"hello")  # headers, body and end in one read
    assert len(writes) == 1
    assert client.value().endswith(b"\r\n\r\nhello")


def test_an_answer_spread_over_reads_is_one_write_per_read() -> None:
    _h, client, tomcat = get_sent()
    tomcat.received()
    writes = record(client)
    headers = ((b"Content-Length", b"4"),)
    tomcat.send(SendHeaders(status=200, reason=b"200", headers=headers), SendBodyChunk(data=b"ab"))
    tomcat.send(SendBodyChunk(data=b"cd"), EndResponse(reuse=True))
    assert len(writes) == 2
    assert writes[1] == b"cd"


def test_pipelined_answers_made_in_one_client_read_are_one_write() -> None:
    h = Harness()
    proto, client = h.client()
    writes = record(client)
    miss = b"GET /elsewhere HTTP/1.1\r\nHost: h\r\n\r\n"
    proto.dataReceived(miss * 3)  # three 404 pages
    assert len(writes) == 1
    assert client.value().count(b"HTTP/1.1 404 Not Found\r\n") == 3


def test_holds_nest_and_the_outermost_release_sends() -> None:
    h = Harness(HTTP_ONLY)
    _proto, client, member = http_sent(harness=h)
    writes = record(client)
    h.context.outbox.hold()
    member.reply(response(b"hello"))  # the member read's own hold ends inside ours
    assert writes == []
    h.context.outbox.release()
    assert len(writes) == 1
    assert client.value().endswith(b"\r\n\r\nhello")


def test_a_closing_answer_is_written_before_the_close() -> None:
    # HTTP/1.0, no keep-alive: the connection is closed after the answer.
    _proto, client, member = http_sent(b"GET /x HTTP/1.0\r\n\r\n")
    events = record(client)
    member.reply(response(b"bye"))
    assert len(events) == 2 and events[1] == "close"
    assert isinstance(events[0], bytes) and events[0].endswith(b"\r\n\r\nbye")


def test_an_abort_while_held_drops_what_was_held_as_twisted_drops_its_buffer() -> None:
    _h, client, tomcat = get_sent()
    tomcat.received()
    events = record(client)
    headers = ((b"Content-Length", b"2"),)
    # More body than declared, in the read that also brought the head: the client's
    # connection is aborted; the head written meanwhile never leaves.
    tomcat.send(SendHeaders(status=200, reason=b"200", headers=headers), SendBodyChunk(data=b"abc"))
    assert events == ["abort", "close"]  # the test transport's abort closes, too
    assert client.aborted


def test_a_client_gone_while_held_gets_nothing_more() -> None:
    h = Harness(HTTP_ONLY)
    _proto, client, member = http_sent(harness=h)
    events = record(client)
    h.context.outbox.hold()
    member.reply(response(b"hello"))
    client.peer_closes()  # connectionLost while held
    h.context.outbox.release()
    assert events == ["close"]


def test_a_small_post_on_a_reused_member_connection_is_one_write() -> None:
    proto, _client, member = http_sent()
    member.reply(response())
    writes = record(member.transport)
    proto.dataReceived(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    assert len(writes) == 1  # the head and the body
    assert member.sent().endswith(b"\r\n\r\nhello")


def test_a_small_chunked_post_on_a_reused_member_connection_is_one_write() -> None:
    proto, _client, member = http_sent()
    member.reply(response())
    writes = record(member.transport)
    proto.dataReceived(
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    )
    assert len(writes) == 1  # the head, two chunks and the end
    assert member.sent().endswith(b"\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")


def test_a_post_that_waited_for_its_member_connection_is_one_write_once_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    to_member: list[bytes] = []
    write = Transport.write

    def counted(self: Transport, data: bytes) -> None:
        if self.getPeer().host == MEMBER_HOST:  # type: ignore[attr-defined]
            to_member.append(data)
        write(self, data)

    monkeypatch.setattr(Transport, "write", counted)
    h = Harness(HTTP_ONLY)
    proto, _client = h.client()
    proto.dataReceived(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    h.accept_member()  # in no read's hold: the exchange holds the outbox itself
    assert len(to_member) == 1
    assert to_member[0].endswith(b"\r\n\r\nhello")


def test_an_ajp_post_sent_on_cpong_is_one_write() -> None:
    h = ajp_harness("ping=500ms")
    proto, _client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd")
    tomcat = Container(h.accept_member())
    tomcat.received()  # the CPING
    writes = record(tomcat.member.transport)
    tomcat.send(CPong())
    assert len(writes) == 1  # the forward request and the body that waited
    events = tomcat.received()
    assert forward(events).method == b"POST"
    assert events[1:] == [RequestBody(data=b"abcd")]


def test_a_small_ajp_post_on_a_reused_connection_is_one_write() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(GET)
    tomcat = Container(h.accept_member())
    tomcat.received()
    tomcat.answer()
    writes = record(tomcat.member.transport)
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd")
    assert len(writes) == 1  # the forward request and the first body packet
    events = tomcat.received()
    assert forward(events).method == b"POST"
    assert events[1:] == [RequestBody(data=b"abcd")]


def test_body_arriving_later_goes_to_the_member_at_once() -> None:
    h = Harness(HTTP_ONLY)
    proto, _client = h.client()
    proto.dataReceived(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n")
    member = h.accept_member()
    assert member.sent().endswith(b"\r\n\r\n")
    writes = record(member.transport)
    proto.dataReceived(b"abcde")
    assert writes == [b"abcde"]  # the read ended: nothing stays held
    proto.dataReceived(b"fghij")
    assert writes == [b"abcde", b"fghij"]
