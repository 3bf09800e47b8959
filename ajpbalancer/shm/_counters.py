"""Request counters and latency histograms in memory every process can map: ``/metrics``
summed over the workers of ``workers = N``.

A :class:`CounterTable` is a file of *entries*, one per metric series (``("requests",
frontend, balancer, member, status_class)``, ``("latency", frontend)``,
``("member_latency", balancer, member)``, ``("failovers", balancer, member)``, and for
tunnels ``("tunnels", balancer, member)``, ``("tunnel_bytes", balancer, member)`` with
the bytes to the member and to the client in its first two numbers, and the gauge
``("open_tunnels", balancer, member)``), each with one *column* per process that counts.
A column is sixteen 8-byte numbers: a counter uses
the first; a histogram counts its observations per bucket (not cumulated) in the first
:data:`BUCKETS` and adds their sum (a double) in the last, so its count is the sum of its
buckets and the two can never disagree.

Every process writes only the column it claimed (:meth:`CounterTable.claim`), so the hot
path takes no lock: a dictionary lookup (cached per series) and one or two stores into
the mapping. The supervisor's scrape (:meth:`CounterTable.read`) adds the columns up. A
new series is appended under the file's lock (entries are never freed) and becomes
visible to readers when the header's count of entries moves past it, after it is written.

A worker that dies leaves its column as it was; the supervisor releases it
(:meth:`CounterTable.release`) before starting the replacement, which claims a free
column (that one, or another released one) and adds to it: the counts already served
are never lost and the sums never go down. Only a request in the dead worker's hands is
not counted (it was not answered). A gauge (:data:`GAUGES`: the tunnels a process has
open) is the exception: released with its column, it is set to 0, as the tunnels died
with the worker.

In a single process the table is private memory with one column; the code is the same.
"""

from __future__ import annotations

import json
import mmap
import os
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

from twisted.logger import Logger

from ajpbalancer.shm._balancer import SharedLock

log = Logger()

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    float("inf"),
)
"""Seconds; up to ``ProxyTimeout``'s default (300 s)."""

BUCKETS = len(LATENCY_BUCKETS)
NUMBERS = 16
COLUMN = NUMBERS * 8
SUM = NUMBERS - 1
"""Index of a histogram's sum (a double) in its column."""
KEY = 1024
"""Bytes of an entry's key area: its length (8 bytes), then the JSON key."""
MAGIC = 0x61_6A_70_62_63_6E_74_73  # "ajpbcnts"

# Header numbers.
_MAGIC, _ENTRIES, _COLUMNS, _USED = range(4)
_OWNERS = 8
"""Index of the first column's owner (a pid, 0 when free)."""

Key = tuple[str, ...]

GAUGES = frozenset({"open_tunnels"})
"""Kinds of series that count what a process holds now, not what it did: a released
column's are set to 0."""


def status_class(status: int) -> str:
    """``2xx`` for 200 …: the ``status_class`` label."""
    return f"{status // 100}xx"


class Cell:
    """One series' column in this process: ``q`` its numbers, ``d`` the same as doubles."""

    __slots__ = ("d", "q")

    def __init__(self, view: memoryview) -> None:
        self.q = view.cast("q")
        self.d = view.cast("d")

    def observe(self, seconds: float) -> None:
        self.q[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.d[SUM] += seconds


class CounterTable:
    """The mapped file (see the module docstring).

    :meth:`create` makes it: shared (a ``memfd`` the workers inherit, :meth:`attach`) or
    private (anonymous memory, one process).
    """

    def __init__(self, m: mmap.mmap, fd: int | None) -> None:
        self.fd = fd
        self._map = m
        self.lock: AbstractContextManager[None] = nullcontext() if fd is None else SharedLock(fd)
        self.view = memoryview(m)
        self._header = self.view[:64].cast("q")
        if self._header[_MAGIC] != MAGIC:
            raise ValueError("not an ajpbalancer counter file")
        self.entries = self._header[_ENTRIES]
        self.columns = self._header[_COLUMNS]
        self._base = header_size(self.columns)
        self._owners = self.view[: self._base].cast("q")
        self._entry = KEY + self.columns * COLUMN
        self._keys: list[Key] = []
        self._index: dict[Key, int] = {}
        self._full = False

    @classmethod
    def create(cls, entries: int, columns: int, *, shared: bool) -> CounterTable:
        """A new table for ``entries`` series and ``columns`` processes; ``shared``: in a
        ``memfd`` that children inherit, else in this process's memory."""
        size = header_size(columns) + entries * (KEY + columns * COLUMN)
        fd: int | None = None
        if shared:
            fd = os.memfd_create("ajpbalancer-counters", 0)
            os.ftruncate(fd, size)
            m = mmap.mmap(fd, size)
        else:
            m = mmap.mmap(-1, size)
        header = memoryview(m)[:64].cast("q")
        header[_ENTRIES], header[_COLUMNS] = entries, columns
        header[_MAGIC] = MAGIC
        header.release()
        return cls(m, fd)

    @classmethod
    def attach(cls, fd: int) -> CounterTable:
        """The table in the inherited descriptor ``fd``."""
        return cls(mmap.mmap(fd, os.fstat(fd).st_size), fd)

    # -- columns -------------------------------------------------------------------------

    def claim(self, pid: int) -> int | None:
        """A free column, now ``pid``'s; None if none is free."""
        with self.lock:
            for column in range(self.columns):
                if self._owners[_OWNERS + column] == 0:
                    self._owners[_OWNERS + column] = pid
                    return column
        return None

    def release(self, pid: int) -> None:
        """``pid`` exited: its column (and counts) are free for a replacement; its
        gauges are set to 0."""
        with self.lock:
            self._sync()
            for column in range(self.columns):
                if self._owners[_OWNERS + column] == pid:
                    self._owners[_OWNERS + column] = 0
                    for index, key in enumerate(self._keys):
                        if key[0] in GAUGES:
                            start = self._base + index * self._entry + KEY + column * COLUMN
                            self.view[start : start + COLUMN] = bytes(COLUMN)

    def owners(self) -> list[int]:
        return [self._owners[_OWNERS + c] for c in range(self.columns)]

    # -- entries -------------------------------------------------------------------------

    def _sync(self) -> None:
        """Learn the entries other processes appended since."""
        used = self._header[_USED]
        while len(self._keys) < used:
            index = len(self._keys)
            start = self._base + index * self._entry
            n = self.view[start : start + 8].cast("q")[0]
            key = tuple(json.loads(bytes(self.view[start + 8 : start + 8 + n])))
            self._keys.append(key)
            self._index[key] = index

    def _find(self, key: Key) -> int | None:
        """The entry of ``key``, appended if new; None if the table is full."""
        index = self._index.get(key)
        if index is not None:
            return index
        with self.lock:
            self._sync()
            index = self._index.get(key)
            if index is not None:
                return index
            data = json.dumps(key).encode("utf-8")
            used = self._header[_USED]
            if used >= self.entries or len(data) > KEY - 8:
                if not self._full:
                    self._full = True
                    log.error(
                        "metrics: no room for the series {key} (of {entries}); "
                        "it and later new ones are not counted",
                        key=key,
                        entries=self.entries,
                    )
                return None
            start = self._base + used * self._entry
            self.view[start + 8 : start + 8 + len(data)] = data
            self.view[start : start + 8].cast("q")[0] = len(data)
            self._header[_USED] = used + 1  # published after the key is written
            self._sync()
            return self._index[key]

    def cell(self, key: Key, column: int | None) -> Cell:
        """``key``'s numbers in ``column`` (private scratch if None or the table is full)."""
        index = self._find(key)
        if index is None or column is None:
            return Cell(memoryview(bytearray(COLUMN)))
        start = self._base + index * self._entry + KEY + column * COLUMN
        return Cell(self.view[start : start + COLUMN])

    def read(self) -> Iterator[tuple[Key, list[int], float]]:
        """Every series summed over the columns: its key, its numbers (counts) and the
        histogram sum (meaningless for a counter)."""
        self._sync()
        for index, key in enumerate(self._keys):
            start = self._base + index * self._entry + KEY
            counts = [0] * NUMBERS
            total = 0.0
            for column in range(self.columns):
                cell = Cell(self.view[start + column * COLUMN : start + (column + 1) * COLUMN])
                for i in range(SUM):
                    counts[i] += cell.q[i]
                total += cell.d[SUM]
            yield key, counts, total


def header_size(columns: int) -> int:
    return 64 + 8 * columns


class CountingObserver:
    """The exchanges' observer (:class:`~ajpbalancer.proxy._observer.ExchangeObserver`)
    writing into one column of a :class:`CounterTable`."""

    def __init__(self, table: CounterTable, column: int | None) -> None:
        self.table = table
        self.column = column
        # Cells by label values: one dict lookup per request.
        self._requests: dict[tuple[str, str, str, str], Cell] = {}
        self._latency: dict[str, Cell] = {}
        self._member_latency: dict[tuple[str, str], Cell] = {}
        self._failovers: dict[tuple[str, str], Cell] = {}
        self._tunnels: dict[tuple[str, str], TunnelCells] = {}

    def request_done(
        self,
        frontend: str,
        balancer: str | None,
        member: str | None,
        *,
        status: int,
        seconds: float,
        member_seconds: float | None,
    ) -> None:
        key = (frontend, balancer or "", member or "", status_class(status))
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.table.cell(("requests", *key), self.column)
        counter.q[0] += 1
        histogram = self._latency.get(frontend)
        if histogram is None:
            histogram = self._latency[frontend] = self.table.cell(
                ("latency", frontend), self.column
            )
        histogram.observe(seconds)
        if member is not None and member_seconds is not None:
            mkey = (balancer or "", member)
            member_histogram = self._member_latency.get(mkey)
            if member_histogram is None:
                member_histogram = self._member_latency[mkey] = self.table.cell(
                    ("member_latency", *mkey), self.column
                )
            member_histogram.observe(member_seconds)

    def failover(self, balancer: str, member: str) -> None:
        key = (balancer, member)
        cell = self._failovers.get(key)
        if cell is None:
            cell = self._failovers[key] = self.table.cell(("failovers", *key), self.column)
        cell.q[0] += 1

    def tunnel_opened(self, balancer: str | None, member: str) -> TunnelCells:
        """A tunnel opened: counted, held open, and its bytes counted by the cells
        returned (a :class:`~ajpbalancer.proxy.TunnelMeter`)."""
        key = (balancer or "", member)
        cells = self._tunnels.get(key)
        if cells is None:
            table, column = self.table, self.column
            cells = self._tunnels[key] = TunnelCells(
                table.cell(("tunnels", *key), column),
                table.cell(("open_tunnels", *key), column),
                table.cell(("tunnel_bytes", *key), column),
            )
        cells.opened.q[0] += 1
        cells.open.q[0] += 1
        return cells


class TunnelCells:
    """A member's tunnel series in one column: opened, open now, bytes each way.

    Shared by the member's tunnels: :meth:`traffic` adds, :meth:`closed` releases one."""

    __slots__ = ("bytes", "open", "opened")

    def __init__(self, opened: Cell, open_now: Cell, traffic: Cell) -> None:
        self.opened = opened
        self.open = open_now
        self.bytes = traffic

    def traffic(self, to_member: int, to_client: int) -> None:
        q = self.bytes.q
        if to_member:
            q[0] += to_member
        if to_client:
            q[1] += to_client

    def closed(self) -> None:
        self.open.q[0] -= 1
