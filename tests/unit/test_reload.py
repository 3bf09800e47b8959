"""Live reload in memory: new routing for new requests, nothing dropped, bad configs ignored."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher

from ajpbalancer.config import Config, parse
from ajpbalancer.service import ProxyService
from tests.unit.proxyharness import Member, Transport, response

BASE = """
[ajpbalancer]
access_log = off
[frontend]
listen = tcp:8080:interface=127.0.0.1
ProxyPass = / balancer://c/
[balancer://c]
BalancerMember = {members}
"""
GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


class Rig:
    """A ProxyService on a memory reactor whose config file is a string we change."""

    def __init__(self, text: str) -> None:
        self.reactor = MemoryReactorClock()
        self.text = text
        self.service = ProxyService(self.reactor, self.load(), loader=self.load)
        self.service.privilegedStartService()
        self.service.startService()
        self.accepted = 0

    def load(self) -> Config:
        return parse(self.text, "lb.ini")

    def reload(self, text: str) -> bool:
        self.text = text
        results: list[bool] = []
        self.service.reload().addCallback(results.append)
        return results[0]

    def client(self, frontend: str = "") -> tuple[object, Transport]:
        factory = self.service.factories[frontend]
        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = Transport()
        transport.protocol = proto
        proto.makeConnection(transport)
        return proto, transport

    def accept_member(self) -> Member:
        host, port, factory, _timeout, _bind = self.reactor.tcpClients[self.accepted]
        self.accepted += 1
        proto = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = Transport(host=host, port=port)
        transport.protocol = proto
        proto.makeConnection(transport)
        return Member(getattr(proto, "_wrappedProtocol", proto), transport)


def config(members: str) -> str:
    return BASE.format(members=members)


def test_new_requests_use_the_new_routing_and_in_flight_ones_finish_on_the_old() -> None:
    rig = Rig(config("http://127.0.0.2:8080"))
    proto, client = rig.client()
    proto.dataReceived(GET)  # type: ignore[attr-defined]
    old = rig.accept_member()
    assert rig.reload(config("http://127.0.0.3:8080"))
    old.reply(response(b"old routing"))
    assert client.value().endswith(b"old routing")
    proto2, client2 = rig.client()
    proto2.dataReceived(GET)  # type: ignore[attr-defined]
    new = rig.accept_member()
    assert new.transport.getPeer().host == "127.0.0.3"  # type: ignore[attr-defined]
    new.reply(response(b"new routing"))
    assert client2.value().endswith(b"new routing")


def test_listening_socket_is_kept_across_a_reload() -> None:
    rig = Rig(config("http://127.0.0.2:8080"))
    ports = list(rig.reactor.tcpServers)
    assert rig.reload(config("http://127.0.0.3:8080"))
    assert rig.reactor.tcpServers == ports  # nothing listened anew


def test_invalid_config_is_refused_and_routing_stays() -> None:
    rig = Rig(config("http://127.0.0.2:8080"))
    assert not rig.reload(config("http://127.0.0.3:8080 rout=x"))
    proto, _client = rig.client()
    proto.dataReceived(GET)  # type: ignore[attr-defined]
    assert rig.accept_member().transport.getPeer().host == "127.0.0.2"  # type: ignore[attr-defined]


def test_refused_reload_is_logged_problem_by_problem() -> None:
    rig = Rig(config("http://127.0.0.2:8080"))
    events: list[dict[str, object]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        assert not rig.reload(config("http://127.0.0.3:8080 rout=x"))
    finally:
        globalLogPublisher.removeObserver(events.append)
    text = [formatEvent(e) for e in events]
    assert any(
        "reload refused: lb.ini:8: BalancerMember: unknown parameter 'rout'" in t for t in text
    ), text
    assert rig.service.reloads == 0


def test_member_in_error_stays_in_error_across_a_reload() -> None:
    rig = Rig(config("http://127.0.0.2:8080\n  http://127.0.0.3:8080"))
    before = rig.service.runtime
    assert before is not None
    before.balancers["c"].members[1].lb.put_in_error(rig.reactor.seconds())
    before.balancers["c"].members[0].lb.elected = 7
    assert rig.reload(config("http://127.0.0.2:8080\n  http://127.0.0.3:8080 loadfactor=2"))
    after = rig.service.runtime
    assert after is not None and after is not before
    first, second = after.balancers["c"].members
    assert first.lb.elected == 7
    assert second.lb.in_error and second.lb.lbfactor == 200  # state kept, config applied


def test_new_listen_line_is_opened_and_a_removed_one_closed() -> None:
    rig = Rig(config("http://127.0.0.2:8080"))
    text = config("http://127.0.0.2:8080").replace(
        "listen = tcp:8080:interface=127.0.0.1", "listen = tcp:8081:interface=127.0.0.1"
    )
    assert rig.reload(text)
    assert [s[0] for s in rig.reactor.tcpServers] == [8080, 8081]
    assert [ln.description for ln in rig.service.ports] == ["tcp:8081:interface=127.0.0.1"]


def test_new_frontend_section_gets_its_own_listener() -> None:
    rig = Rig(config("http://127.0.0.2:8080"))
    text = config("http://127.0.0.2:8080") + (
        "[frontend:other]\nlisten = tcp:9090:interface=127.0.0.1\nProxyPass = / http://127.0.0.4:1/\n"
    )
    assert rig.reload(text)
    proto, _client = rig.client("other")
    proto.dataReceived(GET)  # type: ignore[attr-defined]
    assert rig.reactor.tcpClients[-1][:2] == ("127.0.0.4", 1)
