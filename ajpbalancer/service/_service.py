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
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.error import CannotListenError
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

from ajpbalancer._build import version_line
from ajpbalancer.config import Config, ConfigError, Listen, endpoint_spec
from ajpbalancer.demo import demo_service
from ajpbalancer.frontend import ConnectionGate, FrontendProtocol, frontend_endpoint
from ajpbalancer.proxy import AccessLog, ExchangeObserver, FrontendContext
from ajpbalancer.service._accesslog import AccessLogs, AccessLogSwitch
from ajpbalancer.service._errors import StartError, reason
from ajpbalancer.service._heap import HeapTrimmer, glibc_malloc_trim
from ajpbalancer.service._reload import carry_over, needs_restart
from ajpbalancer.service._runtime import ProxyRuntime
from ajpbalancer.service._supervisor import Inherited, ProcessSpawner, Supervisor
from ajpbalancer.shm import CounterTable, CountingObserver, SharedMemory

if TYPE_CHECKING:
    from ajpbalancer.admin import AdminListener, ProxyMetrics
    from ajpbalancer.runstate import RuntimeState

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
        # A ConnectionProtocol: Twisted asks of it only what it has (see _transport).
        return cast(Protocol, proto)

    def _closed(self, proto: FrontendProtocol) -> None:
        self.connections.discard(proto)
        self.gate.release()
        if self.heap is not None:
            self.heap.closed()


def relisten(port: object, backlog: int) -> None:
    """Listen again on ``port``'s socket with ``backlog``: the kernel takes the new
    backlog for the socket as it is, connections waiting in its queue included."""
    sock = getattr(port, "socket", None)
    if isinstance(sock, socket.socket):
        sock.listen(backlog)


class _Listener:
    """One ``listen`` line's listening port, which a reload may keep, open or close."""

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        factory: FrontendFactory,
        frontend: str,
        listen: Listen,
    ) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.frontend = frontend
        self.listen = listen
        spec = endpoint_spec(listen.description)
        self.address = spec.address
        self.backlog = spec.listen_backlog
        self.port: IListeningPort | None = None
        self.passive = False

    @property
    def description(self) -> str:
        return self.listen.description

    def take(self, listen: Listen) -> None:
        """Serve ``listen``, a line for the same address (a reload may change its backlog)."""
        backlog = endpoint_spec(listen.description).listen_backlog
        if backlog is not None and backlog != self.backlog and self.port is not None:
            relisten(self.port, backlog)
        self.listen, self.backlog = listen, backlog

    def failure(self, error: object) -> StartError:
        """Why this listener cannot listen, as one line naming the line and frontend."""
        frontend = f"[frontend:{self.frontend}]" if self.frontend else "[frontend]"
        return StartError(
            f"{self.listen.where}: listen: cannot listen on {self.description} for "
            f"{frontend}: {reason(error)}"
        )

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


def _refused_now(why: str) -> bool:
    """Log that a reload is refused, and why, in one line; the running config stays."""
    log.error("reload refused: {why}; the running configuration stays", why=why)
    return False


def _refused(why: str) -> Deferred[bool]:
    return succeed(_refused_now(why))


def _failed_as(failure: Failure, listener: _Listener) -> Failure:
    """A new listener that cannot listen: the failure says which, and why, in one line."""
    return Failure(listener.failure(failure.value))


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
        self.logs: AccessLogs | None = None
        self.spawner: ProcessSpawner | None = None
        self.factories: dict[str, FrontendFactory] = {}
        self.ports: list[_Listener] = []
        self.metrics: ProxyMetrics | None = None
        self.counters: CounterTable | None = None if worker is None else worker.counters
        self.observer: ExchangeObserver | None = None
        self.admin: AdminListener | None = None
        self.heap = HeapTrimmer(reactor, glibc_malloc_trim())
        self.runstate: RuntimeState | None = None

    def privilegedStartService(self) -> None:
        """Open files and sockets, before twistd drops privileges; what cannot be opened
        raises :class:`StartError`, one line saying which and why."""
        log.info("{version}", version=version_line())
        if self.worker is not None:
            self.access_log = self.worker.access_log
        else:
            # With workers, they log; the supervisor opens the file for them (they may not can).
            self.logs = AccessLogs(
                self.config.path, self.config.settings.access_log, supervising=self.supervising
            )
            self.access_log = self.logs.log
        if self.supervising:
            members = sum(len(b.members) for b in self.config.balancers)
            members += sum(len(fe.rules) for fe in self.config.frontends)
            self.shared = SharedMemory.create(
                members=max(256, 4 * members), balancers=max(64, 4 * len(self.config.balancers))
            )
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
            self.metrics = ProxyMetrics(lambda: self.runtime, self.counters, lambda: self.runstate)
            self.observer = self.metrics
        elif self.counters is not None:
            column = self.counters.claim(os.getpid())
            if column is None:
                log.error("metrics: no free column; this worker's requests are not counted")
            self.observer = CountingObserver(self.counters, column)
        run_config = self.config
        if self.worker is None:
            # The runtime state (balancer-manager's changes) is kept by this process; with
            # workers = N the shared memory carries it to the workers.
            from ajpbalancer.runstate import open_runtime_state  # noqa: PLC0415

            self.runstate = open_runtime_state(
                self.reactor, self.config.settings, lambda: self.runtime, socket.gethostname()
            )
            run_config = self.runstate.configure(self.config)
        self.runtime = ProxyRuntime(
            self.reactor,
            run_config,
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
            self._open_admin()
        try:
            super().privilegedStartService()  # type: ignore[no-untyped-call]
        except Exception as e:  # a demo backend cannot listen
            raise self._demo_failure(e) from None
        for fe in self.config.frontends:
            factory = FrontendFactory(self.reactor, self.runtime.contexts[fe.name], self.heap)
            self.factories[fe.name] = factory
            for listen in fe.listen:
                endpoint = frontend_endpoint(self.reactor, listen.description, fe.tls)
                listener = _Listener(endpoint, factory, fe.name, listen)
                listener.passive = self.supervising
                if self.worker is not None:
                    listener.adopt(self.reactor, self.worker.listeners[fe.name, listen.description])
                    self.ports.append(listener)
                    continue
                failures: list[Failure] = []
                try:
                    listener.open().addErrback(failures.append)
                except Exception as e:  # an endpoint that fails before its Deferred
                    raise listener.failure(e) from None
                if failures:  # TCP, TLS and UNIX endpoints listen at once, or fail at once
                    raise listener.failure(failures[0].value)
                self.ports.append(listener)
        log.info(
            "ajpbalancer listening: {frontends}",
            frontends=", ".join(ln.description for fe in self.config.frontends for ln in fe.listen),
        )
        if self.supervising:
            assert self.shared is not None and self.logs is not None
            self.spawner = ProcessSpawner(
                self.reactor,
                self.config.path,
                shared_fd=self.shared.fd,
                counters=self.counters,
                access_log=self.logs.inherited,
                listeners=lambda: [
                    Inherited(p.fileno(), p.frontend, p.description) for p in self.ports
                ],
            )
            self.supervisor = Supervisor(self.reactor, self.spawner, self.config.settings.workers)

    def _open_admin(self) -> None:
        """Read ``admin_users`` and listen on ``admin``, or say which cannot be done."""
        from ajpbalancer.admin import AdminListener, AdminUsersError  # noqa: PLC0415

        settings = self.config.settings
        assert settings.admin is not None and self.metrics is not None
        try:
            self.admin = AdminListener.open(
                self.reactor, settings, lambda: self.runtime, self.metrics, self.runstate
            )
        except AdminUsersError as e:
            raise StartError(f"{self.config.path}: admin_users: {e}") from None
        except Exception as e:
            raise StartError(
                f"{settings.admin.where}: admin: cannot listen on "
                f"{settings.admin.description}: {reason(e)}"
            ) from None

    def _demo_failure(self, error: Exception) -> StartError:
        """Which demo backend could not listen, and why."""
        port = error.port if isinstance(error, CannotListenError) else None
        for backend in self.config.settings.demo:
            if backend.url.port == port:
                return StartError(
                    f"{backend.where}: demo: cannot listen on {backend.url}: {reason(error)}"
                )
        return StartError(f"{self.config.path}: demo: cannot start: {reason(error)}")

    def reload(self) -> Deferred[bool]:
        """Read the configuration again and take it over (see :mod:`._reload`)."""
        if self.loader is None or self.runtime is None:
            return succeed(False)
        try:
            config = self.loader()
        except ConfigError as e:
            for problem in e.problems:
                log.error("reload refused: {problem}", problem=str(problem))
            return _refused(f"{len(e.problems)} problem(s)")
        if self.worker is None:
            restart = needs_restart(self.config.settings, config.settings)
            for message in restart:
                log.error("reload refused: {path}: {message}", path=config.path, message=message)
            if restart:
                return _refused(f"{len(restart)} setting(s) need a restart")
        old_runtime = self.runtime
        wanted = {
            (fe.name, endpoint_spec(ln.description).address): ln
            for fe in config.frontends
            for ln in fe.listen
        }
        present = {(s.frontend, s.address): s for s in self.ports}
        if self.worker is not None and wanted.keys() != present.keys():
            # The supervisor replaces its workers when the listeners change.
            log.warn("reload: the listeners changed; the supervisor starts new workers")
            return succeed(False)
        switch: AccessLogSwitch | None = None
        if self.logs is not None:
            try:
                switch = self.logs.switch(config.settings.access_log)
            except StartError as e:
                return _refused(str(e))
        run_config = config
        if self.runstate is not None:
            run_config = self.runstate.configure(config, reload=True)
        runtime = ProxyRuntime(
            self.reactor,
            run_config,
            access_log=self.access_log if switch is None else switch.log,
            server_name=old_runtime.server_name,
            observer=self.observer,
            shared=self.shared,
            # With workers = N the supervisor configures the shared slots (with the
            # runtime values); a worker's reload only attaches to them.
            configure=self.worker is None,
            outbox=old_runtime.outbox,
        )
        carried = carry_over(old_runtime.members(), runtime.members())
        opened: list[_Listener] = []
        new_factories = {
            fe.name: self.factories.get(fe.name)
            or FrontendFactory(self.reactor, runtime.contexts[fe.name], self.heap)
            for fe in config.frontends
        }
        listening: list[Deferred[Any]] = []
        for key in sorted(wanted.keys() - present.keys(), key=lambda k: wanted[k].description):
            name = key[0]
            tls = runtime.contexts[name].frontend.tls
            endpoint = frontend_endpoint(self.reactor, wanted[key].description, tls)
            service = _Listener(endpoint, new_factories[name], name, wanted[key])
            service.passive = self.supervising
            opened.append(service)
            listening.append(service.open().addErrback(_failed_as, service))

        def opened_all(_: object) -> bool:
            for key, service in present.items():
                if key in wanted:
                    service.take(wanted[key])  # the same socket; its backlog may change
                else:
                    service.close()
                    self.ports.remove(service)
            self.ports.extend(opened)
            if self.admin is not None and config.settings.admin is not None:
                self.admin.reconfigure(config.settings)  # its backlog, admin_hosts
            for name, factory in new_factories.items():
                factory.context = runtime.contexts[name]
            if switch is not None:
                switch.commit()
                self.access_log = switch.log
                if self.spawner is not None:
                    self.spawner.access_log = switch.inherited
            self.factories = new_factories
            self.runtime = runtime
            self.config = config
            old_runtime.close()
            if self.running and self.worker is None:
                runtime.start_health_checks()
            self.reloads += 1
            if self.supervisor is not None:
                if wanted.keys() == present.keys() and switch is None:
                    self.supervisor.signal_all("HUP")  # each worker reloads as this one did
                else:
                    self.supervisor.replace_all()  # new workers inherit the new sockets/log
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
            for service in opened:
                service.close()
            if switch is not None:
                switch.rollback()
            runtime.close()
            if self.runstate is not None:
                self.runstate.config = self.config  # the running configuration stays
            return _refused_now(failure.getErrorMessage())

        d = gatherResults(listening, consumeErrors=True)
        return d.addCallbacks(opened_all, lambda f: not_opened(f.value.subFailure))

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        if self.runtime is not None and self.worker is None:
            self.runtime.start_health_checks()
        if self.runstate is not None:
            self.runstate.start()
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
        if self.runstate is not None:
            stopping.append(self.runstate.stop())
        d = super().stopService()  # type: ignore[no-untyped-call]
        if stopping:
            d = gatherResults([d, *stopping])
        if self.runtime is not None:
            self.runtime.close()
        if self.logs is not None:
            self.logs.close()
        elif self.access_log is not None:
            self.access_log.close()
        return d
