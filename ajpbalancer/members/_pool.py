"""A per-member pool of keep-alive connections: ``max``, ``ttl`` and ``disablereuse``.

``acquire`` hands out the most recently used idle connection (LIFO keeps few sockets
warm) or opens a new one; beyond ``max`` open connections callers wait in order, for at
most the connection timeout. Idle connections older than ``ttl`` are closed. Every
outcome arrives through the callbacks given to ``acquire``; an idle connection is handed
out synchronously, with no Deferred on the hot path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from ajpbalancer.members._errors import FailureKind, MemberError
from ajpbalancer.members._sink import MemberConnection

Ready = Callable[[MemberConnection, bool], None]
Failed = Callable[[MemberError], None]


@dataclass(slots=True)
class _Waiter:
    ready: Callable[[MemberConnection, bool], None]
    failed: Failed
    timer: IDelayedCall | None = None
    done: bool = False


class Pool:
    """Connections to one member (see the module docstring)."""

    def __init__(
        self,
        reactor: IReactorTime,
        connect: Callable[[], Deferred[MemberConnection]],
        *,
        max_connections: int | None,
        ttl: float | None,
        disablereuse: bool,
        connect_timeout: float,
    ) -> None:
        self._reactor = reactor
        self._connect = connect
        self.max = max_connections
        self.ttl = ttl
        self.disablereuse = disablereuse
        self.connect_timeout = connect_timeout
        self.idle: list[MemberConnection] = []
        self.open = 0
        self.connecting = 0
        self._waiters: deque[_Waiter] = deque()
        self._reaper: IDelayedCall | None = None
        self._closed = False

    # -- handing out ------------------------------------------------------------------

    def acquire(self, ready: Ready, failed: Failed, *, fresh: bool = False) -> Callable[[], None]:
        """Get a connection: ``ready(conn, reused)`` or ``failed(error)``; returns a canceller."""
        if not fresh:
            conn = self._take_idle()
            if conn is not None:
                ready(conn, True)
                return _noop
        if self.max is None or self.open + self.connecting < self.max:
            return self._open(ready, failed)
        waiter: _Waiter = _Waiter(ready, failed)
        waiter.timer = self._reactor.callLater(self.connect_timeout, self._waiter_timeout, waiter)
        self._waiters.append(waiter)

        def cancel() -> None:
            if not waiter.done:
                waiter.done = True
                if waiter.timer is not None and waiter.timer.active():
                    waiter.timer.cancel()
                self._waiters.remove(waiter)

        return cancel

    def release(self, conn: MemberConnection, reusable: bool) -> None:
        """A connection finished its request; keep it when it may be reused."""
        if reusable and not self.disablereuse and not self._closed and not conn.closed:
            waiter = self._next_waiter()
            if waiter is not None:
                waiter.ready(conn, True)
                return
            conn.idle_since = self._reactor.seconds()
            self.idle.append(conn)
            self._schedule_reaper()
            return
        conn.close()

    def lost(self, conn: MemberConnection) -> None:
        """A connection closed (either side); forget it and serve a waiter if any."""
        if conn in self.idle:
            self.idle.remove(conn)
        self.open -= 1
        if self._waiters and not self._closed:
            waiter = self._next_waiter()
            if waiter is not None:
                self._open(waiter.ready, waiter.failed)

    def close(self) -> None:
        """Close every idle connection and refuse to keep new ones (reload, shutdown)."""
        self._closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()
        if self._reaper is not None and self._reaper.active():
            self._reaper.cancel()

    # -- internals ----------------------------------------------------------------------

    def _take_idle(self) -> MemberConnection | None:
        ttl = self.ttl
        now = self._reactor.seconds() if ttl is not None else 0.0
        while self.idle:
            conn = self.idle.pop()
            if conn.closed:
                continue
            if ttl is not None and now - conn.idle_since > ttl:
                conn.close()
                continue
            return conn
        return None

    def _open(self, ready: Ready, failed: Failed) -> Callable[[], None]:
        self.connecting += 1
        d = self._connect()
        state = {"settled": False}

        def connected(conn: MemberConnection) -> None:
            state["settled"] = True
            self.connecting -= 1
            self.open += 1
            ready(conn, False)

        def not_connected(reason: Failure) -> None:
            state["settled"] = True
            self.connecting -= 1
            if reason.check(ConnectingCancelledError) is not None:
                return
            if reason.check(ConnectTimeoutError) is not None:
                error = MemberError(FailureKind.CONNECT_TIMEOUT, "connection to member timed out")
            else:
                error = MemberError(
                    FailureKind.REFUSED, f"cannot connect to member: {reason.getErrorMessage()}"
                )
            failed(error)

        d.addCallbacks(connected, not_connected)

        def cancel() -> None:
            if not state["settled"]:
                d.cancel()

        return cancel

    def _next_waiter(self) -> _Waiter | None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done:
                continue
            waiter.done = True
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()
            return waiter
        return None

    def _waiter_timeout(self, waiter: _Waiter) -> None:
        if waiter.done:
            return
        waiter.done = True
        waiter.timer = None
        self._waiters.remove(waiter)
        waiter.failed(
            MemberError(FailureKind.REFUSED, f"no free connection to member (max={self.max})")
        )

    def _schedule_reaper(self) -> None:
        if self.ttl is None or (self._reaper is not None and self._reaper.active()):
            return
        self._reaper = self._reactor.callLater(self.ttl, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        now = self._reactor.seconds()
        assert self.ttl is not None
        keep: list[MemberConnection] = []
        for conn in self.idle:
            if now - conn.idle_since > self.ttl or conn.closed:
                conn.close()
            else:
                keep.append(conn)
        self.idle = keep
        if keep:
            self._schedule_reaper()


def _noop() -> None:
    return None
