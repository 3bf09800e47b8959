"""Each client limit and timeout of ``[frontend]``, crossed and just not crossed, in memory.

``LimitRequestLine`` (414), ``LimitRequestFieldSize`` and ``LimitRequestFields`` (431),
``LimitRequestBody`` (413, before or after the member was contacted), ``RequestReadTimeout``
(408 for a slow head or body, MinRate extending it), ``KeepAliveTimeout`` and
``MaxConnections``; and how the directives are parsed and checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import StringTransport

from ajpbalancer.channel import PauseReason
from ajpbalancer.config import ClientLimits, ConfigError, ReadTimeout, parse
from ajpbalancer.frontend import ConnectionGate
from ajpbalancer.service import FrontendFactory
from tests.unit.proxyharness import Harness, response


def harness(directives: str = "") -> Harness:
    return Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        f"ProxyPass = / http://127.0.0.2:8080/\n{directives}"
    )


def status(data: bytes) -> int:
    return int(data[9:12])


def send(h: Harness, request: bytes) -> tuple[int, bool, Any]:
    proto, client = h.client()
    proto.dataReceived(request)
    if h.pending_connects():
        member = h.accept_member()
        member.reply(response())
    return status(client.value()), client.closed, h


# -- head limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "expected"), [(100, 200), (101, 414)])
def test_limit_request_line(length: int, expected: int) -> None:
    h = harness("LimitRequestLine = 100\n")
    target = b"/" + b"a" * (length - len(b"GET / HTTP/1.1"))
    line = b"GET " + target + b" HTTP/1.1"
    assert len(line) == length
    assert send(h, line + b"\r\nHost: x\r\n\r\n")[0] == expected


def test_request_line_over_the_limit_is_refused_before_its_end_arrives() -> None:
    h = harness("LimitRequestLine = 100\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /" + b"a" * 200)
    assert status(client.value()) == 414
    assert client.closed


def test_default_limit_request_line_is_apaches_8190() -> None:
    h = harness()
    target = b"/" + b"a" * (8190 - len(b"GET / HTTP/1.1"))
    assert send(h, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    h = harness()
    assert send(h, b"GET " + target + b"a HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 414


@pytest.mark.parametrize(("length", "expected"), [(50, 200), (51, 431)])
def test_limit_request_field_size(length: int, expected: int) -> None:
    h = harness("LimitRequestFieldSize = 50\n")
    field = b"X-A: " + b"v" * (length - 5)
    assert send(h, b"GET /a HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n")[0] == expected


def test_field_over_the_limit_is_refused_before_the_head_ends() -> None:
    h = harness("LimitRequestFieldSize = 50\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 100)
    assert status(client.value()) == 431


@pytest.mark.parametrize(("count", "expected"), [(5, 200), (6, 431)])
def test_limit_request_fields(count: int, expected: int) -> None:
    h = harness("LimitRequestFields = 5\n")
    fields = b"Host: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(count - 1))
    assert send(h, b"GET /a HTTP/1.1\r\n" + fields + b"\r\n")[0] == expected


# -- body limit ------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "expected"), [(10, 200), (11, 413)])
def test_limit_request_body_by_content_length(length: int, expected: int) -> None:
    h = harness("LimitRequestBody = 10\n")
    head = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length
    got, closed, _ = send(h, head + b"b" * length)
    assert got == expected
    if expected == 413:
        assert closed
        assert h.reactor.tcpClients == []


def test_content_length_over_the_limit_is_refused_before_the_body_is_sent() -> None:
    h = harness("LimitRequestBody = 10\n")
    proto, client = h.client()
    proto.dataReceived(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
    assert status(client.value()) == 413
    assert h.reactor.tcpClients == []


CHUNKED_HEAD = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(("size", "expected"), [(10, 200), (11, 413)])
def test_limit_request_body_chunked_with_the_head(size: int, expected: int) -> None:
    h = harness("LimitRequestBody = 10\n")
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (size, b"c" * size)
    got, _, _ = send(h, CHUNKED_HEAD + body)
    assert got == expected
    if expected == 413:
        assert h.reactor.tcpClients == []


def test_chunked_body_crossing_the_limit_later_gets_413_and_aborts_the_member() -> None:
    h = harness("LimitRequestBody = 10\n")
    proto, client = h.client()
    proto.dataReceived(CHUNKED_HEAD + b"6\r\nabcdef\r\n")
    member = h.accept_member()
    proto.dataReceived(b"6\r\nabcdef\r\n")
    assert status(client.value()) == 413
    assert client.closed
    assert member.transport.aborted


def test_chunked_body_crossing_the_limit_after_the_response_began_closes() -> None:
    h = harness("LimitRequestBody = 10\n")
    proto, client = h.client()
    proto.dataReceived(CHUNKED_HEAD + b"6\r\nabcdef\r\n")
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
    proto.dataReceived(b"6\r\nabcdef\r\n")
    assert client.value().startswith(b"HTTP/1.1 200 ")
    assert b"413" not in client.value()
    assert client.aborted
    assert member.transport.aborted


def test_limit_request_body_zero_is_unlimited() -> None:
    h = harness("LimitRequestBody = 0\n")
    head = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 << 30)
    proto, client = h.client()
    proto.dataReceived(head)
    assert h.pending_connects() != []
    assert client.value() == b""


def test_default_limit_request_body_is_apaches_one_gib() -> None:
    assert ClientLimits().limit_request_body == 1 << 30
    h = harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
    assert h.pending_connects() != []
    h = harness()
    proto, client = h.client()
    proto.dataReceived(
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % ((1 << 30) + 1)
    )
    assert status(client.value()) == 413


# -- RequestReadTimeout ----------------------------------------------------------------------


def test_slow_head_gets_408_at_the_header_timeout() -> None:
    h = harness("RequestReadTimeout = header=10 body=10\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\n")
    h.reactor.advance(9.9)
    assert client.value() == b""
    h.reactor.advance(0.2)
    assert status(client.value()) == 408
    assert client.closed


def test_min_rate_extends_the_header_timeout_up_to_its_maximum() -> None:
    """header=10-20,MinRate=100: each 100 bytes buy one second, never past 20 s."""
    h = harness("RequestReadTimeout = header=10-20,MinRate=100\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\nX: " + b"v" * 480)  # 500 bytes: 5 s more
    h.reactor.advance(14.9)
    assert not client.closed
    h.reactor.advance(0.2)
    assert status(client.value()) == 408
    h = harness("RequestReadTimeout = header=10-20,MinRate=100\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\n")
    for _ in range(30):  # a steady trickle never gets more than the maximum
        proto.dataReceived(b"X-Header-Trickle: " + b"v" * 80 + b"\r\n")
        h.reactor.advance(0.69)
    assert status(client.value()) == 408


def test_head_within_the_header_timeout_is_served() -> None:
    h = harness("RequestReadTimeout = header=10 body=10\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\n")
    h.reactor.advance(9.9)
    proto.dataReceived(b"Host: x\r\n\r\n")
    h.accept_member().reply(response())
    assert status(client.value()) == 200


def test_slow_body_gets_408_and_the_member_request_is_aborted() -> None:
    h = harness("RequestReadTimeout = body=10,MinRate=100\n")
    proto, client = h.client()
    proto.dataReceived(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    member = h.accept_member()
    proto.dataReceived(b"b" * 200)  # 2 s more: 12 s in all
    h.reactor.advance(11.9)
    assert client.value() == b""
    h.reactor.advance(0.2)
    assert status(client.value()) == 408
    assert client.closed
    assert member.transport.aborted


def test_body_kept_at_min_rate_is_not_cut() -> None:
    h = harness("RequestReadTimeout = body=10,MinRate=100\n")
    proto, client = h.client()
    proto.dataReceived(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
    member = h.accept_member()
    for _ in range(30):
        h.reactor.advance(1)
        proto.dataReceived(b"b" * 100)
    member.reply(response())
    assert status(client.value()) == 200


def test_time_the_member_keeps_the_body_waiting_does_not_count() -> None:
    h = harness("RequestReadTimeout = body=10\n")
    proto, client = h.client()
    proto.dataReceived(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    member = h.accept_member()
    proto.pause_reading(PauseReason.BACKPRESSURE)
    h.reactor.advance(30)
    proto.resume_reading(PauseReason.BACKPRESSURE)
    h.reactor.advance(9)
    assert not client.closed
    proto.dataReceived(b"defghij")
    member.reply(response())
    assert status(client.value()) == 200


def test_body_timeout_after_the_response_began_closes_without_an_answer() -> None:
    h = harness("RequestReadTimeout = body=10\n")
    proto, client = h.client()
    proto.dataReceived(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    member = h.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
    h.reactor.advance(10.1)
    assert b"408" not in client.value()
    assert client.aborted


# -- KeepAliveTimeout ------------------------------------------------------------------------


@pytest.mark.parametrize(("idle", "open_"), [(2.9, True), (3.1, False)])
def test_keep_alive_timeout(idle: float, open_: bool) -> None:
    h = harness("KeepAliveTimeout = 3\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    h.accept_member().reply(response())
    h.reactor.advance(idle)
    assert client.closed is not open_


def test_next_request_begun_within_keep_alive_gets_the_header_timeout() -> None:
    h = harness("KeepAliveTimeout = 3\nRequestReadTimeout = header=10\n")
    proto, client = h.client()
    proto.dataReceived(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    h.accept_member().reply(response())
    h.reactor.advance(2)
    proto.dataReceived(b"GET /a HTTP/1.1\r\n")
    h.reactor.advance(9.9)
    assert not client.closed
    h.reactor.advance(0.2)
    assert client.value().split(b"\r\n\r\n", 1)[1].startswith(b"hello" + b"HTTP/1.1 408")


# -- MaxConnections --------------------------------------------------------------------------


class FakePort:
    def __init__(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def startReading(self) -> None:
        self.reading = True


def test_max_connections_pauses_the_listener_at_the_limit_and_resumes_it() -> None:
    h = harness("MaxConnections = 2\n")
    factory = FrontendFactory(h.reactor, h.context)
    port = FakePort()
    factory.gate.add_port(port)
    protos = []
    for _ in range(2):
        proto = factory.buildProtocol(None)
        assert proto is not None
        proto.makeConnection(StringTransport())
        protos.append(proto)
    assert not port.reading  # 2 = the limit: accept no more
    assert factory.buildProtocol(None) is None  # accepted in the same burst: closed
    protos[0].connectionLost(None)
    assert port.reading
    assert factory.buildProtocol(None) is not None
    assert not port.reading


def test_below_max_connections_the_listener_keeps_reading() -> None:
    gate = ConnectionGate(3)
    port = FakePort()
    gate.add_port(port)
    assert gate.admit() and gate.admit()
    assert port.reading


def test_max_connections_zero_is_unlimited() -> None:
    gate = ConnectionGate(0)
    port = FakePort()
    gate.add_port(port)
    assert all(gate.admit() for _ in range(10000))
    assert port.reading


# -- the directives --------------------------------------------------------------------------

FRONT = "[frontend]\nlisten = tcp:1\n"


def limits(text: str) -> ClientLimits:
    return parse(FRONT + text, "lb.ini").frontends[0].limits


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(FRONT + text, "lb.ini")
    return [str(p) for p in info.value.problems]


def test_defaults_are_apaches() -> None:
    got = limits("")
    assert got == ClientLimits(
        limit_request_line=8190,
        limit_request_field_size=8190,
        limit_request_fields=100,
        limit_request_body=1 << 30,
        header_timeout=ReadTimeout(20, 40, 500),
        body_timeout=ReadTimeout(20, None, 500),
        keep_alive_timeout=5,
        max_connections=1000,
    )


def test_directives_are_parsed() -> None:
    got = limits(
        "LimitRequestLine = 4000\nLimitRequestFieldSize = 2000\nLimitRequestFields = 50\n"
        "LimitRequestBody = 0\nRequestReadTimeout = header=5-10,MinRate=1000 body=30\n"
        "KeepAliveTimeout = 500ms\nMaxConnections = 64\n"
    )
    assert got == ClientLimits(
        4000, 2000, 50, 0, ReadTimeout(5, 10, 1000), ReadTimeout(30), 0.5, 64
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LimitRequestLine = 0", "LimitRequestLine must be an integer"),
        ("LimitRequestFieldSize = 2000000", "LimitRequestFieldSize must be an integer"),
        ("LimitRequestFields = 0", "LimitRequestFields must be an integer"),
        ("LimitRequestBody = -1", "LimitRequestBody must be an integer"),
        ("KeepAliveTimeout = 0", "KeepAliveTimeout must be more than 0 seconds"),
        ("MaxConnections = x", "MaxConnections must be an integer"),
        ("RequestReadTimeout = handshake=5", "expected header=SECONDS"),
        ("RequestReadTimeout = header=20-40", "a maximum must exceed the timeout and needs"),
        ("RequestReadTimeout = header=20-10,MinRate=5", "a maximum must exceed the timeout"),
        ("RequestReadTimeout = header=5 header=6", "header= given twice"),
        ("RequestReadTimeout = body=5,MinRate=0", "MinRate must be at least 1"),
        ("SSLVerifyClient = sometimes", "is not one of none, optional, require"),
        ("SSLCACertificateFile = /nonexistent/ca.pem", "cannot read CA certificate file"),
        ("SSLVerifyClient = require", "needs SSLCACertificateFile"),
    ],
)
def test_invalid_values_are_reported(line: str, message: str) -> None:
    found = problems(line + "\n")
    assert any(message in p for p in found), found
