"""Runtime members ("workers", as mod_proxy calls them) and balancers built from the config.

A :class:`Worker` owns one member's connection pool and counters; a
:class:`BalancerRuntime` owns its workers and picks one per request with its lbmethod.
These are the only owners of mutable member state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
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
from twisted.internet.protocol import Factory

from ajpbalancer.balancer import MemberState, Selection, max_attempts, select_member
from ajpbalancer.config import URL, Balancer, BalancerParams, Frontend, MemberParams, Scheme
from ajpbalancer.members import AJPMemberConnection, HTTPMemberConnection, MemberConnection, Pool
from ajpbalancer.proxy._prepare import OutgoingRequest, ajp_forward, http_head
from ajpbalancer.shm import SharedBalancer, SharedMemberState, SharedMemory


class Worker:
    """One member: its URL, parameters, pool and balancing counters."""

    def __init__(
        self,
        reactor: object,
        url: URL,
        params: MemberParams,
        default_timeout: float,
        *,
        state: MemberState | None = None,
    ) -> None:
        """``state``: the member's shared state (``workers = N``), else a private one."""
        self.reactor = reactor
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
        self.pool: Pool[MemberConnection] = Pool(
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

    def prepare(self, request: OutgoingRequest, frontend: Frontend, server_name: bytes) -> object:
        """What this member's protocol sends for ``request`` (see :mod:`._prepare`)."""
        if self.is_ajp:
            return ajp_forward(request, secret=self.secret)
        return http_head(
            request,
            member_host=self.host_header,
            preserve_host=frontend.preserve_host,
            add_forwarded=frontend.add_headers,
            server_name=server_name,
        )

    def _connect(self) -> Deferred[MemberConnection]:
        conn: AJPMemberConnection | HTTPMemberConnection
        if self.is_ajp:
            conn = AJPMemberConnection(
                self.reactor,  # type: ignore[arg-type]
                self.timeout,
                self.pool.release,
                self.pool.lost,
                packet_size=self.params.packetsize,
                ping=self.params.ping,
            )
        else:
            conn = HTTPMemberConnection(
                self.reactor,  # type: ignore[arg-type]
                self.timeout,
                self.pool.release,
                self.pool.lost,
            )
        d = cast("Deferred[MemberConnection]", self.endpoint.connect(_OneConnection(conn)))
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


class BalancerRuntime:
    """A balancer's workers in configuration order, their states, and its parameters.

    ``params`` starts as the configured ``ProxySet`` values and is replaced (never mutated:
    it is frozen) when balancer-manager changes them; ``nonce`` is the UUID that every
    balancer-manager change to this balancer must carry, made once per balancer as httpd
    makes it.

    With ``workers = N`` (``shared`` given, see :mod:`ajpbalancer.shm`),
    ``params``, ``max_attempts`` and ``nonce`` live in the balancer's shared slot and
    ``lock`` is the cross-process lock held around each decision.
    """

    def __init__(
        self,
        config: Balancer,
        workers: Sequence[Worker],
        *,
        shared: SharedMemory | None = None,
        configure: bool = False,
    ) -> None:
        self.config = config
        self.name = config.name
        self._params = config.params
        self._nonce = str(uuid.uuid4())
        self.workers = tuple(workers)
        self.states = tuple(w.lb for w in self.workers)
        self._by_state = {id(w.lb): w for w in self.workers}
        self._max_attempts = max_attempts(config.params, len(self.workers))
        self.lock: AbstractContextManager[None] = nullcontext()
        self._shared: SharedBalancer | None = None
        # The shared states whose pending traffic a selection publishes (see select).
        self._publish = tuple(s for s in self.states if isinstance(s, SharedMemberState))
        if shared is not None:
            self.lock = shared.lock
            self._shared = shared.balancer(
                self.name, config.params, self._max_attempts, self._nonce, configure=configure
            )
        if len(self.workers) == 1:
            # Apache's recalc_factors: a lone member has lbfactor and lbstatus 100.
            self.workers[0].lb.lbfactor = 100
            self.workers[0].lb.lbstatus = 100
        # Otherwise lbstatus starts at 0, which reproduces the schedules that Apache's
        # documentation of the request counting algorithm tabulates.

    @property
    def params(self) -> BalancerParams:
        return self._params if self._shared is None else self._shared.params

    @params.setter
    def params(self, value: BalancerParams) -> None:
        if self._shared is None:
            self._params = value
        else:
            self._shared.params = value

    @property
    def max_attempts(self) -> int:
        return self._max_attempts if self._shared is None else self._shared.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        if self._shared is None:
            self._max_attempts = value
        else:
            self._shared.max_attempts = value

    @property
    def nonce(self) -> str:
        return self._nonce if self._shared is None else self._shared.nonce

    def select(
        self, path_with_query: bytes, cookies: Sequence[bytes], now: float
    ) -> tuple[Worker | None, Selection]:
        """One attempt's member (pre_request): the session route, else the lbmethod.

        The whole decision holds ``lock``, so with shared state it is one atomic
        read-modify-write across the processes. It also publishes this process's pending
        traffic of the members (see :mod:`ajpbalancer.shm`): the lock is held
        anyway, and ``bytraffic`` then counts every byte this process has moved."""
        with self.lock:
            for state in self._publish:
                state.publish_traffic()
            selection = select_member(self.states, self.params, path_with_query, cookies, now)
        member = selection.member
        return (None if member is None else self._by_state[id(member)]), selection


class _OneConnection(Factory):
    """Hands the endpoint the protocol built beforehand; quiet, unlike connectProtocol's."""

    noisy = False

    def __init__(self, protocol: AJPMemberConnection | HTTPMemberConnection) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> AJPMemberConnection | HTTPMemberConnection:
        return self._protocol
