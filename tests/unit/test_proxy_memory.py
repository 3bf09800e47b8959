"""The proxy path end to end in memory: client bytes in, member bytes out, and back."""

from __future__ import annotations

import io
import re

import pytest
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.python.failure import Failure

from ajpbalancer.h1 import READ_AHEAD
from ajpbalancer.proxy import AccessLog
from tests.unit.proxyharness import Harness, response, without_date

GET = b"GET /app/x HTTP/1.1\r\nHost: www.example\r\n\r\n"


def test_get_is_forwarded_with_member_host_and_forwarded_headers() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(b"GET /app/a/b?q=1&r=2 HTTP/1.1\r\nHost: www.example\r\nAccept: */*\r\n\r\n")
    member = h.accept_member()
    assert member.sent() == (
        b"GET /app/a/b?q=1&r=2 HTTP/1.1\r\nHost: 127.0.0.3:8080\r\nAccept: */*\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: www.example\r\n"
        b"X-Forwarded-Server: proxy.example\r\n\r\n"
    )


def test_response_reaches_client_with_repeated_set_cookie_kept_apart() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.sent()
    member.reply(response(b"hi", b"Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"))
    assert without_date(client.value()) == (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )


def test_keep_alive_member_connection_is_reused() -> None:
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        "ProxyPass = / http://127.0.0.2:8080/\n"
    )
    proto, client = h.client()
    proto.dataReceived(GET.replace(b"/app/x", b"/one"))
    member = h.accept_member()
    member.sent()
    member.reply(response())
    proto.dataReceived(GET.replace(b"/app/x", b"/two"))
    assert h.pending_connects() == []
    assert member.sent().startswith(b"GET /two HTTP/1.1\r\n")
    member.reply(response(b"again"))
    assert client.value().endswith(b"again")
    assert len(h.reactor.tcpClients) == 1


def test_balancer_spreads_requests_by_loadfactor() -> None:
    h = Harness()
    members = []
    hosts = []
    for i in range(8):
        proto, _client = h.client(port=41000 + i)
        proto.dataReceived(GET)
        if h.pending_connects():
            members.append(h.accept_member())
        member = next(m for m in members if m.transport.value())
        member.sent()
        hosts.append(member.transport.getPeer().host)  # type: ignore[attr-defined]
        member.reply(response())
    assert hosts == ["127.0.0.3", "127.0.0.2", "127.0.0.3", "127.0.0.3"] * 2


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(b"/elsewhere", id="no-matching-rule"),
        pytest.param(b"/static/a.css", id="excluded-path"),
        pytest.param(b"/app/../static/x", id="dot-segments-cannot-escape-a-prefix-rule"),
    ],
)
def test_unrouted_path_gives_404_and_nothing_reaches_a_member(target: bytes) -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.value().startswith(b"HTTP/1.1 404 ")
    assert h.reactor.tcpClients == []


def test_proxypassmatch_substitutes_captures_into_the_path() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(b"GET /re/first/rest/of?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    member = h.accept_member()
    assert member.sent().startswith(b"GET /x/rest/of/first?x=1 HTTP/1.1\r\n")


def test_request_body_streams_before_the_client_finished_sending() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    member = h.accept_member()
    sent = member.sent()
    assert sent.endswith(b"Content-Length: 10\r\n" + sent.split(b"Content-Length: 10\r\n")[1])
    assert sent.endswith(b"\r\n\r\nabc")
    proto.dataReceived(b"defghij")
    assert member.sent() == b"defghij"


def test_chunked_request_body_is_forwarded_chunked() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(
        b"POST /app/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    member = h.accept_member()
    sent = member.sent()
    assert b"Transfer-Encoding: chunked\r\n" in sent
    assert sent.endswith(b"\r\n\r\n3\r\nabc\r\n")
    proto.dataReceived(b"2;ext=1\r\nde\r\n0\r\n\r\n")
    assert member.sent() == b"2\r\nde\r\n0\r\n\r\n"


def test_body_waits_while_member_connection_is_being_made() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
    assert client.producerState == "paused"
    member = h.accept_member()
    assert member.sent().endswith(b"abc")
    assert client.producerState == "producing"


def test_slow_member_pauses_reading_the_client_body() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    member = h.accept_member()
    assert member.transport.producer is not None
    member.transport.producer.pauseProducing()
    assert client.producerState == "paused"
    member.transport.producer.resumeProducing()
    assert client.producerState == "producing"


def test_slow_client_pauses_the_member_connection() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
    assert client.producer is not None
    client.producer.pauseProducing()
    assert member.transport.producerState == "paused"
    client.producer.resumeProducing()
    assert member.transport.producerState == "producing"


def test_connection_paused_by_a_slow_client_is_resumed_before_reuse() -> None:
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        "ProxyPass = / http://127.0.0.2:8080/\n"
    )
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabcd")
    assert client.producer is not None
    client.producer.pauseProducing()
    member.reply(b"efgh")  # the rest arrives (already in flight) while paused
    assert member.transport.producerState == "producing"
    proto2, client2 = h.client(port=40001)
    proto2.dataReceived(GET)
    assert h.pending_connects() == []
    member.sent()
    member.reply(response(b"small"))
    assert client2.value().endswith(b"small")


def test_refused_connection_fails_over_to_the_other_member() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    assert h.pending_connects() == [("127.0.0.3", 8080)]
    h.refuse_member()
    assert h.pending_connects() == [("127.0.0.2", 8080)]
    h.accept_member().reply(response(b"from the other"))
    assert client.value().endswith(b"from the other")


def test_member_refusing_is_skipped_for_retry_seconds() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(GET)
    h.refuse_member()  # 127.0.0.3 (loadfactor 3) is now in error for 60 s
    member = h.accept_member()
    member.reply(response())
    for _ in range(3):
        proto.dataReceived(GET)
        assert h.pending_connects() == []
        assert member.sent().startswith(b"GET ")
        member.reply(response())
    h.reactor.advance(61)
    proto, _client = h.client(port=40001)  # the first one idled out meanwhile
    # Back in the rotation: byrequests' counters give it the very next turn but one.
    proto.dataReceived(GET)
    assert h.pending_connects() == []
    member.sent()
    member.reply(response())
    proto.dataReceived(GET)
    assert h.pending_connects() == [("127.0.0.3", 8080)]


def test_every_member_refusing_gives_503() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    h.refuse_member()
    h.refuse_member()
    assert client.value().startswith(b"HTTP/1.1 503 ")


def test_connect_timeouts_on_every_member_give_504() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    for _ in range(2):
        assert h.reactor.tcpClients[-1][3] == 3  # connectiontimeout
        h.fail_member(Failure(ConnectTimeoutError()))
    assert client.value().startswith(b"HTTP/1.1 504 ")


def test_member_silent_past_its_timeout_gives_504_and_is_dropped() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    h.reactor.advance(29)
    assert client.value() == b""
    h.reactor.advance(2)
    assert client.value().startswith(b"HTTP/1.1 504 ")
    assert member.transport.aborted


def test_malformed_member_response_gives_502_and_discards_the_connection() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n")
    assert client.value().startswith(b"HTTP/1.1 502 ")
    assert member.transport.aborted


def test_member_closing_before_answering_a_get_fails_over() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    h.accept_member().transport.peer_closes()
    h.accept_member().reply(response(b"second"))
    assert client.value().endswith(b"second")


def test_member_closing_before_answering_a_post_gives_502_without_resending() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    h.accept_member().transport.peer_closes()
    assert h.pending_connects() == []
    assert client.value().startswith(b"HTTP/1.1 502 ")


def test_member_dying_mid_body_closes_the_client_connection() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    member.transport.peer_closes()
    assert client.value().endswith(b"partial")
    assert client.aborted


def test_client_going_away_aborts_the_member_request() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    client.peer_closes()
    assert member.transport.aborted


def test_stale_pooled_connection_is_retried_once_on_a_new_one() -> None:
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        "ProxyPass = / http://127.0.0.2:8080/\n"
    )
    proto, client = h.client()
    proto.dataReceived(GET)
    first = h.accept_member()
    first.reply(response(b"one"))
    proto.dataReceived(GET)
    first.sent()
    first.transport.peer_closes()  # the member had closed the idle connection
    second = h.accept_member()
    assert second.sent().startswith(b"GET /app/x HTTP/1.1\r\n")
    second.reply(response(b"two"))
    assert client.value().endswith(b"two")


def test_post_body_already_sent_is_not_resent() -> None:
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        "ProxyPass = / http://127.0.0.2:8080/\n"
    )
    proto, client = h.client()
    proto.dataReceived(GET)
    first = h.accept_member()
    first.reply(response(b"one"))
    proto.dataReceived(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    first.transport.peer_closes()
    assert h.pending_connects() == []
    assert b"502" in client.value().split(b"one", 1)[1]


def test_pipelined_requests_are_answered_in_order() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET.replace(b"/x", b"/1") + GET.replace(b"/x", b"/2"))
    m1 = h.accept_member()
    assert m1.sent().startswith(b"GET /app/1 ")
    assert h.pending_connects() == []  # the second waits for the first answer
    m1.reply(response(b"first"))
    m2 = h.accept_member()
    assert m2.sent().startswith(b"GET /app/2 ")
    m2.reply(response(b"second"))
    out = client.value()
    assert out.index(b"first") < out.index(b"second")


def test_pipelining_behind_a_slow_request_stops_reading_at_the_read_ahead_bound() -> None:
    """A client that pipelines behind a request whose answer is slow gets its reading
    paused once READ_AHEAD bytes are held: the proxy never buffers more than that plus
    one read per connection, however much the client sends."""
    h = Harness()
    proto, client = h.client()
    direct = GET.replace(b"/app/", b"/direct/")  # one member, one kept-alive connection
    proto.dataReceived(direct)
    member = h.accept_member()  # the slow request reached it and is not answered
    member.sent()
    piece = direct.replace(b"/x", b"/next") * 400  # ~20 KiB per read
    sent = 0
    while client.producerState != "paused" and sent < (1 << 20):
        proto.dataReceived(piece)  # a real transport delivers nothing more once paused
        sent += len(piece)
    assert client.producerState == "paused"
    assert READ_AHEAD <= proto.buffered < READ_AHEAD + len(piece)
    held = proto.buffered
    member.reply(response(b"slow"))  # the answer ends: the next request goes
    assert member.sent().startswith(b"GET /d/next ")
    assert proto.buffered == held - len(piece) // 400  # one request taken
    answered = 0
    while client.producerState == "paused" and answered < 2000:
        member.reply(response(b"next"))  # reading resumes once fewer bytes are held
        member.sent()
        answered += 1
    assert client.producerState == "producing"
    assert proto.buffered < READ_AHEAD


def test_answer_before_body_end_discards_rest_and_keeps_connection() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    member = h.accept_member()
    member.reply(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert client.value().startswith(b"HTTP/1.1 413 ")
    proto.dataReceived(b"defghij" + GET)
    assert not client.closed
    assert len(h.pending_connects()) == 1


def test_unknown_length_response_is_chunked_to_http11_clients() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
    assert without_date(client.value()) == (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
    )


def test_close_delimited_response_to_http10_client_closes() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"GET /app/x HTTP/1.0\r\n\r\n")
    member = h.accept_member()
    member.reply(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
    member.transport.peer_closes()
    assert (
        without_date(client.value()) == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"
    )
    assert client.closed and not client.aborted


def test_head_response_has_no_body_but_keeps_content_length() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET.replace(b"GET", b"HEAD"))
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
    assert without_date(client.value()) == b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"


def test_interim_100_continue_from_member_is_not_forwarded() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"ok"))
    assert without_date(client.value()) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_expect_100_continue_is_answered_by_the_proxy_once_the_member_is_ready() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(
        b"POST /app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert client.value() == b""
    member = h.accept_member()
    assert without_date(client.value()) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert b"Expect" not in member.sent()


def test_hop_by_hop_response_headers_are_not_forwarded() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response(b"x", b"Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: t=5\r\n"))
    assert without_date(client.value()) == b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"


def test_smuggling_shape_is_refused_before_reaching_a_member() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(
        b"POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert client.value().startswith(b"HTTP/1.1 400 ")
    assert client.closed
    assert h.reactor.tcpClients == []


def test_new_connection_sending_nothing_is_closed_after_the_header_timeout() -> None:
    """RequestReadTimeout header=20-40: 20 s for a first request that never starts."""
    h = Harness()
    _proto, client = h.client()
    h.reactor.advance(19.9)
    assert not client.closed
    h.reactor.advance(0.2)
    assert client.closed
    assert client.value() == b""


def test_idle_keep_alive_connection_is_closed_after_keepalivetimeout() -> None:
    """KeepAliveTimeout 5 (Apache's default) between requests, closed without an answer."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response())
    client.clear()
    h.reactor.advance(4.9)
    assert not client.closed
    h.reactor.advance(0.2)
    assert client.closed
    assert client.value() == b""


def _direct(params: str) -> Harness:
    return Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        f"ProxyPass = / http://127.0.0.2:8080/ {params}\n"
    )


def test_max_caps_member_connections_and_queues_the_rest() -> None:
    h = _direct("max=1 connectiontimeout=5")
    p1, c1 = h.client(port=40001)
    p2, c2 = h.client(port=40002)
    p1.dataReceived(GET)
    p2.dataReceived(GET)
    assert len(h.pending_connects()) == 1
    member = h.accept_member()
    assert member.sent().startswith(b"GET ")
    member.reply(response(b"first"))
    # The queued request gets the same connection as soon as it is free.
    assert member.sent().startswith(b"GET ")
    member.reply(response(b"second"))
    assert c1.value().endswith(b"first")
    assert c2.value().endswith(b"second")
    assert len(h.reactor.tcpClients) == 1


def test_waiting_for_a_free_connection_ends_in_503_after_connectiontimeout() -> None:
    h = _direct("max=1 connectiontimeout=5")
    p1, _c1 = h.client(port=40001)
    p2, c2 = h.client(port=40002)
    p1.dataReceived(GET)
    h.accept_member()
    p2.dataReceived(GET)
    h.reactor.advance(4.9)
    assert c2.value() == b""
    h.reactor.advance(0.2)
    assert c2.value().startswith(b"HTTP/1.1 503 ")


def test_disablereuse_closes_the_member_connection_after_each_request() -> None:
    h = _direct("disablereuse=on")
    proto, _client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response())
    assert member.transport.closed
    proto.dataReceived(GET)
    assert len(h.pending_connects()) == 1


def test_pooled_connection_idle_longer_than_ttl_is_closed_not_reused() -> None:
    h = _direct("ttl=10")
    proto, _client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response())
    h.reactor.advance(11)
    assert member.transport.closed
    # A new client: this one was closed after KeepAliveTimeout (5 s).
    proto, _client = h.client(port=40001)
    proto.dataReceived(GET)
    assert len(h.pending_connects()) == 1


def test_pooled_connection_within_ttl_is_reused() -> None:
    h = _direct("ttl=10")
    proto, _client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response())
    member.sent()
    h.reactor.advance(5)
    # A new client: this one was closed after KeepAliveTimeout (5 s).
    proto, _client = h.client(port=40001)
    proto.dataReceived(GET)
    assert h.pending_connects() == []
    assert member.sent().startswith(b"GET ")


def test_bytes_after_a_complete_response_discard_the_connection() -> None:
    h = _direct("")
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response(b"ok") + b"HTTP/1.1 200 OK\r\n")
    assert client.value().endswith(b"\r\n\r\nok")
    assert member.transport.closed
    proto.dataReceived(GET)
    assert len(h.pending_connects()) == 1


def test_access_log_line_has_combined_format_and_member() -> None:
    class Clock:
        def time(self) -> float:
            return 0.0

    stream = io.StringIO()
    h = Harness(access_log=AccessLog(stream, clock=Clock()))
    proto, _client = h.client()
    proto.dataReceived(
        b"GET /app/x HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: t\r\n\r\n"
    )
    member = h.accept_member()
    member.reply(response(b"12345"))
    line = stream.getvalue()
    assert line.startswith("127.0.0.1 - - [01/Jan/1970:")
    assert line.endswith('] "GET /app/x HTTP/1.1" 200 5 "http://r/" "t" http://127.0.0.3:8080\n')


def test_a_date_is_added_to_answers_without_one_and_a_members_date_is_kept() -> None:
    h = _direct("")
    proto, client = h.client()
    proto.dataReceived(GET)
    member = h.accept_member()
    member.reply(response(b"a"))
    assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n", client.value())
    client.clear()
    proto.dataReceived(GET)
    member.sent()
    member.reply(response(b"b", b"Date: Tue, 01 Jan 2030 00:00:00 GMT\r\n"))
    assert client.value().count(b"Date:") == 1
    assert b"Date: Tue, 01 Jan 2030 00:00:00 GMT\r\n" in client.value()


@pytest.mark.parametrize("host", [b"example.org:", b"a b", b"x:y", b"h:123456", b"[::1"])
def test_an_invalid_host_field_gets_400_and_reaches_no_member(host: bytes) -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"GET /app/x HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert client.value().startswith(b"HTTP/1.1 400 ")
    assert h.reactor.tcpClients == []


@pytest.mark.parametrize(
    "target", [b"/static/x", b"/elsewhere"], ids=["excluded-by-bang", "no-rule"]
)
def test_an_expecting_request_answered_by_the_proxy_itself_closes_the_connection(
    target: bytes,
) -> None:
    """A client that sent ``Expect: 100-continue`` and got a final answer from the proxy
    (a ``!`` rule, no rule) may or may not send its body: the connection closes, as
    Apache's does, so that the next request is never read as that body."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(
        b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\n"
    )
    proto.dataReceived(b"GET /app/x HTTP/1.1\r\nHost: x\r\n\r\n")  # would be "the body"
    out = client.value()
    assert out.startswith(b"HTTP/1.1 404 ")
    assert b"\r\nConnection: close\r\n" in out.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert out.count(b"HTTP/1.1 ") == 1
    assert client.closed
    assert h.pending_connects() == []


def test_an_invalid_connection_option_is_refused_before_any_member_is_chosen() -> None:
    """``Connection: a/b`` is not a list of tokens: 400 from the frontend, logged with no
    member and counted against none."""
    stream = io.StringIO()
    h = Harness(access_log=AccessLog(stream))
    proto, client = h.client()
    proto.dataReceived(b"GET /app/x HTTP/1.1\r\nHost: x\r\nConnection: a/b\r\n\r\n")
    assert client.value().startswith(b"HTTP/1.1 400 ")
    assert h.pending_connects() == []
    states = h.runtime.balancers["c"].states
    assert [(s.elected, s.busy) for s in states] == [(0, 0), (0, 0)]


def test_requests_the_frontend_refuses_are_logged_with_no_member() -> None:
    """A refusal with no exchange (bad framing, a head that cannot be parsed) is in the
    access log as Apache logs it: the request line when there is one, else ``-``."""
    stream = io.StringIO()
    h = Harness(access_log=AccessLog(stream))
    proto, _client = h.client()
    proto.dataReceived(b"POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello")
    proto2, _client2 = h.client(port=40001)
    proto2.dataReceived(b"GET /app/x HTTP/1.1\nHost: x\n\n")
    first, second = stream.getvalue().splitlines()
    assert '"POST /app/x HTTP/1.1" 400 ' in first and first.endswith('"-" "-" -')
    assert ' "-" 400 ' in second and second.endswith('"-" "-" -')
