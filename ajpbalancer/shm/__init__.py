"""State shared between worker processes in shared memory: balancer slots and counters.

With ``workers = N`` the supervisor and its workers map the same files: the balancer
state (:class:`SharedMemory`, httpd's slotmem_shm) and the request counters behind
``/metrics`` (:class:`CounterTable`). In a single process the same classes work on
private memory.
"""

from __future__ import annotations

from ajpbalancer.shm._balancer import (
    SharedBalancer,
    SharedLock,
    SharedMemberState,
    SharedMemory,
    SlotError,
)
from ajpbalancer.shm._counters import (
    LATENCY_BUCKETS,
    CounterTable,
    CountingObserver,
    TunnelCells,
)

__all__ = [
    "LATENCY_BUCKETS",
    "CounterTable",
    "CountingObserver",
    "SharedBalancer",
    "SharedLock",
    "SharedMemberState",
    "SharedMemory",
    "SlotError",
    "TunnelCells",
]
