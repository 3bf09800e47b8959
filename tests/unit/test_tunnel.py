"""Upgrades end to end in memory: the handshake as a proxied request, then the tunnel.

The real frontend, exchange, pools and member connections run over memory transports
(``tests/unit/proxyharness.py``); a member answers ``101`` by hand and the test moves
bytes, pauses transports, half-closes, resets and advances the clock.
"""

from __future__ import annotations

import io

import pytest

from ajpbalancer.admin import ProxyMetrics
from ajpbalancer.proxy import AccessLog
from tests.unit.proxyharness import HalfCloseTransport, Harness, Member, Transport, response

CONFIG = """
[ajpbalancer]
access_log = off

[frontend]
listen = tcp:8080:interface=127.0.0.1
ProxyPass = /ws http://127.0.0.2:8080/ws upgrade=websocket timeout=30
            /plain http://127.0.0.5:8080/plain timeout=30
            /app balancer://c/app
            /ajp balancer://a/app
ProxyPassReverse = /ws http://127.0.0.2:8080/ws
{extra}

[balancer://c]
BalancerMember = http://127.0.0.3:8080 route=n3 upgrade=websocket timeout=30
                 http://127.0.0.4:8080 route=n4 upgrade=WebSocket,chat timeout=30
ProxySet = stickysession=JSESSIONID

[balancer://a]
BalancerMember = ajp://127.0.0.6:8009 route=a6 upgrade=websocket upgradeurl=http://127.0.0.6:8080
                 ajp://127.0.0.7:8009 route=a7 upgrade=websocket upgradeurl=http://127.0.0.7:8081
ProxySet = stickysession=JSESSIONID
"""

UPGRADE = (
    b"GET /ws/chat HTTP/1.1\r\nHost: www.example\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"
)
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: a\r\n\r\n"
)
CLIENT_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: a\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
)


def harness(
    extra: str = "", *, half_close: bool = False, log: io.StringIO | None = None
) -> Harness:
    h = Harness(CONFIG.format(extra=extra), access_log=None if log is None else AccessLog(log))
    h.half_close = half_close
    return h


def open_tunnel(
    h: Harness, request: bytes = UPGRADE, *, early: bytes = b"", member_early: bytes = b""
) -> tuple[object, Transport, Member]:
    """A client whose upgrade the member accepted; the 101 checked and cleared."""
    proto, client = h.client()
    proto.dataReceived(request + early)
    member = h.accept_member()
    member.sent()
    member.reply(SWITCH + member_early)
    assert client.value().startswith(CLIENT_101)
    client.clear()
    return proto, client, member


# -- the handshake --------------------------------------------------------------------------


def test_upgrade_goes_to_the_member_with_its_fields_at_the_end_as_apache_sends_them() -> None:
    h = harness()
    proto, _client = h.client()
    proto.dataReceived(UPGRADE)
    assert h.accept_member().sent() == (
        b"GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.2:8080\r\nSec-WebSocket-Key: k\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: www.example\r\n"
        b"X-Forwarded-Server: proxy.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(UPGRADE.replace(b"/ws/chat", b"/plain/x"), id="member-without-upgrade"),
        pytest.param(UPGRADE.replace(b"Upgrade: websocket", b"Upgrade: h2c"), id="other-protocol"),
        pytest.param(UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0"), id="http-1.0"),
        pytest.param(UPGRADE.replace(b"Connection: Upgrade\r\n", b""), id="no-connection-upgrade"),
    ],
)
def test_a_request_that_may_not_switch_goes_without_upgrade(request_: bytes) -> None:
    h = harness()
    proto, _client = h.client()
    proto.dataReceived(request_)
    sent = h.accept_member().sent()
    assert b"Upgrade" not in sent and sent.endswith(b"\r\n\r\n")


def test_a_101_to_a_request_that_did_not_switch_is_a_502() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE.replace(b"/ws/chat", b"/plain/x"))
    member = h.accept_member()
    member.reply(SWITCH)
    assert client.value().startswith(b"HTTP/1.1 502 ")
    assert member.transport.aborted


def test_the_101_carries_the_members_fields_rewritten_and_no_date() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE)
    member = h.accept_member()
    member.reply(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
        b"Keep-Alive: timeout=5\r\nLocation: http://127.0.0.2:8080/ws/there\r\n"
        b"Set-Cookie: a=1\r\n\r\n"
    )
    assert client.value() == (
        b"HTTP/1.1 101 Switching Protocols\r\nLocation: http://www.example/ws/there\r\n"
        b"Set-Cookie: a=1\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("upgrade", "message"),
    [
        (b"Upgrade: h2c\r\n", b"unexpected Upgrade: h2c (expecting websocket)"),
        (b"", b"unexpected Upgrade: n/a (expecting websocket)"),
    ],
)
def test_a_101_naming_a_protocol_not_offered_is_a_502(upgrade: bytes, message: bytes) -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE)
    member = h.accept_member()
    member.reply(b"HTTP/1.1 101 Switching Protocols\r\n" + upgrade + b"\r\n")
    assert client.value().startswith(b"HTTP/1.1 502 ")
    assert message in client.value()
    assert member.transport.aborted


def test_another_answer_is_an_ordinary_response() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE)
    member = h.accept_member()
    member.sent()
    member.reply(
        b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Content-Length: 2\r\n\r\nno"
    )
    answer = client.value()
    assert answer.startswith(b"HTTP/1.1 426 ")
    assert b"Upgrade:" not in answer  # hop-by-hop, as any answer's (Apache passes it on)
    assert answer.endswith(b"\r\n\r\nno")
    client.clear()
    proto.dataReceived(UPGRADE.replace(b"Connection: Upgrade\r\nUpgrade: websocket\r\n", b""))
    assert h.pending_connects() == []  # the member connection went back to its pool
    assert member.sent().startswith(b"GET /ws/chat HTTP/1.1\r\n")
    member.reply(SWITCH)  # to a request that did not ask, on the connection that once did
    assert client.value().startswith(b"HTTP/1.1 502 ")
    assert member.transport.aborted


def test_a_balancer_member_switches_by_its_own_list_case_insensitively() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(
        UPGRADE.replace(b"/ws/chat", b"/app/chat")
        .replace(b"websocket", b"CHAT")
        .replace(b"Sec-WebSocket-Key: k\r\n", b"Cookie: JSESSIONID=x.n4\r\n")
    )
    assert h.pending_connects() == [("127.0.0.4", 8080)]
    member = h.accept_member()
    assert member.sent().endswith(b"Connection: Upgrade\r\nUpgrade: CHAT\r\n\r\n")
    member.reply(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\n\r\n")
    assert client.value().endswith(b"Connection: Upgrade\r\nUpgrade: chat\r\n\r\n")


def test_failover_happens_before_the_101() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE.replace(b"/ws/chat", b"/app/chat"))
    first = h.pending_connects()
    h.refuse_member()
    assert h.pending_connects() != first
    member = h.accept_member()
    assert member.sent().endswith(b"Upgrade: websocket\r\n\r\n")
    member.reply(SWITCH)
    assert client.value().startswith(CLIENT_101)


def test_an_ajp_member_upgrades_over_its_upgradeurl_chosen_by_its_route() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(b"GET /ajp/x HTTP/1.1\r\nHost: h\r\nCookie: JSESSIONID=s.a7\r\n\r\n")
    assert h.pending_connects() == [("127.0.0.7", 8009)]  # an ordinary request: AJP
    ajp = h.accept_member()
    assert ajp.sent().startswith(b"\x12\x34")
    proto2, client2 = h.client(port=40001)
    proto2.dataReceived(
        UPGRADE.replace(b"/ws/chat", b"/ajp/chat").replace(
            b"Sec-WebSocket-Key: k\r\n", b"Cookie: JSESSIONID=s.a7\r\n"
        )
    )
    assert h.pending_connects() == [("127.0.0.7", 8081)]
    http = h.accept_member()
    assert http.sent() == (
        b"GET /app/chat HTTP/1.1\r\nHost: 127.0.0.7:8081\r\nCookie: JSESSIONID=s.a7\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: www.example\r\n"
        b"X-Forwarded-Server: proxy.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    http.reply(SWITCH + b"hi")
    assert client2.value() == CLIENT_101 + b"hi"
    assert client.value() == b""  # the AJP request is still waiting for its answer


def test_a_101_before_the_request_body_ended_waits_for_it() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(
        UPGRADE.replace(b"GET", b"POST").replace(b"\r\n\r\n", b"\r\nContent-Length: 6\r\n\r\nabc")
    )
    member = h.accept_member()
    assert member.sent().endswith(b"\r\n\r\nabc")
    member.reply(SWITCH + b"early")
    assert client.value() == b""
    assert member.transport.producerState == "paused"
    proto.dataReceived(b"defTUNNEL")
    assert member.sent() == b"defTUNNEL"  # the rest of the body, then the tunnel's bytes
    assert client.value() == CLIENT_101 + b"early"
    assert member.transport.producerState == "producing"


# -- the tunnel -----------------------------------------------------------------------------


def test_bytes_pass_both_ways_the_first_ones_of_each_side_included() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE + b"first")
    member = h.accept_member()
    assert b"first" not in member.sent()  # held until the switch
    member.reply(SWITCH + b"hello")
    assert client.value() == CLIENT_101 + b"hello"
    assert member.sent() == b"first"
    proto.dataReceived(b"\x81\x05ping!")
    assert member.sent() == b"\x81\x05ping!"
    member.reply(b"\x81\x05pong!")
    assert client.value().endswith(b"\x81\x05pong!")


def test_a_member_that_takes_no_more_stops_the_client_being_read() -> None:
    h = harness()
    _proto, client, member = open_tunnel(h)
    assert member.transport.producer is not None
    member.transport.producer.pauseProducing()
    assert client.producerState == "paused"
    member.transport.producer.resumeProducing()
    assert client.producerState == "producing"


def test_a_client_that_takes_no_more_stops_the_member_being_read() -> None:
    h = harness()
    _proto, client, member = open_tunnel(h)
    assert client.producer is not None
    client.producer.pauseProducing()
    assert member.transport.producerState == "paused"
    client.producer.resumeProducing()
    assert member.transport.producerState == "producing"


def test_a_half_close_passes_through_and_the_other_way_still_flows() -> None:
    h = harness(half_close=True)
    proto, client, member = open_tunnel(h)
    assert isinstance(client, HalfCloseTransport)
    assert isinstance(member.transport, HalfCloseTransport)
    proto.dataReceived(b"last")
    client.peer_half_closes()
    assert member.sent() == b"last"
    assert member.transport.write_closed and not member.transport.closed
    member.reply(b"answer")
    assert client.value() == b"answer"
    member.transport.peer_half_closes()
    assert client.write_closed
    assert client.closed and member.transport.closed  # both ways done: both closed


def test_a_half_close_toward_a_connection_that_cannot_closes_both() -> None:
    h = harness()  # no half-close: as over TLS
    _proto, client, member = open_tunnel(h)
    member.reply(b"bye")
    member.transport.peer_closes()
    assert client.value() == b"bye"
    assert client.closed and not client.aborted


def test_a_member_that_dies_closes_the_client_at_once() -> None:
    h = harness()
    _proto, client, member = open_tunnel(h)
    member.transport.peer_resets()
    assert client.aborted


def test_a_client_that_goes_closes_the_member() -> None:
    h = harness()
    _proto, client, member = open_tunnel(h)
    client.peer_closes()
    assert member.transport.closed and not member.transport.aborted


def test_a_client_reset_resets_the_member() -> None:
    h = harness()
    _proto, client, member = open_tunnel(h)
    client.peer_resets()
    assert member.transport.aborted


def test_an_idle_tunnel_is_closed_after_the_members_timeout() -> None:
    h = harness()
    proto, client, member = open_tunnel(h)
    h.reactor.advance(20)
    proto.dataReceived(b"x")  # traffic either way restarts the wait
    h.reactor.advance(20)
    member.reply(b"y")
    h.reactor.advance(29)
    assert not client.closed
    h.reactor.advance(2)
    assert client.closed and member.transport.closed


def test_proxywebsocketidletimeout_sets_the_idle_timeout() -> None:
    h = harness("ProxyWebsocketIdleTimeout = 100")
    _proto, client, member = open_tunnel(h)
    h.reactor.advance(90)  # past the member's timeout (30) and the client's timers
    assert not client.closed and not member.transport.closed
    h.reactor.advance(11)
    assert client.closed and member.transport.closed


def test_proxywebsocketidletimeout_0_means_no_idle_timeout() -> None:
    h = harness("ProxyWebsocketIdleTimeout = 0")
    _proto, client, _member = open_tunnel(h)
    h.reactor.advance(100_000)
    assert not client.closed


def test_a_connection_that_does_not_close_is_aborted_after_the_timeout() -> None:
    h = harness()
    _proto, client, member = open_tunnel(h)
    client.lingering = True  # never reads what is still buffered for it
    member.transport.peer_closes()
    assert not client.closed
    h.reactor.advance(31)
    assert client.aborted


def test_the_access_log_line_is_written_when_the_tunnel_closes() -> None:
    log = io.StringIO()
    h = harness(log=log)
    proto, client, member = open_tunnel(h)
    proto.dataReceived(b"12345")
    member.reply(b"abc")
    h.reactor.advance(2.5)
    assert log.getvalue() == ""
    client.peer_closes()
    line = log.getvalue()
    assert '"GET /ws/chat HTTP/1.1" 101 3 "-" "-" http://127.0.0.2:8080' in line
    assert line.endswith(" tunnel in=5 out=3 time=2.500s\n")


def test_an_open_tunnel_keeps_its_member_busy() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(UPGRADE.replace(b"/ws/chat", b"/app/chat"))
    member = h.accept_member()
    member.reply(SWITCH)
    balancer = h.runtime.balancers["c"]
    assert sum(s.busy for s in balancer.states) == 1
    h.reactor.advance(10)
    assert sum(s.busy for s in balancer.states) == 1
    client.peer_closes()
    assert sum(s.busy for s in balancer.states) == 0


def test_the_client_connection_keeps_no_http_timer_after_the_switch() -> None:
    h = harness("KeepAliveTimeout = 1\nRequestReadTimeout = header=1 body=1")
    _proto, client, _member = open_tunnel(h)
    h.reactor.advance(20)
    assert not client.closed


def test_the_tunnel_is_counted_in_the_metrics() -> None:
    metrics = ProxyMetrics(lambda: None)
    h = Harness(CONFIG.format(extra=""), observer=metrics)
    proto, client, member = open_tunnel(h)
    proto.dataReceived(b"1234")
    member.reply(b"ab")
    assert metrics.tunnels()[("", "http://127.0.0.2:8080")].open == 1
    text = metrics.expose(None)[0].decode()
    assert 'ajpbalancer_member_open_tunnels{balancer="",member="http://127.0.0.2:8080"} 1.0' in text
    assert (
        'ajpbalancer_member_tunnels_total{balancer="",member="http://127.0.0.2:8080"} 1.0' in text
    )
    client.peer_closes()
    counts = metrics.tunnels()[("", "http://127.0.0.2:8080")]
    assert (counts.open, counts.opened, counts.sent, counts.received) == (0, 1, 4, 2)
    text = metrics.expose(None)[0].decode()
    assert "ajpbalancer_member_tunnel_sent_bytes_total" in text
    assert 'status_class="1xx"' in text  # the request itself, answered 101


def test_a_reload_keeps_open_tunnels() -> None:
    h = harness()
    proto, client, member = open_tunnel(h)
    h.runtime.close()  # what a reload does to the runtime it replaces
    proto.dataReceived(b"still")
    assert member.sent() == b"still"
    member.reply(b"here")
    assert client.value() == b"here"


def test_an_ordinary_request_after_the_tunnel_work_is_unchanged() -> None:
    h = harness()
    proto, client = h.client()
    proto.dataReceived(b"GET /plain/x HTTP/1.1\r\nHost: h\r\n\r\n")
    member = h.accept_member()
    member.sent()
    member.reply(response(b"ok"))
    assert client.value().endswith(b"\r\n\r\nok")
