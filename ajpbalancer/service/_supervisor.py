"""Keep ``workers = N`` worker processes running: spawn, restart with backoff, signal, stop.

The :class:`Supervisor` knows nothing of sockets or configs: it calls an injected
*spawner* that starts one worker and reports its exit, and an injected clock for the
restart delays, so its policy is tested without processes. :class:`ProcessSpawner` is the
real spawner: ``python -m ajpbalancer.worker`` with the listening sockets, the shared
state and the access log inherited as file descriptors.

Policy: a worker that exits while the supervisor is running is restarted (and logged).
One that ran at least ``min_uptime`` seconds is restarted at once; one that died sooner
is restarted after a delay that doubles with each such quick death in a row (from
``backoff`` up to ``max_backoff``), so a worker that cannot start does not spin.
:meth:`Supervisor.stop` sends ``SIGTERM`` to all (each finishes its requests in flight
and exits), ``SIGKILL`` to those still running after ``kill_after`` seconds, and fires
when all have exited.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ajpbalancer.shm import CounterTable

log = Logger()


class WorkerProcess(Protocol):
    """What the supervisor needs of a started worker (``IProcessTransport`` has it)."""

    @property
    def pid(self) -> int | None: ...

    def signalProcess(self, signalID: str | int) -> None: ...


Spawner = Callable[[Callable[[int | None], None]], WorkerProcess]
"""Starts one worker; the callback gets its exit code (None: killed by a signal)."""


@dataclass
class _Slot:
    index: int
    process: WorkerProcess | None = None
    pid: int | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart: IDelayedCall | None = None
    replacing: bool = False


@dataclass
class Supervisor:
    """Runs ``count`` workers through ``spawn`` (see the module docstring)."""

    clock: IReactorTime
    spawn: Spawner
    count: int
    min_uptime: float = 1.0
    backoff: float = 0.5
    max_backoff: float = 30.0
    kill_after: float = 15.0
    slots: list[_Slot] = field(default_factory=list)
    stopping: bool = False
    restarts: int = 0
    _stopped: list[Deferred[None]] = field(default_factory=list)

    def start(self) -> None:
        self.slots = [_Slot(i) for i in range(self.count)]
        for slot in self.slots:
            self._start(slot)

    def pids(self) -> list[int]:
        return [s.pid for s in self.slots if s.pid is not None]

    def _start(self, slot: _Slot) -> None:
        slot.restart = None
        if self.stopping:
            return
        slot.started = self.clock.seconds()
        process: WorkerProcess | None = None

        def exited(code: int | None) -> None:
            if slot.process is process:
                self._exited(slot, code)

        try:
            process = self.spawn(exited)
        except OSError as e:
            # Cannot even start one (say the interpreter is not the dropped user's to
            # run): say so and try again with backoff, as for a worker that died at once.
            slot.quick_deaths += 1
            delay = min(self.backoff * 2 ** (slot.quick_deaths - 1), self.max_backoff)
            log.error(
                "worker {index} cannot start: {error}; trying again in {delay:g}s",
                index=slot.index,
                error=e,
                delay=delay,
            )
            slot.restart = self.clock.callLater(delay, self._start, slot)
            return
        slot.process, slot.pid = process, process.pid
        log.info("worker {index} started: pid {pid}", index=slot.index, pid=process.pid)

    def _exited(self, slot: _Slot, code: int | None) -> None:
        pid, slot.process, slot.pid = slot.pid, None, None
        if self.stopping:
            log.info("worker {index} (pid {pid}) stopped", index=slot.index, pid=pid)
            if all(s.process is None for s in self.slots):
                waiting, self._stopped = self._stopped, []
                for d in waiting:
                    d.callback(None)
            return
        uptime = self.clock.seconds() - slot.started
        if slot.replacing:
            slot.replacing = False
            delay = 0.0
        elif uptime >= self.min_uptime:
            slot.quick_deaths = 0
            delay = 0.0
        else:
            slot.quick_deaths += 1
            delay = min(self.backoff * 2 ** (slot.quick_deaths - 1), self.max_backoff)
        how = "was killed by a signal" if code is None else f"exited with code {code}"
        log.warn(
            "worker {index} (pid {pid}) {how} after {uptime:.1f}s; restarting in {delay:g}s",
            index=slot.index,
            pid=pid,
            how=how,
            uptime=uptime,
            delay=delay,
        )
        self.restarts += 1
        slot.restart = self.clock.callLater(delay, self._start, slot)

    def signal_all(self, signame: str) -> None:
        """Send ``signame`` (``"HUP"``, ``"TERM"``…) to every running worker."""
        for slot in self.slots:
            if slot.process is not None:
                slot.process.signalProcess(signame)

    def replace_all(self) -> None:
        """Replace every worker (a reload changed the listeners): each is told to stop
        gracefully and is restarted, with the new sockets, as soon as it has exited."""
        for slot in self.slots:
            if slot.process is not None:
                slot.replacing = True
                slot.process.signalProcess("TERM")

    def stop(self) -> Deferred[None]:
        """``SIGTERM`` to every worker; fires once all have exited (``SIGKILL`` after
        ``kill_after`` seconds for those still running)."""
        self.stopping = True
        for slot in self.slots:
            if slot.restart is not None and slot.restart.active():
                slot.restart.cancel()
            slot.restart = None
        if all(s.process is None for s in self.slots):
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._stopped.append(d)
        self.signal_all("TERM")
        kill = self.clock.callLater(self.kill_after, self.signal_all, "KILL")

        def done(result: None) -> None:
            if kill.active():
                kill.cancel()

        d.addCallback(done)
        return d


@dataclass(frozen=True)
class Inherited:
    """A listening socket handed to the workers: its descriptor and its ``listen`` line."""

    fd: int
    frontend: str
    description: str


class _WorkerProtocol(ProcessProtocol):
    """Relays a worker's log lines (its stderr) and reports its exit."""

    def __init__(self, on_exit: Callable[[int | None], None]) -> None:
        self.on_exit = on_exit
        self._buf = b""

    def errReceived(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        pid = None if self.transport is None else self.transport.pid
        for line in lines:
            if line:
                log.info("[worker {pid}] {line}", pid=pid, line=line.decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        if getattr(reason.value, "signal", None) is not None:
            code = None
        self.on_exit(code)


class ProcessSpawner:
    """Starts ``python -m ajpbalancer.worker`` with the inherited descriptors.

    ``listeners`` is called at each spawn, so a worker started after a reload gets the
    sockets of the configuration then running.
    """

    def __init__(
        self,
        reactor: Any,
        config_path: str,
        *,
        shared_fd: int,
        access_log: str | int,
        listeners: Callable[[], Sequence[Inherited]],
        env: Mapping[str, str] | None = None,
        counters: CounterTable | None = None,
    ) -> None:
        """``counters``: the request counters the workers write, one column each; the
        column of a worker that exited is released before its replacement starts."""
        self.counters = counters
        self.reactor = reactor
        self.config_path = config_path
        self.shared_fd = shared_fd
        self.access_log = access_log
        self.listeners = listeners
        self.env = env

    def __call__(self, on_exit: Callable[[int | None], None]) -> WorkerProcess:
        listeners = self.listeners()
        child_fds: dict[int, int | str] = {0: "w", 1: 1, 2: "r", self.shared_fd: self.shared_fd}
        for item in listeners:
            child_fds[item.fd] = item.fd
        if isinstance(self.access_log, int):
            child_fds[self.access_log] = self.access_log
        counters = self.counters
        if counters is not None and counters.fd is not None:
            child_fds[counters.fd] = counters.fd
        args = [
            sys.executable,
            "-m",
            "ajpbalancer.worker",
            "--config",
            self.config_path,
            "--shared-fd",
            str(self.shared_fd),
            "--access-log",
            str(self.access_log),
            "--listeners",
            json.dumps([[i.fd, i.frontend, i.description] for i in listeners]),
        ]
        if counters is not None and counters.fd is not None:
            args += ["--counters-fd", str(counters.fd)]
        env = dict(os.environ if self.env is None else self.env)
        started: list[int | None] = []

        def exited(code: int | None) -> None:
            if counters is not None and started and started[0] is not None:
                counters.release(started[0])  # before the supervisor starts a replacement
            on_exit(code)

        process: WorkerProcess = self.reactor.spawnProcess(
            _WorkerProtocol(exited), sys.executable, args, env=env, childFDs=child_fds
        )
        started.append(process.pid)
        return process
