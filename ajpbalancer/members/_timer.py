"""An inactivity timer for a member connection, cheap on the hot path.

``touch()`` only records the time; the single delayed call checks, when it fires, whether
the connection really was silent for the whole timeout and otherwise re-arms itself. A
connection paused by backpressure (the client reads slowly) is not timed out.
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
        self.paused = False

    def touch(self) -> None:
        self._last = self._reactor.seconds()

    def start(self) -> None:
        self.touch()
        if self._call is None or not self._call.active():
            self._call = self._reactor.callLater(self.timeout, self._check)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _check(self) -> None:
        self._call = None
        idle = self._reactor.seconds() - self._last
        if self.paused or idle < self.timeout:
            wait = self.timeout if self.paused else self.timeout - idle
            self._call = self._reactor.callLater(wait, self._check)
            return
        self._expired()
