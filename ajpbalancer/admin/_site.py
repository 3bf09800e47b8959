"""The admin listener: a ``twisted.web`` site on the ``admin`` endpoint, with Basic auth.

:func:`admin_site` builds the site; with an ``admin_users`` checker every path needs HTTP
Basic credentials of one of its users (401 otherwise). A request whose ``Host`` names
none of the listener's own host names (``admin_hosts``; by default the loopback names,
the address it listens on and this host's name) is refused with 403 before anything
else, so a page that rebinds its own DNS name to this address can neither read the
nonce nor post a change. Each connection has the frontends' slow-request protection
(mod_reqtimeout's defaults, :class:`AdminChannel`). :class:`AdminListener` reads
``admin_users`` and listens, both from ``privilegedStartService`` (before twistd drops
privileges); it fails at once, as a frontend does, when it cannot. Routine admin requests
are not written to any log; every change made through the page is logged, with its user.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.guard import BasicCredentialFactory, HTTPAuthSessionWrapper
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from zope.interface import implementer

from ajpbalancer.admin._htpasswd import Htpasswd, HtpasswdChecker, Verify, bcrypt_matches
from ajpbalancer.admin._metrics import ProxyMetrics
from ajpbalancer.admin._resources import AdminRequest, admin_root, plain
from ajpbalancer.admin._running import RuntimeSource, RuntimeValues
from ajpbalancer.config import ClientLimits, ReadTimeout, Settings, endpoint_spec

log = Logger()

REALM = b"ajpbalancer admin"
IDLE_TIMEOUT = 60.0
"""Seconds an admin connection may stay idle."""


@implementer(IRealm)
class _AdminRealm:
    """Gives each authenticated user the admin resource tree (changes are logged as theirs)."""

    def __init__(
        self,
        runtime: RuntimeSource,
        clock: IReactorTime,
        metrics: ProxyMetrics,
        values: RuntimeValues | None,
    ):
        self._runtime = runtime
        self._clock = clock
        self._metrics = metrics
        self._values = values

    def requestAvatar(self, avatarId: bytes | tuple[()], mind: object, *interfaces: Any) -> Any:
        if IResource not in interfaces or not isinstance(avatarId, bytes):
            # Anonymous or not asking for a web resource: no admin for it.
            raise UnauthorizedLogin("the admin realm only gives resources to named users")
        user = avatarId.decode("utf-8", "replace")
        root = admin_root(self._runtime, self._clock, self._metrics, user, self._values)
        return IResource, root, lambda: None


class AdminChannel(HTTPChannel):
    """An admin connection with the frontends' slow-request protection.

    As mod_reqtimeout (and a frontend's ``RequestReadTimeout`` defaults): a request head
    must arrive within 20 s, one more second per 500 bytes received, 40 s at most; its
    body within 20 s, one more second per 500 bytes. A connection that misses a deadline
    gets 408 and is closed; one that sent nothing of a request is closed silently. A head
    trickled a byte a second is cut after about 20 s, whatever twisted.web's idle timeout
    (which each byte restarts) would allow.
    """

    head_timeout: ReadTimeout = ClientLimits().header_timeout
    body_timeout: ReadTimeout = ClientLimits().body_timeout

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._stage: ReadTimeout | None = None
        self._stage_start = 0.0
        self._stage_bytes = 0
        self._timer: Any = None

    def _begin(self, stage: ReadTimeout | None) -> None:
        self._stage = stage
        self._stage_start = self._clock()
        self._stage_bytes = 0
        self._arm()

    def _clock(self) -> float:
        site: Site = getattr(self, "site")  # noqa: B009  # set by Site.buildProtocol
        seconds: float = site.reactor.seconds()
        return seconds

    def _arm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        stage = self._stage
        if stage is None or stage.timeout == 0:
            return
        deadline = stage.deadline(self._stage_start, self._stage_bytes)
        delay = max(deadline - self._clock(), 0.0)
        self._timer = self.callLater(delay, self._expired)  # type: ignore[no-untyped-call]

    def _expired(self) -> None:
        self._timer = None
        transport = self.transport
        if transport is None:
            return
        if self._stage_bytes or self._stage is self.body_timeout:
            transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        log.info("admin: a request too slow to arrive was cut off")
        transport.loseConnection()

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        self._begin(self.head_timeout)

    def dataReceived(self, data: bytes) -> None:
        if self._stage is None and not self.requests:
            self._begin(self.head_timeout)  # the first byte of the next request
        if self._stage is not None:
            self._stage_bytes += len(data)
            self._arm()
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def allHeadersReceived(self) -> None:
        super().allHeadersReceived()  # type: ignore[no-untyped-call]
        self._begin(self.body_timeout)

    def allContentReceived(self) -> None:
        self._begin(None)
        super().allContentReceived()  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._begin(None)
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


def _host_name(host: bytes) -> str:
    """The name part of a ``Host`` value, lower-cased, without brackets or a final dot."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0].rstrip(".") if ":" in text else text.rstrip(".")


class AdminSite(Site):
    """The admin's ``Site``: its own host names only, bounded form bodies and slow-request
    protection (:class:`AdminChannel`), no access log, quiet."""

    noisy = False
    protocol = AdminChannel  # type: ignore[assignment]  # an HTTPChannel, without HTTP/2

    def __init__(
        self, resource: IResource, reactor: IReactorTime, hosts: frozenset[str] | None = None
    ) -> None:
        """``hosts``: the names a ``Host`` may give (None: any)."""
        super().__init__(resource, reactor=reactor, timeout=IDLE_TIMEOUT)  # type: ignore[no-untyped-call]
        self.requestFactory = AdminRequest
        self.hosts = hosts

    def getResourceFor(self, request: Request) -> IResource:
        host = request.getHeader(b"host")
        if self.hosts is not None and host is not None and _host_name(host) not in self.hosts:
            name = host.decode("latin-1")
            log.warn("admin: refused a request for host {host!r}", host=name)
            return _Refused(
                f"{name!r} is not a name of this admin listener (admin_hosts: "
                f"{', '.join(sorted(self.hosts))})"
            )
        resource: IResource = super().getResourceFor(request)  # type: ignore[no-untyped-call]
        return resource

    def log(self, request: Any) -> None:
        """Routine admin requests (scrapes) are not logged; changes are, by the page."""


@implementer(IResource)
class _Refused:
    """403 with a message, whatever the path or method."""

    isLeaf = True

    def __init__(self, message: str) -> None:
        self._message = message

    def getChildWithDefault(self, name: bytes, request: Request) -> IResource:
        return self

    def putChild(self, path: bytes, child: IResource) -> None:
        raise TypeError("a refusal answers every path itself; it takes no children")

    def render(self, request: Request) -> bytes:
        return plain(request, 403, self._message)


def default_hosts(settings: Settings) -> frozenset[str]:
    """``admin_hosts``, else the loopback names, the ``interface=`` the admin listens on
    (when it names one) and this host's name."""
    if settings.admin_hosts:
        return frozenset(settings.admin_hosts)
    hosts = {"localhost", "127.0.0.1", "::1", socket.gethostname().lower()}
    if settings.admin is not None:
        for part in re.split(r"(?<!\\):", settings.admin.description):
            key, eq, value = part.partition("=")
            if eq and key.lower() == "interface" and value not in ("", "0.0.0.0", "::"):
                hosts.add(value.replace("\\:", ":").lower())
    return frozenset(hosts)


def admin_site(
    reactor: IReactorTime,
    runtime: RuntimeSource,
    metrics: ProxyMetrics,
    checker: ICredentialsChecker | None = None,
    *,
    values: RuntimeValues | None = None,
    hosts: frozenset[str] | None = None,
) -> Site:
    """The admin site; with ``checker``, every path needs Basic credentials it accepts;
    ``values``: the runtime state; ``hosts``: the host names it answers to (None: any)."""
    resource: IResource
    if checker is None:
        resource = admin_root(runtime, reactor, metrics, None, values)
    else:
        portal = Portal(_AdminRealm(runtime, reactor, metrics, values), [checker])
        resource = HTTPAuthSessionWrapper(portal, [BasicCredentialFactory(REALM)])
    return AdminSite(resource, reactor, hosts)


def threaded_verify(reactor: Any) -> Verify:
    """bcrypt checks in the reactor's thread pool, so the proxy keeps serving meanwhile."""

    def verify(password: bytes, hashed: bytes) -> Deferred[bool]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), bcrypt_matches, password, hashed)

    return verify


class AdminListener:
    """The listening admin site (see the module docstring)."""

    def __init__(self, site: Site, port: IListeningPort, description: str) -> None:
        self.site = site
        self.port = port
        self.description = description

    @classmethod
    def open(
        cls,
        reactor: Any,
        settings: Settings,
        runtime: RuntimeSource,
        metrics: ProxyMetrics,
        values: RuntimeValues | None = None,
    ) -> AdminListener:
        """Read ``admin_users`` and listen on ``admin`` (raises if either fails)."""
        assert settings.admin is not None
        checker = None
        if settings.admin_users is not None:
            users = Htpasswd.load(settings.admin_users)
            checker = HtpasswdChecker(users, threaded_verify(reactor))
        site = admin_site(
            reactor, runtime, metrics, checker, values=values, hosts=default_hosts(settings)
        )
        description = settings.admin.description
        ports: list[IListeningPort] = []
        failures: list[Failure] = []
        endpoint = endpoint_spec(description).endpoint()  # backlog 511 unless set
        serverFromString(reactor, endpoint).listen(site).addCallbacks(ports.append, failures.append)
        if failures:  # TCP, TLS and UNIX endpoints listen at once, or fail at once
            failures[0].raiseException()
        log.info(
            "admin listening: {admin}{auth}",
            admin=description,
            auth="" if checker is None else f" (users from {settings.admin_users})",
        )
        return cls(site, ports[0], description)

    def reconfigure(self, settings: Settings) -> None:
        """Take what a reload may change of the listening admin: its backlog (the socket
        listens again with it) and ``admin_hosts``; the rest of ``admin`` and
        ``admin_users`` take a restart (the service refuses a reload that changes them)."""
        assert settings.admin is not None
        if isinstance(self.site, AdminSite):
            self.site.hosts = default_hosts(settings)
        description = settings.admin.description
        if description != self.description:
            backlog = endpoint_spec(description).listen_backlog
            sock = getattr(self.port, "socket", None)
            if backlog is not None and isinstance(sock, socket.socket):
                sock.listen(backlog)
            self.description = description

    def close(self) -> None:
        self.port.stopListening()
