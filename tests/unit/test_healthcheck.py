"""Active health checks in memory: probes, counting, the ``C`` flag, and traffic around it.

Everything runs on a ``MemoryReactorClock``: probe connections are the reactor's
``connectTCP`` attempts, which the test completes (``accept_member``), refuses or leaves
hanging, and time moves only when the test advances it. No request is ever needed for a
check to happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOFactory

from ajpbalancer._transport import Outbox
from ajpbalancer.ajp import (
    CPing,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)
from ajpbalancer.balancer import Status
from ajpbalancer.config import parse
from ajpbalancer.members import (
    AJPMemberConnection,
    FailureKind,
    HTTPMemberConnection,
    MemberError,
)
from ajpbalancer.members._health import (
    PROBE_BODY_LIMIT,
    Change,
    HealthChecker,
    HealthCount,
)
from ajpbalancer.service import ProxyService
from tests.unit.proxyharness import Harness, Member, response

GET = b"GET /app/x HTTP/1.1\r\nHost: www.example\r\n\r\n"


def harness(*members: str, rules: str = "ProxyPass = /app balancer://c/app") -> Harness:
    lines = "\n                 ".join(members)
    return Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:8080\n"
        f"{rules}\n[balancer://c]\nBalancerMember = {lines}\n"
    )


def started(*members: str, **kw: Any) -> tuple[Harness, HealthChecker]:
    """A harness whose health checks run; the first checker (of the first member)."""
    h = harness(*members, **kw)
    h.runtime.start_health_checks()
    return h, h.runtime.health_checkers[0]


def member_state(h: Harness, index: int = 0) -> Any:
    return h.runtime.members()[index].lb


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """The text of every event logged while the test runs."""
    lines: list[str] = []

    def observe(event: LogEvent) -> None:
        text = formatEvent(event)
        if text:
            lines.append(text)

    globalLogPublisher.addObserver(observe)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observe)


HTTP_A = "http://127.0.0.2:8080 hcinterval=10 timeout=5 connectiontimeout=2"
HTTP_B = "http://127.0.0.3:8080"


def probe_http(h: Harness, status_line: bytes, extra: bytes = b"") -> Member:
    """Let the next probe connect and answer it with ``status_line`` and no body."""
    m = h.accept_member()
    m.reply(status_line + b"\r\nContent-Length: 0\r\n" + extra + b"\r\n")
    return m


# --- what each hcmethod sends ------------------------------------------------------------


def test_get_sends_httpd_http10_request_for_member_path_plus_hcuri() -> None:
    h, _ = started("http://127.0.0.2:8080/ctx/ hcmethod=GET hcuri=/up hcinterval=10")
    h.reactor.advance(10)
    assert h.pending_connects() == [("127.0.0.2", 8080)]
    m = h.accept_member()
    assert m.sent() == (
        b"GET /ctx/up HTTP/1.0\r\nHost: 127.0.0.2:8080\r\nConnection: close\r\n\r\n"
    )


def test_head_without_hcuri_asks_for_slash() -> None:
    h, _ = started("http://127.0.0.2:8080 hcmethod=HEAD hcinterval=10")
    h.reactor.advance(10)
    assert h.accept_member().sent().startswith(b"HEAD / HTTP/1.0\r\nHost: 127.0.0.2:8080\r\n")


def test_options_asks_for_star_as_httpd_does() -> None:
    h, _ = started("http://127.0.0.2:8080 hcmethod=OPTIONS hcuri=/ignored hcinterval=10")
    h.reactor.advance(10)
    assert h.accept_member().sent().startswith(b"OPTIONS * HTTP/1.0\r\n")


def test_host_header_carries_the_port_even_when_default() -> None:
    h, _ = started("http://backend.example hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    sent = h.accept_member().sent()
    assert b"\r\nHost: backend.example:80\r\n" in sent


# --- GET / HEAD / OPTIONS over HTTP: what passes -----------------------------------------


@pytest.mark.parametrize(
    ("status", "passed"),
    [(b"200 OK", True), (b"302 Found", True), (b"404 Not Found", False), (b"500 Oops", False)],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_http_methods_pass_on_2xx_and_3xx_only(method: str, status: bytes, passed: bool) -> None:
    h, checker = started(f"http://127.0.0.2:8080 hcmethod={method} hcinterval=10")
    h.reactor.advance(10)
    m = probe_http(h, b"HTTP/1.1 " + status)
    assert checker.last is not None
    assert checker.last.passed is passed, checker.last
    assert member_state(h).has(Status.HC_FAIL) is not passed
    assert m.transport.closed
    assert not checker.probing


def test_http_status_line_without_reason_is_parsed() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=HEAD hcinterval=10")
    h.reactor.advance(10)
    h.accept_member().reply(b"HTTP/1.0 204\r\n\r\n")
    assert checker.last is not None and checker.last.passed


def test_garbage_instead_of_a_status_line_fails() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"\x41\x42\x00\x01\x09\r\n\r\n")
    assert checker.last is not None and not checker.last.passed
    assert m.transport.aborted


def test_get_reads_the_body_to_its_end_before_passing() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert checker.probing and checker.last is None
    m.reply(b"defghij")
    assert checker.last is not None and checker.last.passed
    assert m.transport.closed and not m.transport.aborted


def test_get_fails_when_the_connection_is_cut_inside_the_body() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    m.transport.peer_closes()
    assert checker.last is not None and not checker.last.passed
    assert "inside the body" in checker.last.reason


def test_get_passes_a_close_delimited_http10_body_at_close() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfine")
    assert checker.last is None
    m.transport.peer_closes()
    assert checker.last is not None and checker.last.passed


def test_get_stops_reading_a_long_body_at_the_limit() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
    m.reply(b"x" * (PROBE_BODY_LIMIT - 1))
    assert checker.last is None
    m.reply(b"x" * 2)
    assert checker.last is not None and checker.last.passed
    assert m.transport.closed


def test_an_interim_status_line_is_the_answer_and_fails_as_in_httpd() -> None:
    """httpd's check reads the first status line: a 100 is not skipped for a later 200."""
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert checker.last is not None and not checker.last.passed
    assert checker.last.reason == "status 100"


def test_member_closing_before_answering_fails() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=HEAD hcinterval=10")
    h.reactor.advance(10)
    h.accept_member().transport.peer_closes()
    assert checker.last is not None and not checker.last.passed


# --- connecting and timing out ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "TCP"])
def test_refused_connection_fails(method: str) -> None:
    h, checker = started(f"http://127.0.0.2:8080 hcmethod={method} hcinterval=10")
    h.reactor.advance(10)
    h.refuse_member()
    assert checker.last is not None and not checker.last.passed
    assert "cannot connect" in checker.last.reason
    assert member_state(h).has(Status.HC_FAIL)


def test_no_connection_within_connectiontimeout_fails() -> None:
    h, checker = started(f"{HTTP_A} hcmethod=GET")
    h.reactor.advance(10)
    h.reactor.advance(1.9)
    assert checker.last is None
    h.reactor.advance(0.1)
    assert checker.last is not None and not checker.last.passed
    assert checker.last.reason == "no connection within 2s"


def test_no_answer_within_timeout_fails_and_aborts_the_connection() -> None:
    h, checker = started(f"{HTTP_A} hcmethod=GET")
    h.reactor.advance(10)
    h.reactor.advance(1)
    m = h.accept_member()
    h.reactor.advance(4.9)  # the answer timeout runs from the connection: 5 s
    assert checker.last is None
    h.reactor.advance(0.1)
    assert checker.last is not None and not checker.last.passed
    assert checker.last.reason == "no answer within 5s"
    assert m.transport.aborted


def test_answer_after_the_timeout_is_ignored() -> None:
    h, checker = started(f"{HTTP_A} hcmethod=GET hcfails=2")
    h.reactor.advance(10)
    m = h.accept_member()
    h.reactor.advance(5)
    m.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert checker.last is not None and not checker.last.passed
    assert checker.count.fcount == 1


def test_tcp_passes_once_connected_and_closes_at_once() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=TCP hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    assert checker.last is not None and checker.last.passed
    assert m.transport.closed and m.sent() == b""


def test_https_member_is_probed_through_its_tls_endpoint() -> None:
    h, _ = started("https://127.0.0.2:8443 hcmethod=HEAD hcinterval=10 verify=off")
    h.reactor.advance(10)
    factory = h.reactor.tcpClients[0][2]
    assert isinstance(factory._wrappedFactory, TLSMemoryBIOFactory)


# --- CPING --------------------------------------------------------------------------------


def test_cping_passes_on_cpong() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=CPING hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    container = ServerConnection()
    assert container.receive_data(m.sent()) == [CPing()]
    assert checker.last is None
    m.reply(b"\x41\x42\x00\x01\x09")
    assert checker.last is not None and checker.last.passed
    assert m.transport.closed


def test_cping_fails_on_garbage() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=CPING hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert checker.last is not None and not checker.last.passed
    assert m.transport.aborted


def test_cping_fails_on_a_message_other_than_cpong() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=CPING hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"\x41\x42\x00\x02\x05\x01")  # END_RESPONSE
    assert checker.last is not None and not checker.last.passed


@pytest.mark.parametrize(
    ("params", "wait"),
    [("ping=500ms", 0.5), ("connectiontimeout=2", 2.0), ("timeout=7", 7.0), ("", 300.0)],
)
def test_cping_waits_ping_else_connectiontimeout_else_timeout(params: str, wait: float) -> None:
    h, checker = started(f"ajp://127.0.0.2:8009 hcmethod=CPING hcinterval=1000 {params}")
    h.reactor.advance(1000)
    h.accept_member()
    h.reactor.advance(wait - 0.01)
    assert checker.last is None
    h.reactor.advance(0.01)
    assert checker.last is not None and checker.last.reason == f"no answer within {wait:g}s"


# --- GET / HEAD / OPTIONS to AJP members ---------------------------------------------------


class Container:
    def __init__(self, member: Member) -> None:
        self.member = member
        self.codec = ServerConnection()

    def received(self) -> list[object]:
        return list(self.codec.receive_data(self.member.sent()))

    def send(self, *events: Any) -> None:
        self.member.reply(b"".join(self.codec.send(e) for e in events))


def test_ajp_get_is_a_forward_request_for_hcuri_with_secret() -> None:
    h, _ = started("ajp://127.0.0.2:8009 hcmethod=GET hcuri=/app/ secret=s3 hcinterval=10")
    h.reactor.advance(10)
    tomcat = Container(h.accept_member())
    (request,) = tomcat.received()
    assert isinstance(request, ForwardRequest)
    assert (request.method, request.protocol, request.uri) == (b"GET", b"HTTP/1.0", b"/app/")
    assert request.headers == ((b"host", b"127.0.0.2:8009"),)
    assert (request.server_name, request.server_port) == (b"127.0.0.2", 8009)
    assert request.secret == b"s3"
    assert request.remote_addr == b"127.0.0.1"


@pytest.mark.parametrize(
    ("status", "passed"), [(200, True), (302, True), (404, False), (500, False)]
)
def test_ajp_get_passes_on_send_headers_2xx_and_3xx(status: int, passed: bool) -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    tomcat = Container(h.accept_member())
    tomcat.received()
    tomcat.send(SendHeaders(status=status, reason=b"%d" % status, headers=()))
    if passed:
        assert checker.last is None  # a GET reads the body to END_RESPONSE
        tomcat.send(SendBodyChunk(data=b"ok"), EndResponse(reuse=True))
    assert checker.last is not None and checker.last.passed is passed
    assert tomcat.member.transport.closed


def test_ajp_get_sends_no_cping_first_whatever_ping() -> None:
    h, _ = started("ajp://127.0.0.2:8009 hcmethod=GET ping=1 hcinterval=10")
    h.reactor.advance(10)
    tomcat = Container(h.accept_member())
    (request,) = tomcat.received()
    assert isinstance(request, ForwardRequest)


def test_ajp_head_passes_on_send_headers() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=HEAD hcinterval=10")
    h.reactor.advance(10)
    tomcat = Container(h.accept_member())
    assert isinstance(request := tomcat.received()[0], ForwardRequest)
    assert request.method == b"HEAD"
    tomcat.send(SendHeaders(status=200, reason=b"OK", headers=()))
    assert checker.last is not None and checker.last.passed


def test_ajp_get_answers_get_body_chunk_with_the_end_of_body() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    tomcat = Container(h.accept_member())
    tomcat.received()
    tomcat.send(GetBodyChunk(length=8186))
    assert tomcat.received() == [RequestBody(data=b"")]
    tomcat.send(SendHeaders(status=200, reason=b"OK", headers=()), EndResponse(reuse=False))
    assert checker.last is not None and checker.last.passed


def test_ajp_get_fails_on_a_cut_response() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    tomcat = Container(h.accept_member())
    tomcat.received()
    tomcat.send(SendHeaders(status=200, reason=b"OK", headers=()))
    tomcat.member.transport.peer_closes()
    assert checker.last is not None and not checker.last.passed


def test_ajp_get_fails_on_http_bytes() -> None:
    h, checker = started("ajp://127.0.0.2:8009 hcmethod=GET hcinterval=10")
    h.reactor.advance(10)
    m = h.accept_member()
    m.reply(b"HTTP/1.1 200 OK\r\n\r\n")
    assert checker.last is not None and not checker.last.passed


# --- the member connections' probe exchanges -------------------------------------------


class Sink:
    """A ResponseSink that records what a probe's connection tells it."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def member_response(
        self, status: int, reason: bytes, headers: object, length: int | None
    ) -> None:
        self.events.append(status)

    def member_body(self, data: bytes) -> None:
        self.events.append(data)

    def member_done(self) -> None:
        self.events.append("done")

    def member_failed(self, error: MemberError) -> None:
        self.events.append(error.kind)

    def pause_request_body(self) -> None: ...

    def resume_request_body(self) -> None: ...


def fresh(conn: HTTPMemberConnection | AJPMemberConnection) -> StringTransport:
    transport = StringTransport()
    conn.makeConnection(transport)
    return transport


def test_http_probe_runs_no_timer_and_a_hung_up_connection_ignores_later_bytes() -> None:
    reactor = MemoryReactorClock()
    conn = HTTPMemberConnection(reactor, 5.0, lambda c, r: None, lambda c: None, Outbox())
    transport = fresh(conn)
    sink = Sink()
    conn.send_probe(sink, b"GET", b"GET / HTTP/1.0\r\n\r\n")
    assert transport.value() == b"GET / HTTP/1.0\r\n\r\n"
    assert not reactor.getDelayedCalls()  # the checker times a probe, not its connection
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
    assert sink.events == [200, b"abc"]
    conn.hang_up()
    assert transport.disconnecting and not transport.disconnected  # closed gently
    conn.dataReceived(b"defghi")  # still on the way as it closes: not an error
    assert sink.events == [200, b"abc"] and not transport.disconnected


def test_ajp_cping_alone_ends_with_its_cpong() -> None:
    reactor = MemoryReactorClock()
    released: list[bool] = []
    conn = AJPMemberConnection(
        reactor,
        5.0,
        lambda c, reusable: released.append(reusable),
        lambda c: None,
        Outbox(),
        ping=1.0,
    )
    transport = fresh(conn)
    sink = Sink()
    conn.send_cping(sink)
    assert ServerConnection().receive_data(transport.value()) == [CPing()]
    assert not reactor.getDelayedCalls()
    conn.dataReceived(b"\x41\x42\x00\x01\x09")
    assert sink.events == ["done"] and released == [True]


def test_ajp_garbage_for_a_cping_says_so() -> None:
    conn = AJPMemberConnection(
        MemoryReactorClock(), 5.0, lambda c, r: None, lambda c: None, Outbox()
    )
    transport = fresh(conn)
    sink = Sink()
    conn.send_cping(sink)
    conn.dataReceived(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert sink.events == [FailureKind.PROTOCOL] and transport.disconnected


# --- counting consecutive results ---------------------------------------------------------


def test_hcfails_3_needs_three_consecutive_failures(logged: list[str]) -> None:
    h, _checker = started(f"{HTTP_A} hcmethod=HEAD hcfails=3")
    state = member_state(h)
    for answer in (b"500 A", b"500 B", b"200 OK", b"500 C", b"500 D"):
        h.reactor.advance(10)
        probe_http(h, b"HTTP/1.1 " + answer)
        assert not state.has(Status.HC_FAIL), answer
    assert not [line for line in logged if "health check" in line]
    h.reactor.advance(10)
    probe_http(h, b"HTTP/1.1 500 E")
    assert state.has(Status.HC_FAIL)
    assert not state.usable
    assert [line for line in logged if "health check" in line] == [
        "member http://127.0.0.2:8080 failed its health check (HEAD: status 500); "
        "no traffic until it passes"
    ]


def test_hcpasses_2_needs_two_consecutive_passes_to_clear(logged: list[str]) -> None:
    h, _checker = started(f"{HTTP_A} hcmethod=HEAD hcpasses=2")
    state = member_state(h)
    h.reactor.advance(10)
    h.refuse_member()
    assert state.has(Status.HC_FAIL)
    for answer in (b"200 OK", b"404 No", b"200 OK"):
        h.reactor.advance(10)
        probe_http(h, b"HTTP/1.1 " + answer)
        assert state.has(Status.HC_FAIL), answer
    h.reactor.advance(10)
    probe_http(h, b"HTTP/1.1 301 Moved", b"Location: /x\r\n")
    assert not state.has(Status.HC_FAIL)
    assert state.usable
    assert logged[-1] == (
        "member http://127.0.0.2:8080 passed its health check (HEAD: status 301); back in service"
    )


def test_count_table() -> None:
    """HealthCount alone: consecutive results, E counts as failed for passing."""
    state = member_state(harness(HTTP_B))
    count = HealthCount(state, passes=2, fails=2)
    assert [count.record(r) for r in (False, True, False, False)] == [
        None,
        None,
        None,
        Change.FAILED,
    ]
    assert [count.record(r) for r in (False, True, False, True, True)] == [
        None,
        None,
        None,
        None,
        Change.PASSED,
    ]
    assert state.status == Status(0)
    state.put_in_error(0.0)
    assert [count.record(r) for r in (True, True)] == [None, Change.PASSED]
    assert not state.in_error


def test_passing_check_brings_a_member_in_error_back_before_retry() -> None:
    h, _ = started(f"{HTTP_A} hcmethod=HEAD retry=600")
    state = member_state(h)
    state.put_in_error(h.reactor.seconds())
    h.reactor.advance(10)
    probe_http(h, b"HTTP/1.1 200 OK")
    assert not state.in_error and state.usable


def test_failing_checks_set_c_on_a_member_already_in_error() -> None:
    h, _ = started(f"{HTTP_A} hcmethod=HEAD retry=1")
    state = member_state(h)
    state.put_in_error(h.reactor.seconds())
    h.reactor.advance(10)
    h.refuse_member()
    assert state.has(Status.HC_FAIL)
    # retry has long passed and clears E, but C keeps the member out until a check passes.
    assert state.retry_member(h.reactor.seconds())
    assert not state.in_error and not state.usable


# --- scheduling ---------------------------------------------------------------------------


def test_checks_run_on_the_clock_with_no_traffic_at_all() -> None:
    h, checker = started(f"{HTTP_A} hcmethod=TCP", HTTP_B)
    h.reactor.advance(9.9)
    assert h.pending_connects() == []
    for n in range(1, 6):
        h.reactor.advance(10 if n > 1 else 0.1)
        assert h.pending_connects() == [("127.0.0.2", 8080)]
        h.accept_member()
        assert checker.probes == n
    assert checker.last is not None and checker.last.passed


def test_next_probe_starts_one_interval_after_the_previous_one_ended() -> None:
    h, _checker = started(f"{HTTP_A} hcmethod=HEAD")
    h.reactor.advance(10)
    m = h.accept_member()
    h.reactor.advance(3)
    m.reply(b"HTTP/1.1 200 OK\r\n\r\n")
    h.reactor.advance(9.9)
    assert h.pending_connects() == []
    h.reactor.advance(0.1)
    assert h.pending_connects() == [("127.0.0.2", 8080)]


def test_one_probe_at_a_time_even_when_a_probe_outlasts_hcinterval() -> None:
    h, checker = started("http://127.0.0.2:8080 hcmethod=GET hcinterval=1 timeout=30")
    h.reactor.advance(1)
    h.accept_member()  # connected, never answers
    for _ in range(29):
        h.reactor.advance(1)
        assert checker.probes == 1
        assert h.pending_connects() == []
    h.reactor.advance(1)  # the answer timeout
    assert checker.last is not None and not checker.last.passed
    assert checker.probes == 1
    h.reactor.advance(1)
    assert checker.probes == 2


def test_stopped_member_is_not_probed() -> None:
    h, checker = started(f"{HTTP_A} hcmethod=TCP status=+S")
    h.reactor.advance(100)
    assert h.pending_connects() == [] and checker.probes == 0


def test_direct_proxypass_member_is_checked_too() -> None:
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:8080\n"
        "ProxyPass = /d http://127.0.0.9:9000/d hcmethod=TCP hcinterval=5\n"
    )
    h.runtime.start_health_checks()
    (checker,) = h.runtime.health_checkers
    assert checker.member is h.runtime.direct_members[0]
    h.reactor.advance(5)
    h.refuse_member()
    assert h.runtime.direct_members[0].lb.has(Status.HC_FAIL)


# --- traffic around the C flag ------------------------------------------------------------


def test_member_failing_its_check_gets_no_requests_until_it_passes() -> None:
    # disablereuse: every request opens a connection, which shows where it goes.
    h, _checker = started(f"{HTTP_A} hcmethod=TCP disablereuse=on", f"{HTTP_B} disablereuse=on")
    h.reactor.advance(10)
    h.refuse_member()
    assert member_state(h).has(Status.HC_FAIL)
    for _ in range(4):
        proto, client = h.client()
        proto.dataReceived(GET)
        assert h.pending_connects() == [("127.0.0.3", 8080)]
        h.accept_member().reply(response())
        assert client.value().startswith(b"HTTP/1.1 200 OK")
        assert member_state(h, 1).elected >= 1
    assert member_state(h).elected == 0
    h.reactor.advance(10)
    h.accept_member()  # the probe passes: C is cleared
    assert not member_state(h).has(Status.HC_FAIL)
    hosts = []
    for _ in range(2):
        proto, _client = h.client()
        proto.dataReceived(GET)
        (target,) = h.pending_connects()
        hosts.append(target[0])
        h.accept_member().reply(response())
    assert "127.0.0.2" in hosts


def test_probe_connections_leave_the_pool_alone() -> None:
    h, _checker = started(f"{HTTP_A} hcmethod=HEAD", HTTP_B)
    proto, _client = h.client()
    proto.dataReceived(GET)
    m = h.accept_member()  # the request's pooled connection to 127.0.0.2
    m.reply(response())
    pool = h.runtime.members()[0].pool
    idle = list(pool.idle)
    assert len(idle) == 1
    h.reactor.advance(10)
    probe = probe_http(h, b"HTTP/1.1 200 OK")
    assert probe.transport is not m.transport and probe.transport.closed
    assert not m.transport.closed
    assert list(pool.idle) == idle and pool.open == 1


# --- the service starts and stops them ---------------------------------------------------


def test_proxy_service_starts_checks_with_the_service_and_stops_them() -> None:
    reactor = MemoryReactorClock()
    config = parse(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:18080\n"
        "ProxyPass = /app balancer://c/app\n[balancer://c]\n"
        f"BalancerMember = {HTTP_A} hcmethod=TCP\n                 {HTTP_B}\n",
        "test.ini",
    )
    service = ProxyService(reactor, config)
    service.privilegedStartService()
    runtime = service.runtime
    assert runtime is not None
    (checker,) = runtime.health_checkers
    assert not checker.running
    service.startService()
    assert checker.running
    reactor.advance(10)
    assert [c[:2] for c in reactor.tcpClients] == [("127.0.0.2", 8080)]
    service.stopService()
    assert not checker.running and not checker.probing
    reactor.advance(100)
    assert len(reactor.tcpClients) == 1
    assert not [c for c in reactor.getDelayedCalls() if c.active()]


def test_direct_member_failing_its_check_answers_503() -> None:
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:8080\n"
        "ProxyPass = /d http://127.0.0.9:9000/d hcmethod=TCP hcinterval=5\n"
    )
    h.runtime.start_health_checks()
    h.reactor.advance(5)
    h.refuse_member()
    proto, client = h.client()
    proto.dataReceived(b"GET /d HTTP/1.1\r\nHost: www.example\r\n\r\n")
    assert h.pending_connects() == []
    assert client.value().startswith(b"HTTP/1.1 503 ")


def test_reload_stops_the_old_checks_and_starts_the_new_ones() -> None:
    reactor = MemoryReactorClock()
    text = [
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:18080\n"
        "ProxyPass = /app balancer://c/app\n[balancer://c]\n"
        f"BalancerMember = {HTTP_A} hcmethod=TCP\n"
    ]
    service = ProxyService(
        reactor, parse(text[0], "lb.ini"), loader=lambda: parse(text[0], "lb.ini")
    )
    service.privilegedStartService()
    service.startService()
    assert service.runtime is not None
    (old,) = service.runtime.health_checkers
    text[0] = text[0].replace("hcinterval=10", "hcinterval=20")
    results: list[bool] = []
    service.reload().addCallback(results.append)
    assert results == [True]
    (new,) = service.runtime.health_checkers
    assert not old.running and new.running and new.interval == 20
    reactor.advance(20)
    assert [c[:2] for c in reactor.tcpClients] == [("127.0.0.2", 8080)]
    service.stopService()
