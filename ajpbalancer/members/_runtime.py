"""A member at run time (a "worker", as mod_proxy calls it), built from the config.

A :class:`MemberRuntime` owns one member's endpoint, connection pool and balancing
state (:class:`~ajpbalancer.balancer.MemberState`), and prepares what its protocol sends
for a request (:mod:`._request`). It is the only owner of a member's mutable state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet import ssl
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IAddress, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from ajpbalancer._transport import Outbox
from ajpbalancer.balancer import MemberState
from ajpbalancer.config import URL, Frontend, MemberParams, Scheme
from ajpbalancer.members._ajp import AJPMemberConnection
from ajpbalancer.members._http import HTTPMemberConnection
from ajpbalancer.members._pool import Pool
from ajpbalancer.members._request import OutgoingRequest, ajp_forward, http_head
from ajpbalancer.members._sink import MemberConnection, MemberRequest


class MemberRuntime:
    """One member: its URL, parameters, pool and balancing counters."""

    def __init__(
        self,
        reactor: object,
        url: URL,
        params: MemberParams,
        default_timeout: float,
        *,
        state: MemberState | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        """``state``: the member's shared state (``workers = N``), else a private one;
        ``outbox``: where writes are coalesced (the one the frontends use)."""
        self.reactor = reactor
        self.outbox = outbox if outbox is not None else Outbox()
        self.url = url
        self.params = params
        self.name = str(url)
        self.route = params.route
        self.lb = state if state is not None else MemberState.from_params(self.name, params)
        self.timeout = params.timeout if params.timeout is not None else default_timeout
        self.connect_timeout = (
            params.connectiontimeout if params.connectiontimeout is not None else self.timeout
        )
        port = url.effective_port
        assert port is not None
        default = url.scheme.default_port
        host = f"[{url.host}]" if ":" in url.host else url.host
        self.host_header = (host if port == default else f"{host}:{port}").encode("idna")
        self.endpoint = self._endpoint(reactor, url.host, port)
        self.is_ajp = url.scheme is Scheme.AJP
        self.secret = None if params.secret is None else params.secret.encode("utf-8")
        self.pool = Pool(
            reactor,  # type: ignore[arg-type]  # any IReactorTime; typed loosely to stay importable
            self._connect,
            max_connections=params.max,
            ttl=params.ttl,
            disablereuse=params.disablereuse,
            connect_timeout=self.connect_timeout,
        )

    def _endpoint(self, reactor: object, host: str, port: int) -> IStreamClientEndpoint:
        timeout = self.connect_timeout
        endpoint: IStreamClientEndpoint
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
        else:
            endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
        if self.url.scheme is Scheme.HTTPS:
            if self.params.verify:
                options = ssl.optionsForClientTLS(host)
            else:
                options = ssl.CertificateOptions(verify=False)
            endpoint = wrapClientTLS(options, endpoint)
        return endpoint

    def prepare(
        self, request: OutgoingRequest, frontend: Frontend, server_name: bytes
    ) -> MemberRequest:
        """What this member's protocol sends for ``request`` (see :mod:`._request`)."""
        if self.is_ajp:
            return ajp_forward(request, secret=self.secret)
        return http_head(
            request,
            member_host=self.host_header,
            preserve_host=frontend.preserve_host,
            add_forwarded=frontend.add_headers,
            server_name=server_name,
        )

    def open_connection(
        self,
        release: Callable[[MemberConnection, bool], None],
        lost: Callable[[MemberConnection], None],
    ) -> Deferred[AJPMemberConnection | HTTPMemberConnection]:
        """Connect a new connection of this member's protocol, which reports to ``release``
        (an exchange ended) and ``lost`` (it closed): the pool's, or, for a health probe's
        connection of its own, callbacks that leave the pool alone."""
        conn: AJPMemberConnection | HTTPMemberConnection
        if self.is_ajp:
            conn = AJPMemberConnection(
                self.reactor,  # type: ignore[arg-type]
                self.timeout,
                release,
                lost,
                self.outbox,
                packet_size=self.params.packetsize,
                ping=self.params.ping,
            )
        else:
            conn = HTTPMemberConnection(
                self.reactor,  # type: ignore[arg-type]
                self.timeout,
                release,
                lost,
                self.outbox,
            )
        return cast(
            "Deferred[AJPMemberConnection | HTTPMemberConnection]",
            self.endpoint.connect(_OneConnection(conn)),
        )

    def _connect(self) -> Deferred[MemberConnection]:
        """A new connection for the pool (with TCP keepalive when ``keepalive`` is on)."""
        d = cast(
            "Deferred[MemberConnection]", self.open_connection(self.pool.release, self.pool.lost)
        )
        if self.params.keepalive:

            def keepalive(c: MemberConnection) -> MemberConnection:
                set_keepalive = getattr(getattr(c, "transport", None), "setTcpKeepAlive", None)
                if set_keepalive is not None:
                    set_keepalive(1)
                return c

            d.addCallback(keepalive)
        return d

    def close(self) -> None:
        self.pool.close()


class _OneConnection(Factory):
    """Hands the endpoint the protocol built beforehand; quiet, unlike connectProtocol's."""

    noisy = False

    def __init__(self, protocol: AJPMemberConnection | HTTPMemberConnection) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        # A ConnectionProtocol: Twisted asks of it only what it has (see _transport).
        return cast(Protocol, self._protocol)
