"""Build the running proxy from a :class:`Config`: workers, balancers, frontends, listeners.

:class:`ProxyService` is a ``MultiService`` with one endpoint service per ``listen`` line
(endpoints listen in ``privilegedStartService``, so before ``twistd -u/-g`` drops
privileges) and the built-in demo backends when the config asks for them.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ajpbalancer.config import URL, Config, Scheme
from ajpbalancer.demo import demo_service
from ajpbalancer.frontend import FrontendProtocol
from ajpbalancer.proxy._accesslog import AccessLog
from ajpbalancer.proxy._exchange import FrontendContext
from ajpbalancer.proxy._workers import BalancerRuntime, Worker
from ajpbalancer.rewrite import ReverseMap
from ajpbalancer.routing import Router

log = Logger()


class ProxyRuntime:
    """The workers, balancers and frontend contexts of one configuration."""

    def __init__(
        self,
        reactor: IReactorTime,
        config: Config,
        *,
        access_log: AccessLog | None,
        server_name: bytes,
    ) -> None:
        self.config = config
        timeout = config.settings.proxy_timeout
        self.balancers: dict[str, BalancerRuntime] = {
            b.name: BalancerRuntime(
                b, [Worker(reactor, m.url, m.params, timeout) for m in b.members]
            )
            for b in config.balancers
        }
        self.contexts: dict[str, FrontendContext] = {}
        self.direct: list[Worker] = []
        for fe in config.frontends:
            direct: dict[int, Worker] = {}
            for rule in fe.rules:
                target = rule.target
                if target is not None and target.scheme is not Scheme.BALANCER:
                    origin = URL(target.scheme, target.host, target.port, "")
                    worker = Worker(reactor, origin, rule.params, timeout)
                    direct[id(rule)] = worker
                    self.direct.append(worker)
            rewrites = fe.reverse or fe.cookie_domain or fe.cookie_path
            self.contexts[fe.name] = FrontendContext(
                reactor=reactor,
                frontend=fe,
                router=Router(fe.rules),
                balancers=self.balancers,
                direct=direct,
                server_name=server_name,
                access_log=access_log,
                reverse=ReverseMap.for_frontend(fe, config.balancers) if rewrites else None,
            )

    def workers(self) -> list[Worker]:
        out = [w for b in self.balancers.values() for w in b.workers]
        return out + self.direct

    def close(self) -> None:
        for worker in self.workers():
            worker.close()


class FrontendFactory(Factory):
    """Builds a :class:`FrontendProtocol` per client connection of one frontend."""

    noisy = False

    def __init__(self, reactor: IReactorTime, context: FrontendContext) -> None:
        self.reactor = reactor
        self.context = context
        self.connections: set[FrontendProtocol] = set()

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        proto = FrontendProtocol(
            self.reactor, self.context.exchange, on_close=self.connections.discard
        )
        proto.factory = self
        self.connections.add(proto)
        return proto


class ProxyService(MultiService):
    """The whole proxy for one config (see the module docstring)."""

    def __init__(self, reactor: Any, config: Config) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # MultiService is unannotated
        self.reactor = reactor
        self.config = config
        self.runtime: ProxyRuntime | None = None
        self.access_log: AccessLog | None = None
        self.factories: dict[str, FrontendFactory] = {}
        self.ports: list[StreamServerEndpointService] = []

    def privilegedStartService(self) -> None:
        # Files and sockets are opened here, before twistd drops privileges.
        self.access_log = AccessLog.open(self.config.settings.access_log)
        self.runtime = ProxyRuntime(
            self.reactor,
            self.config,
            access_log=self.access_log,
            server_name=socket.gethostname().encode("idna"),
        )
        for backend in self.config.settings.demo:
            demo = demo_service(self.reactor, backend)
            demo.setName(f"demo {backend.route}")
            demo.setServiceParent(self)
        for fe in self.config.frontends:
            factory = FrontendFactory(self.reactor, self.runtime.contexts[fe.name])
            self.factories[fe.name] = factory
            for listen in fe.listen:
                endpoint = serverFromString(self.reactor, listen.description)
                service = StreamServerEndpointService(endpoint, factory)
                service._raiseSynchronously = True
                service.setName(f"{fe.name or 'frontend'} {listen.description}")
                service.setServiceParent(self)
                self.ports.append(service)
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        log.info(
            "ajpbalancer listening: {frontends}",
            frontends=", ".join(ln.description for fe in self.config.frontends for ln in fe.listen),
        )

    def stopService(self) -> Any:
        d = super().stopService()  # type: ignore[no-untyped-call]
        if self.runtime is not None:
            self.runtime.close()
        if self.access_log is not None:
            self.access_log.close()
        return d
