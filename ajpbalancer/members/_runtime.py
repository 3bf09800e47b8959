"""A member at run time (a "worker", as mod_proxy calls it), built from the config.

A :class:`MemberRuntime` owns one member's endpoint, connection pool and balancing
state (:class:`~ajpbalancer.balancer.MemberState`), and prepares what its protocol sends
for a request (:mod:`._request`). It is the only owner of a member's mutable state.

A member with ``upgrade=`` lets a request that offers one of those protocols switch
(:meth:`MemberRuntime.prepare_upgrade`): an HTTP member over its own pool, an ``ajp://``
member over a second pool of HTTP connections to its ``upgradeurl``, the HTTP connector
of the same node (AJP13 cannot carry an upgrade); :attr:`MemberRuntime.upgrade_pool` is
the pool such a request takes its connection from.
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
from ajpbalancer.members._request import (
    OutgoingRequest,
    UpgradeRequest,
    ajp_forward,
    http_head,
    upgrade_head,
)
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
        self.host_header = _host_header(url)
        self.endpoint = self._endpoint(reactor, url)
        self.is_ajp = url.scheme is Scheme.AJP
        self.secret = None if params.secret is None else params.secret.encode("utf-8")
        self.pool: Pool = self._pool(self._connect)
        self.upgrade_pool = self.pool
        """Where a request that switches protocols takes its connection (see the module
        docstring)."""
        self._upgrade_host = self.host_header
        self._upgrade_endpoint = self.endpoint
        if self.is_ajp and params.upgradeurl is not None:
            self._upgrade_host = _host_header(params.upgradeurl)
            self._upgrade_endpoint = self._endpoint(reactor, params.upgradeurl)
            self.upgrade_pool = self._pool(self._connect_upgrade)

    def _pool(self, connect: Callable[[], Deferred[MemberConnection]]) -> Pool:
        params = self.params
        return Pool(
            self.reactor,  # type: ignore[arg-type]  # any IReactorTime; typed loosely to stay importable
            connect,
            max_connections=params.max,
            ttl=params.ttl,
            disablereuse=params.disablereuse,
            connect_timeout=self.connect_timeout,
        )

    def _endpoint(self, reactor: object, url: URL) -> IStreamClientEndpoint:
        host = url.host
        port = url.effective_port
        assert port is not None
        timeout = self.connect_timeout
        endpoint: IStreamClientEndpoint
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
        else:
            endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
        if url.scheme is Scheme.HTTPS:
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

    def can_upgrade(self, offer: bytes) -> bool:
        """Whether a request offering the protocols ``offer`` may switch with this member."""
        return self.params.can_upgrade(offer)

    def prepare_upgrade(
        self, request: OutgoingRequest, frontend: Frontend, server_name: bytes, offer: bytes
    ) -> UpgradeRequest:
        """The HTTP/1.1 head that asks this member (or its ``upgradeurl``) to switch to
        ``offer``, for a connection of :attr:`upgrade_pool`."""
        head = http_head(
            request,
            member_host=self._upgrade_host,
            preserve_host=frontend.preserve_host,
            add_forwarded=frontend.add_headers,
            server_name=server_name,
        )
        return UpgradeRequest(upgrade_head(head, offer), offer)

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

    def _connect_upgrade(self) -> Deferred[MemberConnection]:
        """A new HTTP connection to an ``ajp://`` member's ``upgradeurl``."""
        conn = HTTPMemberConnection(
            self.reactor,  # type: ignore[arg-type]
            self.timeout,
            self.upgrade_pool.release,
            self.upgrade_pool.lost,
            self.outbox,
        )
        return cast(
            "Deferred[MemberConnection]", self._upgrade_endpoint.connect(_OneConnection(conn))
        )

    def close(self) -> None:
        self.pool.close()
        if self.upgrade_pool is not self.pool:
            self.upgrade_pool.close()


def _host_header(url: URL) -> bytes:
    """``Host`` for a request to ``url``: the port only when not the scheme's default."""
    port = url.effective_port
    host = f"[{url.host}]" if ":" in url.host else url.host
    return (host if port == url.scheme.default_port else f"{host}:{port}").encode("idna")


class _OneConnection(Factory):
    """Hands the endpoint the protocol built beforehand; quiet, unlike connectProtocol's."""

    noisy = False

    def __init__(self, protocol: AJPMemberConnection | HTTPMemberConnection) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        # A ConnectionProtocol: Twisted asks of it only what it has (see _transport).
        return cast(Protocol, self._protocol)
