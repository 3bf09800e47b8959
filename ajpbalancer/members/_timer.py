"""An inactivity timer for a member connection, cheap on the hot path.

``touch()`` only records the time; the single delayed call checks, when it fires, whether
the connection really was silent for the whole timeout and otherwise re-arms itself. A
connection paused by backpressure (the client reads slowly) is not timed out.

``stop()`` does not cancel the delayed call either: a pooled connection serves request
after request, and scheduling and cancelling a call for each one is a measurable part of
a small request's cost. The call, when it fires on a stopped timer, just ends; the next
``start()`` schedules a new one if none is pending. ``cancel()`` really cancels (for a
connection that is going away).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class IdleTimer:
    def __init__(self, reactor: IReactorTime, timeout: float, expired: Callable[[], None]) -> None:
        self._reactor = reactor
        self.timeout = timeout
        self._expired = expired
        self._last = 0.0
        self._call: IDelayedCall | None = None
        self._running = False
        self.paused = False

    def touch(self) -> None:
        self._last = self._reactor.seconds()

    def start(self) -> None:
        self.touch()
        self._running = True
        if self._call is None:
            self._call = self._reactor.callLater(self.timeout, self._check)

    def stop(self) -> None:
        """No more timing out until the next ``start()`` (the pending call stays)."""
        self._running = False

    def cancel(self) -> None:
        """Stop and cancel the pending call: the connection is going away."""
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    @property
    def running(self) -> bool:
        return self._running

    def _check(self) -> None:
        self._call = None
        if not self._running:
            return
        idle = self._reactor.seconds() - self._last
        if self.paused or idle < self.timeout:
            wait = self.timeout if self.paused else self.timeout - idle
            self._call = self._reactor.callLater(wait, self._check)
            return
        self._expired()
