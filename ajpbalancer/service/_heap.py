"""Give memory back to the operating system after many client connections closed.

Each connection's reads are 64 KiB buffers from the C allocator's heap; glibc keeps what
is freed there for reuse, so after a crowd of connections (pipelining clients held at
the read-ahead bound, say) closes, the process's RSS stays at its peak although the
memory is free. :class:`HeapTrimmer` counts open client connections and every few
seconds, when their number fell to half of its peak since the last trim (and by a good
number), asks glibc to return the free heap (``malloc_trim``). That costs a few
milliseconds on a large heap, so it happens only after such a drop, at most once per
interval. Where there is no glibc, nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

INTERVAL = 5.0
"""Seconds between two looks at the connection count."""
MIN_DROP = 64
"""Connections that must have closed since the peak before the heap is trimmed."""


def glibc_malloc_trim() -> Callable[[], None] | None:
    """``malloc_trim(0)`` of the C library, if it has one (glibc), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def malloc_trim() -> None:
        trim(0)

    return malloc_trim


class HeapTrimmer:
    """Trims the heap after the open connections dropped (see the module docstring).

    The client side tells it of every connection that opens and closes, so that the peak
    is seen however briefly a crowd stays; the periodic look compares with it."""

    def __init__(
        self,
        reactor: IReactorTime,
        trim: Callable[[], None] | None,
        *,
        interval: float = INTERVAL,
        min_drop: int = MIN_DROP,
    ) -> None:
        self._reactor = reactor
        self._trim = trim
        self._interval = interval
        self._min_drop = min_drop
        self._open = 0
        self._peak = 0
        self._call: IDelayedCall | None = None
        self.trims = 0
        """How many times the heap was trimmed."""

    def opened(self) -> None:
        """A client connection opened."""
        self._open += 1
        self._peak = max(self._peak, self._open)

    def closed(self) -> None:
        """A client connection closed."""
        self._open -= 1

    def start(self) -> None:
        if self._trim is not None and self._call is None:
            self._call = self._reactor.callLater(self._interval, self._look)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _look(self) -> None:
        self._call = self._reactor.callLater(self._interval, self._look)
        now = self._open
        if self._peak - now >= self._min_drop and now <= self._peak // 2:
            assert self._trim is not None
            self._trim()
            self.trims += 1
            self._peak = now
