"""The proxy as a service: listeners, the runtime of the current configuration, reloads.

:class:`ProxyService` is a ``MultiService`` with one endpoint service per ``listen`` line
(endpoints listen in ``privilegedStartService``, so before ``twistd -u/-g`` drops
privileges) and the built-in demo backends when the config asks for them; the health
checks of members with ``hcmethod`` run from ``startService`` to ``stopService``. With
``admin`` set, the admin listener (:mod:`ajpbalancer.admin`) opens with the frontends and
its metrics observe every exchange, across reloads.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from ajpbalancer.config import Config, ConfigError
from ajpbalancer.demo import demo_service
from ajpbalancer.frontend import ConnectionGate, FrontendProtocol, frontend_endpoint
from ajpbalancer.proxy import AccessLog, ExchangeObserver, FrontendContext
from ajpbalancer.service._heap import HeapTrimmer, glibc_malloc_trim
from ajpbalancer.service._reload import carry_over
from ajpbalancer.service._runtime import ProxyRuntime
from ajpbalancer.service._supervisor import Inherited, ProcessSpawner, Supervisor
from ajpbalancer.shm import CounterTable, CountingObserver, SharedMemory

if TYPE_CHECKING:
    from ajpbalancer.admin import AdminListener, ProxyMetrics

log = Logger()


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process inherits from its supervisor: the shared balancer state,
    the access log and the listening sockets by (frontend, ``listen`` line)."""

    shared: SharedMemory
    access_log: AccessLog | None
    listeners: Mapping[tuple[str, str], int]
    counters: CounterTable | None = None
    """The supervisor's request counters (when it has an admin listener)."""


class FrontendFactory(Factory):
    """Builds a :class:`FrontendProtocol` per client connection of one frontend."""

    noisy = False

    def __init__(
        self, reactor: IReactorTime, context: FrontendContext, heap: HeapTrimmer | None = None
    ) -> None:
        """``heap``: told of each connection that opens and closes (see :mod:`._heap`)."""
        self.reactor = reactor
        self.context = context
        self.heap = heap
        self.connections: set[FrontendProtocol] = set()
        self.gate = ConnectionGate()

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        limits = self.context.frontend.limits
        self.gate.limit = limits.max_connections  # a reload may change it
        if not self.gate.admit():
            return None  # MaxConnections reached within one accept burst: closed at once
        proto = FrontendProtocol(
            self.reactor,
            self.context.exchange,
            client_limits=limits,
            on_close=self._closed,
            outbox=self.context.outbox,
            on_answered=self.context.answered,
        )
        proto.factory = self
        self.connections.add(proto)
        if self.heap is not None:
            self.heap.opened()
        return proto

    def _closed(self, proto: FrontendProtocol) -> None:
        self.connections.discard(proto)
        self.gate.release()
        if self.heap is not None:
            self.heap.closed()


class _Listener:
    """One ``listen`` line's listening port, which a reload may keep, open or close."""

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        factory: FrontendFactory,
        frontend: str,
        description: str,
    ) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.frontend = frontend
        self.description = description
        self.port: IListeningPort | None = None
        self.passive = False

    def open(self) -> Deferred[IListeningPort]:
        d: Deferred[IListeningPort] = self.endpoint.listen(self.factory)

        def listening(port: IListeningPort) -> IListeningPort:
            self.port = port
            if self.passive:
                # The supervisor holds the socket for its workers and accepts nothing.
                port.stopReading()  # type: ignore[attr-defined]  # a FileDescriptor
            else:
                self.factory.gate.add_port(port)  # MaxConnections pauses it
            return port

        return d.addCallback(listening)

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            self.factory.gate.remove_port(port)
            port.stopListening()

    def fileno(self) -> int:
        assert self.port is not None
        fd: int = self.port.fileno()  # type: ignore[attr-defined]  # a FileDescriptor
        return fd

    def adopt(self, reactor: Any, fd: int) -> None:
        """Serve the listening socket ``fd`` inherited from the supervisor (then closed:
        the reactor keeps its own duplicate), with TLS for an ``ssl:`` line."""
        with socket.socket(fileno=os.dup(fd)) as sock:
            family = sock.family
        factory: object = self.factory
        if isinstance(self.endpoint, SSL4ServerEndpoint):
            # The context the endpoint would listen with (its key and certificate).
            context = self.endpoint._sslContextFactory
            factory = TLSMemoryBIOFactory(context, False, self.factory)
        self.port = reactor.adoptStreamPort(fd, family, factory)
        self.factory.gate.add_port(self.port)  # MaxConnections pauses it
        os.close(fd)


def series_entries(config: Config) -> int:
    """Room for the request series of ``workers = N``: each frontend by each member and
    five status classes, and the histograms, four times over for reloads."""
    members = sum(len(b.members) for b in config.balancers)
    members += sum(len(fe.rules) for fe in config.frontends)
    frontends = len(config.frontends)
    return max(1024, 4 * (5 * frontends * (members + 1) + 2 * members + frontends))


class ProxyService(MultiService):
    """The whole proxy for one config (see the module docstring)."""

    def __init__(
        self,
        reactor: Any,
        config: Config,
        *,
        loader: Callable[[], Config] | None = None,
        worker: WorkerSetup | None = None,
    ) -> None:
        """``worker``: this process is one of the workers of ``workers = N`` (see
        :mod:`ajpbalancer.worker`); without it, ``workers = N`` makes it the supervisor."""
        super().__init__()  # type: ignore[no-untyped-call]  # MultiService is unannotated
        self.reactor = reactor
        self.config = config
        self.loader = loader
        self.worker = worker
        self.supervising = worker is None and config.settings.workers > 1
        self.shared: SharedMemory | None = None if worker is None else worker.shared
        self.supervisor: Supervisor | None = None
        self.reloads = 0
        self.runtime: ProxyRuntime | None = None
        self.access_log: AccessLog | None = None
        self.factories: dict[str, FrontendFactory] = {}
        self.ports: list[_Listener] = []
        self.metrics: ProxyMetrics | None = None
        self.counters: CounterTable | None = None if worker is None else worker.counters
        self.observer: ExchangeObserver | None = None
        self.admin: AdminListener | None = None
        self.heap = HeapTrimmer(reactor, glibc_malloc_trim())

    def privilegedStartService(self) -> None:
        # Files and sockets are opened here, before twistd drops privileges.
        target = self.config.settings.access_log
        access_log_target: str | int = target
        if self.worker is not None:
            self.access_log = self.worker.access_log
        elif self.supervising:
            # The workers log; the supervisor opens the file for them (they may not can).
            if target not in ("-", "off"):
                access_log_target = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            members = sum(len(b.members) for b in self.config.balancers)
            members += sum(len(fe.rules) for fe in self.config.frontends)
            self.shared = SharedMemory.create(
                members=max(256, 4 * members), balancers=max(64, 4 * len(self.config.balancers))
            )
        else:
            self.access_log = AccessLog.open(target)
        if self.config.settings.admin is not None and self.worker is None:
            # twisted.web and prometheus_client are loaded only for the admin listener.
            from ajpbalancer.admin import ProxyMetrics  # noqa: PLC0415

            if self.supervising:
                # The workers count requests in columns of a table the supervisor sums.
                self.counters = CounterTable.create(
                    entries=series_entries(self.config),
                    columns=2 * self.config.settings.workers + 1,
                    shared=True,
                )
            self.metrics = ProxyMetrics(lambda: self.runtime, self.counters)
            self.observer = self.metrics
        elif self.counters is not None:
            column = self.counters.claim(os.getpid())
            if column is None:
                log.error("metrics: no free column; this worker's requests are not counted")
            self.observer = CountingObserver(self.counters, column)
        self.runtime = ProxyRuntime(
            self.reactor,
            self.config,
            access_log=self.access_log,
            server_name=socket.gethostname().encode("idna"),
            observer=self.observer,
            shared=self.shared,
        )
        for backend in self.config.settings.demo if self.worker is None else ():
            demo = demo_service(self.reactor, backend)
            demo.setName(f"demo {backend.route} {backend.url}")
            demo.setServiceParent(self)
        if self.metrics is not None:
            from ajpbalancer.admin import AdminListener  # noqa: PLC0415

            self.admin = AdminListener.open(
                self.reactor, self.config.settings, lambda: self.runtime, self.metrics
            )
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        for fe in self.config.frontends:
            factory = FrontendFactory(self.reactor, self.runtime.contexts[fe.name], self.heap)
            self.factories[fe.name] = factory
            for listen in fe.listen:
                endpoint = frontend_endpoint(self.reactor, listen.description, fe.tls)
                listener = _Listener(endpoint, factory, fe.name, listen.description)
                listener.passive = self.supervising
                if self.worker is not None:
                    listener.adopt(self.reactor, self.worker.listeners[fe.name, listen.description])
                    self.ports.append(listener)
                    continue
                failures: list[Failure] = []
                listener.open().addErrback(failures.append)
                if failures:  # TCP, TLS and UNIX endpoints listen at once, or fail at once
                    failures[0].raiseException()
                self.ports.append(listener)
        log.info(
            "ajpbalancer listening: {frontends}",
            frontends=", ".join(ln.description for fe in self.config.frontends for ln in fe.listen),
        )
        if self.supervising:
            assert self.shared is not None
            spawner = ProcessSpawner(
                self.reactor,
                self.config.path,
                shared_fd=self.shared.fd,
                counters=self.counters,
                access_log=access_log_target,
                listeners=lambda: [
                    Inherited(p.fileno(), p.frontend, p.description) for p in self.ports
                ],
            )
            self.supervisor = Supervisor(self.reactor, spawner, self.config.settings.workers)

    def reload(self) -> Deferred[bool]:
        """Read the configuration again and take it over (see :mod:`._reload`)."""
        if self.loader is None or self.runtime is None:
            return succeed(False)
        try:
            config = self.loader()
        except ConfigError as e:
            for problem in e.problems:
                log.error("reload refused: {problem}", problem=str(problem))
            log.error(
                "reload refused: {count} problem(s); the running configuration stays",
                count=len(e.problems),
            )
            return succeed(False)
        old_runtime = self.runtime
        wanted = {(fe.name, ln.description) for fe in config.frontends for ln in fe.listen}
        present = {(s.frontend, s.description): s for s in self.ports}
        if self.worker is not None and wanted != present.keys():
            # The supervisor replaces its workers when the listeners change.
            log.warn("reload: the listeners changed; the supervisor starts new workers")
            return succeed(False)
        runtime = ProxyRuntime(
            self.reactor,
            config,
            access_log=self.access_log,
            server_name=old_runtime.server_name,
            observer=self.observer,
            shared=self.shared,
            configure=True,
            outbox=old_runtime.outbox,
        )
        carried = carry_over(old_runtime.members(), runtime.members())
        opened: list[tuple[str, str, _Listener]] = []
        new_factories = {
            fe.name: self.factories.get(fe.name)
            or FrontendFactory(self.reactor, runtime.contexts[fe.name], self.heap)
            for fe in config.frontends
        }
        listening: list[Deferred[Any]] = []
        for name, description in sorted(wanted - present.keys()):
            tls = runtime.contexts[name].frontend.tls
            endpoint = frontend_endpoint(self.reactor, description, tls)
            service = _Listener(endpoint, new_factories[name], name, description)
            service.passive = self.supervising
            opened.append((name, description, service))
            listening.append(service.open())

        def opened_all(_: object) -> bool:
            for service in present.values():
                if (service.frontend, service.description) not in wanted:
                    service.close()
                    self.ports.remove(service)
            for _name, _description, service in opened:
                self.ports.append(service)
            for name, factory in new_factories.items():
                factory.context = runtime.contexts[name]
            self.factories = new_factories
            self.runtime = runtime
            self.config = config
            old_runtime.close()
            if self.running and self.worker is None:
                runtime.start_health_checks()
            self.reloads += 1
            if self.supervisor is not None:
                if wanted == present.keys():
                    self.supervisor.signal_all("HUP")  # each worker reloads as this one did
                else:
                    self.supervisor.replace_all()  # new workers inherit the new sockets
            log.info(
                "reloaded {path}: {frontends} frontend(s), {balancers} balancer(s); "
                "state kept for {carried} member(s)",
                path=config.path,
                frontends=len(config.frontends),
                balancers=len(config.balancers),
                carried=carried,
            )
            return True

        def not_opened(failure: Failure) -> bool:
            for _name, _description, service in opened:
                service.close()
            runtime.close()
            log.error(
                "reload refused: cannot listen: {error}; the running configuration stays",
                error=failure.getErrorMessage(),
            )
            return False

        d = gatherResults(listening, consumeErrors=True)
        return d.addCallbacks(opened_all, lambda f: not_opened(f.value.subFailure))

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        if self.runtime is not None and self.worker is None:
            self.runtime.start_health_checks()
        if self.supervisor is not None:
            # After twistd dropped privileges: the workers run as its user and group.
            self.supervisor.start()
        self.heap.start()

    def drain(self, grace: float) -> Deferred[None]:
        """Stop accepting, close idle client connections, and fire once none is left or
        ``grace`` seconds passed (a worker's graceful stop).

        A connection is idle between two requests of a keep-alive connection; one that
        was accepted but has not sent its first request yet (the client sent it, perhaps,
        as we stopped) is left to send it and is answered (its header timeout bounds it)."""
        for listener in self.ports:
            listener.close()
        done: Deferred[None] = Deferred()
        deadline = self.reactor.seconds() + grace

        def poll() -> None:
            busy = 0
            for factory in self.factories.values():
                for proto in list(factory.connections):
                    if proto.head is None and proto.requests and proto.transport is not None:
                        proto.transport.loseConnection()
                    else:
                        busy += 1
            if busy and self.reactor.seconds() < deadline:
                self.reactor.callLater(0.1, poll)
            else:
                done.callback(None)

        poll()
        return done

    def stopService(self) -> Any:
        self.heap.stop()
        for listener in self.ports:
            listener.close()
        if self.admin is not None:
            self.admin.close()
        stopping = [] if self.supervisor is None else [self.supervisor.stop()]
        d = super().stopService()  # type: ignore[no-untyped-call]
        if stopping:
            d = gatherResults([d, *stopping])
        if self.runtime is not None:
            self.runtime.close()
        if self.access_log is not None:
            self.access_log.close()
        return d
