"""An in-memory proxy: the real frontend, exchange, workers and pools, with no sockets.

Clients and members are ``StringTransport``s; the reactor is a ``MemoryReactorClock``
whose ``connectTCP`` calls the test completes by hand (``accept_member``) or fails
(``refuse_member``), so every path from client bytes to member bytes and back runs as in
production, deterministically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from ajpbalancer.config import parse
from ajpbalancer.frontend import FrontendProtocol
from ajpbalancer.proxy import ExchangeObserver
from ajpbalancer.proxy._accesslog import AccessLog
from ajpbalancer.service import ProxyRuntime


class Transport(StringTransport):
    """A StringTransport that tells its protocol when it is closed, as a real one does."""

    def __init__(self, host: str = "127.0.0.1", port: int = 40000) -> None:
        super().__init__(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
            peerAddress=IPv4Address("TCP", host, port),
        )
        self.protocol: Protocol | None = None
        self.aborted = False
        self.closed = False
        self.lingering = False
        """A close waits for the peer to read what is buffered: it never does (only an
        abort ends the connection then)."""

    def loseConnection(self) -> None:
        if self.closed:
            return
        if self.lingering and not self.aborted:
            self.disconnecting = True
            return
        self.closed = True
        super().loseConnection()
        if self.protocol is not None:
            self.protocol.connectionLost(Failure(ConnectionDone("closed")))

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()

    def peer_closes(self) -> None:
        """The other side closed the connection."""
        self.loseConnection()

    def peer_resets(self) -> None:
        """The other side reset the connection (or it failed)."""
        if self.closed:
            return
        self.closed = True
        if self.protocol is not None:
            self.protocol.connectionLost(Failure(ConnectionLost("reset")))


class HalfCloseTransport(Transport):
    """A Transport that can half-close, as a TCP one can."""

    def __init__(self, host: str = "127.0.0.1", port: int = 40000) -> None:
        super().__init__(host, port)
        self.write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def peer_half_closes(self) -> None:
        """The other side sent its FIN: a half-closeable protocol hears it alone."""
        protocol = self.protocol
        assert protocol is not None
        half = IHalfCloseableProtocol(protocol, None)
        if half is not None:
            half.readConnectionLost()
        else:
            self.loseConnection()


@dataclass
class Member:
    protocol: Protocol
    transport: Transport

    def sent(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def reply(self, data: bytes) -> None:
        self.protocol.dataReceived(data)


CONFIG = """
[ajpbalancer]
access_log = off

[frontend]
listen = tcp:8080:interface=127.0.0.1
ProxyPass = /static !
            /app balancer://c/app
            /direct http://127.0.0.9:9000/d timeout=5
ProxyPassMatch = ^/re/(\\w+)/(.*)$ balancer://c/x/$2/$1
ProxyAddHeaders = on

[balancer://c]
BalancerMember = http://127.0.0.2:8080 timeout=30 connectiontimeout=3
                 http://127.0.0.3:8080 timeout=30 connectiontimeout=3 loadfactor=3
"""


class Harness:
    half_close = False
    """Whether the transports made from now on can half-close (TCP) or not (TLS)."""

    def __init__(
        self,
        config: str = CONFIG,
        access_log: AccessLog | None = None,
        observer: ExchangeObserver | None = None,
    ) -> None:
        self.reactor = MemoryReactorClock()
        self.config = parse(config, "test.ini")
        self.runtime = ProxyRuntime(
            self.reactor,
            self.config,
            access_log=access_log,
            server_name=b"proxy.example",
            observer=observer,
        )
        self.context = self.runtime.contexts[""]
        self._accepted = 0

    # -- clients -------------------------------------------------------------------------

    def client(self, port: int = 40000) -> tuple[FrontendProtocol, Transport]:
        proto = FrontendProtocol(
            self.reactor,
            self.context.exchange,
            client_limits=self.context.frontend.limits,
            outbox=self.context.outbox,
            on_answered=self.context.answered,
        )
        transport = (HalfCloseTransport if self.half_close else Transport)(port=port)
        transport.protocol = proto
        proto.makeConnection(transport)
        return proto, transport

    # -- members -------------------------------------------------------------------------

    def pending_connects(self) -> list[tuple[str, int]]:
        return [(c[0], c[1]) for c in self.reactor.tcpClients[self._accepted :]]

    def accept_member(self) -> Member:
        """Complete the oldest connection attempt not yet completed."""
        host, port, factory, _timeout, _bind = self.reactor.tcpClients[self._accepted]
        self._accepted += 1
        proto = factory.buildProtocol(IPv4Address("TCP", host, port))
        assert proto is not None
        transport = (HalfCloseTransport if self.half_close else Transport)(host=host, port=port)
        transport.protocol = proto
        proto.makeConnection(transport)
        inner = getattr(proto, "_wrappedProtocol", proto)
        return Member(inner, transport)

    def refuse_member(self) -> None:
        host, port = self.reactor.tcpClients[self._accepted][:2]
        self.fail_member(Failure(ConnectionRefusedError(host, port)))

    def fail_member(self, reason: Failure) -> None:
        """Fail the oldest connection attempt not yet completed with ``reason``."""
        factory = self.reactor.tcpClients[self._accepted][2]
        self._accepted += 1
        factory.clientConnectionFailed(None, reason)


def response(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def without_date(data: bytes) -> bytes:
    """``data`` with the ``Date`` field the proxy adds to answers that lack one removed."""
    return re.sub(rb"Date: [^\r]*\r\n", b"", data, count=1)
