"""The admin listener: a ``twisted.web`` site on the ``admin`` endpoint, with Basic auth.

:func:`admin_site` builds the site; with an ``admin_users`` checker every path needs HTTP
Basic credentials of one of its users (401 otherwise). :class:`AdminListener` reads
``admin_users`` and listens, both from ``privilegedStartService`` (before twistd drops
privileges); it fails at once, as a frontend does, when it cannot. Routine admin requests
are not written to any log; every change made through the page is logged, with its user.
"""

from __future__ import annotations

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
from twisted.web.resource import IResource
from twisted.web.server import Site
from zope.interface import implementer

from ajpbalancer.admin._htpasswd import Htpasswd, HtpasswdChecker, Verify, bcrypt_matches
from ajpbalancer.admin._metrics import ProxyMetrics
from ajpbalancer.admin._resources import AdminRequest, admin_root
from ajpbalancer.admin._running import RuntimeSource
from ajpbalancer.config import Settings

log = Logger()

REALM = b"ajpbalancer admin"
IDLE_TIMEOUT = 60.0
"""Seconds an admin connection may stay idle."""


@implementer(IRealm)
class _AdminRealm:
    """Gives each authenticated user the admin resource tree (changes are logged as theirs)."""

    def __init__(self, runtime: RuntimeSource, clock: IReactorTime, metrics: ProxyMetrics):
        self._runtime = runtime
        self._clock = clock
        self._metrics = metrics

    def requestAvatar(self, avatarId: bytes | tuple[()], mind: object, *interfaces: Any) -> Any:
        if IResource not in interfaces or not isinstance(avatarId, bytes):
            # Anonymous or not asking for a web resource: no admin for it.
            raise UnauthorizedLogin("the admin realm only gives resources to named users")
        user = avatarId.decode("utf-8", "replace")
        root = admin_root(self._runtime, self._clock, self._metrics, user)
        return IResource, root, lambda: None


class AdminSite(Site):
    """The admin's ``Site``: bounded form bodies, no access log, quiet."""

    noisy = False

    def __init__(self, resource: IResource, reactor: IReactorTime) -> None:
        super().__init__(resource, reactor=reactor, timeout=IDLE_TIMEOUT)  # type: ignore[no-untyped-call]
        self.requestFactory = AdminRequest

    def log(self, request: Any) -> None:
        """Routine admin requests (scrapes) are not logged; changes are, by the page."""


def admin_site(
    reactor: IReactorTime,
    runtime: RuntimeSource,
    metrics: ProxyMetrics,
    checker: ICredentialsChecker | None = None,
) -> Site:
    """The admin site; with ``checker``, every path needs Basic credentials it accepts."""
    resource: IResource
    if checker is None:
        resource = admin_root(runtime, reactor, metrics, None)
    else:
        portal = Portal(_AdminRealm(runtime, reactor, metrics), [checker])
        resource = HTTPAuthSessionWrapper(portal, [BasicCredentialFactory(REALM)])
    return AdminSite(resource, reactor)


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
        cls, reactor: Any, settings: Settings, runtime: RuntimeSource, metrics: ProxyMetrics
    ) -> AdminListener:
        """Read ``admin_users`` and listen on ``admin`` (raises if either fails)."""
        assert settings.admin is not None
        checker = None
        if settings.admin_users is not None:
            users = Htpasswd.load(settings.admin_users)
            checker = HtpasswdChecker(users, threaded_verify(reactor))
        site = admin_site(reactor, runtime, metrics, checker)
        description = settings.admin.description
        ports: list[IListeningPort] = []
        failures: list[Failure] = []
        serverFromString(reactor, description).listen(site).addCallbacks(
            ports.append, failures.append
        )
        if failures:  # TCP, TLS and UNIX endpoints listen at once, or fail at once
            failures[0].raiseException()
        log.info(
            "admin listening: {admin}{auth}",
            admin=description,
            auth="" if checker is None else f" (users from {settings.admin_users})",
        )
        return cls(site, ports[0], description)

    def close(self) -> None:
        self.port.stopListening()
