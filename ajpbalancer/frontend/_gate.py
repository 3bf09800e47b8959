"""``MaxConnections``: at most N client connections at once per frontend, per process.

When the count reaches the limit the gate stops reading the frontend's listening ports,
so further connections wait in the kernel's accept queue instead of being taken and
starved; when one ends, reading resumes. A connection accepted anyway in the same accept
burst (Twisted accepts several per readiness event) is closed at once.
"""

from __future__ import annotations

from typing import Any


class ConnectionGate:
    """Counts one frontend's client connections and pauses its listeners at the limit."""

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self.count = 0
        self._ports: list[Any] = []
        self._paused = False

    def add_port(self, port: Any) -> None:
        """A listening port (a ``FileDescriptor`` with ``stopReading``/``startReading``)."""
        self._ports.append(port)
        if self._paused:
            port.stopReading()

    def remove_port(self, port: Any) -> None:
        if port in self._ports:
            self._ports.remove(port)

    def admit(self) -> bool:
        """A connection was accepted: count it, or refuse it (False) when at the limit."""
        if self.limit and self.count >= self.limit:
            return False
        self.count += 1
        if self.limit and self.count >= self.limit and not self._paused:
            self._paused = True
            for port in self._ports:
                port.stopReading()
        return True

    def release(self) -> None:
        """An admitted connection ended."""
        self.count -= 1
        if self._paused and (not self.limit or self.count < self.limit):
            self._paused = False
            for port in self._ports:
                port.startReading()
