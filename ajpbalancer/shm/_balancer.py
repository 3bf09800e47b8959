"""Balancer state in shared memory, the counterpart of httpd's slotmem_shm.

With ``workers = N`` every process (the supervisor and its workers) maps the same file:
one fixed-size *slot* per member and one per balancer. A :class:`SharedMemberState` is
a :class:`MemberState` whose fields live in its slot, so the finder, the sticky code, the
exchange, the health checks and balancer-manager work on it unchanged and every process
sees every other's writes at once.

Layout (native byte order; all processes run the same build): a header of
:data:`HEADER` bytes, then ``members`` member slots, then ``balancers`` balancer slots,
each :data:`SLOT` bytes. A slot starts with sixteen 8-byte numbers (``q``, or ``d`` for
the times) and holds fixed-size strings after them (a length, ``-1`` for None, then the
UTF-8 bytes). A slot is found by its key (the balancer's name and the member's URL); the
first process to ask for a key claims a free slot and fills it from the configuration.
Slots are never freed while the supervisor runs: a member removed by a reload keeps its
slot (its in-flight requests still count on it) and a member added later resumes it.

Every read-modify-write holds :class:`SharedLock`: a POSIX record lock (``lockf``) on
the file, per process and reentrant here, so one balancing decision
(:func:`~ajpbalancer.balancer.select_member` in its entirety) and each counter update is
atomic across processes. POSIX record locks belong to the process, so processes that
inherited the same descriptor still exclude one another; the kernel drops a dead
process's lock.

Each lock/unlock pair is two system calls (and a sleep when another process holds it),
so the request path takes it as seldom as it can: once to choose the member and count it
busy, once when the request is done. Traffic (``transferred``, ``read``), which the
exchange adds for every piece of body, is accumulated in this process (per slot) and
added to the slot in the critical sections the request takes anyway: when a request of
the member is done, when a balancer's selection runs, and, for a long transfer, at most
every :data:`TRAFFIC_PUBLISH_SECONDS` on its own. Other processes (balancer-manager,
``/metrics``, ``bytraffic`` in another worker) therefore see a worker's bytes at the end
of each request, or within that interval while one streams. Flags are read without the
lock (an aligned 8-byte load).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType

from ajpbalancer.balancer._lbmethods import LBMETHODS, lbfactor
from ajpbalancer.balancer._state import NOT_USABLE, MemberState, Status, status_from_letters
from ajpbalancer.config import BalancerParams, MemberParams

MAGIC = 0x61_6A_70_62_73_6C_6F_74  # "ajpbslot"
HEADER = 64
SLOT = 1024
NUMBERS = 128  # sixteen 8-byte numbers at the start of a slot

# Member slot: indexes of the numbers.
_USED, _LBFACTOR, _LBSTATUS, _ELECTED, _BUSY, _TRANSFERRED, _READ = range(7)
_STATUS, _RETRIES, _ERRORS, _LBSET, _ERROR_TIME, _RETRY = range(7, 13)
_KEY_LEN, _ROUTE_LEN, _REDIRECT_LEN = range(13, 16)
# Member slot: string areas (offset, size).
_KEY = (NUMBERS, 384)
_ROUTE = (512, 256)
_REDIRECT = (768, 256)

# Balancer slot.
_B_USED, _B_GENERATION, _B_LBMETHOD, _B_NOFAILOVER, _B_MAXATTEMPTS = range(5)
_B_MAX_ATTEMPTS, _B_TIMEOUT, _B_KEY_LEN, _B_STICKY_LEN, _B_NONCE_LEN = range(5, 10)
_B_KEY = (NUMBERS, 256)
_B_STICKY = (384, 512)
_B_NONCE = (896, 128)

LBMETHOD_NAMES: tuple[str, ...] = tuple(sorted(LBMETHODS))
"""lbmethods by the index a balancer slot stores."""

TRAFFIC_PUBLISH_SECONDS = 1.0
"""Longest a process keeps a member's traffic to itself while no request of the member
ends (a long transfer): balancer-manager's To/From stay live within this."""

_NOT_USABLE = NOT_USABLE.value


class SlotError(Exception):
    """A value does not fit its slot, or no slot is free."""


class SharedLock:
    """A reentrant cross-process lock: ``lockf`` on the shared file, taken at depth 0."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._depth = 0

    @property
    def held(self) -> bool:
        return self._depth > 0

    def __enter__(self) -> None:
        if self._depth == 0:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        self._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)


class _Slot:
    """Typed access to one slot's numbers and strings, and this process's traffic for it
    not yet added to the slot (``sent``, ``received``; see the module docstring).

    One instance per slot and process (:meth:`SharedMemory._slot`), so every
    :class:`SharedMemberState` of a member (a reload makes a new one while requests of the
    old one are in flight) adds to the same pending traffic and publishing it once counts
    it once.
    """

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.q = view[:NUMBERS].cast("q")
        self.d = view[:NUMBERS].cast("d")
        self.sent = 0
        self.received = 0
        self.published = 0.0  # clock() of the last publishing by add_traffic

    def publish(self) -> None:
        """Add the pending traffic to the slot (lock held)."""
        q = self.q
        q[_TRANSFERRED] += self.sent
        q[_READ] += self.received
        self.sent = self.received = 0

    def get_str(self, length_index: int, area: tuple[int, int]) -> str | None:
        n = self.q[length_index]
        if n < 0:
            return None
        start = area[0]
        return bytes(self.view[start : start + n]).decode("utf-8")

    def set_str(self, length_index: int, area: tuple[int, int], value: str | None) -> None:
        if value is None:
            self.q[length_index] = -1
            return
        data = value.encode("utf-8")
        start, size = area
        if len(data) > size:
            raise SlotError(f"{value[:40]!r}… is longer than {size} bytes")
        self.view[start : start + len(data)] = data
        self.q[length_index] = len(data)


class SharedMemory:
    """The mapped file: its header, its slots and its lock.

    :meth:`create` makes a new anonymous file (``memfd``, else an unlinked file in
    ``/dev/shm``) sized for ``members`` and ``balancers`` slots; :meth:`attach` maps one
    inherited by descriptor. Each process attaches once and uses one instance.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, size)
        self.view = memoryview(self._map)
        header = self.view[:HEADER].cast("q")
        if header[0] != MAGIC:
            raise SlotError("not an ajpbalancer shared state file")
        self.members = header[1]
        self.balancers = header[2]
        self.lock = SharedLock(fd)
        self._slots: dict[int, _Slot] = {}

    @classmethod
    def create(cls, members: int, balancers: int) -> SharedMemory:
        size = HEADER + (members + balancers) * SLOT
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("ajpbalancer-slotmem", 0)
        else:  # pragma: no cover - Linux has memfd_create
            with tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as f:
                fd = os.dup(f.fileno())
        os.ftruncate(fd, size)
        with mmap.mmap(fd, HEADER) as m:
            header = memoryview(m).cast("q")
            header[1], header[2] = members, balancers
            header[0] = MAGIC
            header.release()
        return cls(fd)

    @classmethod
    def attach(cls, fd: int) -> SharedMemory:
        return cls(fd)

    def _slot(self, index: int) -> _Slot:
        slot = self._slots.get(index)
        if slot is None:
            start = HEADER + index * SLOT
            slot = self._slots[index] = _Slot(self.view[start : start + SLOT])
        return slot

    def _find(self, first: int, count: int, key: str, used: int, key_len: int) -> _Slot:
        """The slot holding ``key``, else a free one claimed for it (lock held)."""
        free: _Slot | None = None
        area = _KEY if key_len == _KEY_LEN else _B_KEY
        for index in range(first, first + count):
            slot = self._slot(index)
            if slot.q[used]:
                if slot.get_str(key_len, area) == key:
                    return slot
            elif free is None:
                free = slot
        if free is None:
            raise SlotError(f"no free slot for {key} (all {count} taken)")
        free.view[:] = bytes(SLOT)
        free.set_str(key_len, area, key)
        return free

    def member(self, key: str, name: str, params: MemberParams, *, configure: bool) -> MemberState:
        """The shared state of the member ``key``; a new slot is filled from ``params``.

        With ``configure`` (a reload), an existing slot takes the configured fields
        (loadfactor, route, redirect, lbset, retry, status flags other than the error and
        health-check flags the proxy sets itself), as a reload does in one process.
        """
        with self.lock:
            slot = self._find(0, self.members, key, _USED, _KEY_LEN)
            state = SharedMemberState(slot, self.lock, name)
            if not slot.q[_USED]:
                state.lbfactor = lbfactor(params.loadfactor)
                state.status = status_from_letters(params.status)
                state.route = params.route
                state.redirect = params.redirect
                state.lbset = params.lbset
                state.retry = params.retry
                slot.q[_USED] = 1
            elif configure:
                runtime = Status.IN_ERROR | Status.HC_FAIL
                state.lbfactor = lbfactor(params.loadfactor)
                state.status = status_from_letters(params.status) & ~runtime | (
                    state.status & runtime
                )
                state.route = params.route
                state.redirect = params.redirect
                state.lbset = params.lbset
                state.retry = params.retry
            return state

    def balancer(
        self, name: str, params: BalancerParams, max_attempts: int, nonce: str, *, configure: bool
    ) -> SharedBalancer:
        """The shared runtime parameters of balancer ``name`` (see :class:`SharedBalancer`)."""
        with self.lock:
            slot = self._find(self.members, self.balancers, name, _B_USED, _B_KEY_LEN)
            shared = SharedBalancer(slot, self.lock, params)
            if not slot.q[_B_USED]:
                slot.set_str(_B_NONCE_LEN, _B_NONCE, nonce)
                shared.store(params, max_attempts)
                slot.q[_B_USED] = 1
            elif configure:
                shared.store(params, max_attempts)
            return shared


def _number(index: int, doc: str) -> property:
    def get(self: SharedMemberState) -> int:
        return self._slot.q[index]

    def put(self: SharedMemberState, value: int) -> None:
        self._slot.q[index] = value

    return property(get, put, doc=doc)


def _time(index: int, doc: str) -> property:
    def get(self: SharedMemberState) -> float:
        return self._slot.d[index]

    def put(self: SharedMemberState, value: float) -> None:
        self._slot.d[index] = value

    return property(get, put, doc=doc)


def _string(length_index: int, area: tuple[int, int], doc: str) -> property:
    def get(self: SharedMemberState) -> str | None:
        return self._slot.get_str(length_index, area)

    def put(self: SharedMemberState, value: str | None) -> None:
        self._slot.set_str(length_index, area, value)

    return property(get, put, doc=doc)


def _status_get(self: SharedMemberState) -> Status:
    return Status(self._slot.q[_STATUS])


def _status_put(self: SharedMemberState, value: Status) -> None:
    self._slot.q[_STATUS] = int(value)


class SharedMemberState(MemberState):
    """A :class:`MemberState` whose fields are its slot in :class:`SharedMemory`.

    Each read-modify-write method holds the shared lock; code that does several
    (``select_member``) holds it around all of them. :meth:`add_traffic` takes no lock:
    the bytes wait in this process until :meth:`request_done`, :meth:`request_started`
    or :meth:`publish_traffic` (a selection) hold it anyway, or for
    :data:`TRAFFIC_PUBLISH_SECONDS` at most. ``transferred`` and ``read`` are the slot's:
    the traffic every process has published.
    """

    clock: Callable[[], float] = time.monotonic
    """The clock :meth:`add_traffic` times its publishing by (replaceable in tests)."""

    lbfactor = _number(_LBFACTOR, "loadfactor in hundredths")
    lbstatus = _number(_LBSTATUS, "byrequests' running score")
    elected = _number(_ELECTED, "times chosen")
    busy = _number(_BUSY, "requests in flight")
    transferred = _number(_TRANSFERRED, "bytes sent to the member")
    read = _number(_READ, "bytes received from the member")
    status = property(_status_get, _status_put, doc="flags")
    retries = _number(_RETRIES, "error flag cleared")
    errors = _number(_ERRORS, "times put in error")
    lbset = _number(_LBSET, "lbset")
    error_time = _time(_ERROR_TIME, "when put in error")
    retry = _time(_RETRY, "seconds before a retry")
    route = _string(_ROUTE_LEN, _ROUTE, "route")
    redirect = _string(_REDIRECT_LEN, _REDIRECT, "redirect")

    def __init__(self, slot: _Slot, lock: SharedLock, name: str) -> None:
        # The dataclass __init__ would write every field into the slot: not called.
        self._slot = slot
        self.lock = lock
        self.name = name

    def __repr__(self) -> str:
        return f"SharedMemberState({self.name!r}, lbstatus={self.lbstatus}, {self.letters!r})"

    def set_status(self, flag: Status, on: bool) -> None:
        with self.lock:
            super().set_status(flag, on)

    def retry_member(self, now: float) -> bool:
        with self.lock:
            return super().retry_member(now)

    def put_in_error(self, now: float) -> bool:
        with self.lock:
            return super().put_in_error(now)

    @property
    def usable(self) -> bool:
        # As MemberState's, on the int: no Status built per look (the finder looks often).
        return not self._slot.q[_STATUS] & _NOT_USABLE

    def has(self, flag: Status) -> bool:
        return bool(self._slot.q[_STATUS] & flag.value)

    def request_done(self) -> None:
        with self.lock:
            super().request_done()
            self.publish_traffic()

    def request_refused(self) -> None:
        with self.lock:
            super().request_refused()

    def request_started(self) -> None:
        with self.lock:
            super().request_started()
            self.publish_traffic()

    def add_traffic(self, sent: int = 0, received: int = 0) -> None:
        slot = self._slot
        slot.sent += sent
        slot.received += received
        now = self.clock()
        if now - slot.published >= TRAFFIC_PUBLISH_SECONDS:
            slot.published = now
            with self.lock:
                slot.publish()

    def publish_traffic(self) -> None:
        """Add this process's pending traffic to the slot; the caller holds the lock."""
        slot = self._slot
        if slot.sent or slot.received:
            slot.publish()


class SharedBalancer:
    """A balancer's parameters that balancer-manager may change, in its slot.

    ``params`` rebuilds the frozen :class:`BalancerParams` from the configured ones and
    the slot's lbmethod, stickysession, nofailover, maxattempts and timeout whenever the
    slot's generation moved; ``nonce`` is the first process's, so the page served by the
    supervisor and every worker agree.
    """

    def __init__(self, slot: _Slot, lock: SharedLock, configured: BalancerParams) -> None:
        self._slot = slot
        self.lock = lock
        self._configured = configured
        self._generation = -1
        self._params = configured

    @property
    def nonce(self) -> str:
        return self._slot.get_str(_B_NONCE_LEN, _B_NONCE) or ""

    @property
    def max_attempts(self) -> int:
        return self._slot.q[_B_MAX_ATTEMPTS]

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        with self.lock:
            self._slot.q[_B_MAX_ATTEMPTS] = value
            self._slot.q[_B_GENERATION] += 1

    @property
    def params(self) -> BalancerParams:
        q = self._slot.q
        if q[_B_GENERATION] != self._generation:
            with self.lock:
                self._generation = q[_B_GENERATION]
                maxattempts = q[_B_MAXATTEMPTS]
                sticky = self._slot.get_str(_B_STICKY_LEN, _B_STICKY) or ""
                self._params = replace(
                    self._configured,
                    lbmethod=LBMETHOD_NAMES[q[_B_LBMETHOD]],
                    stickysession=tuple(sticky.split("|")) if sticky else (),
                    nofailover=bool(q[_B_NOFAILOVER]),
                    maxattempts=None if maxattempts < 0 else maxattempts,
                    timeout=self._slot.d[_B_TIMEOUT],
                )
        return self._params

    @params.setter
    def params(self, value: BalancerParams) -> None:
        self.store(value, self.max_attempts)

    def store(self, params: BalancerParams, max_attempts: int) -> None:
        """Write ``params`` (the fields balancer-manager edits) and ``max_attempts``."""
        with self.lock:
            q = self._slot.q
            self._slot.set_str(_B_STICKY_LEN, _B_STICKY, "|".join(params.stickysession))
            q[_B_LBMETHOD] = LBMETHOD_NAMES.index(params.lbmethod)
            q[_B_NOFAILOVER] = int(params.nofailover)
            q[_B_MAXATTEMPTS] = -1 if params.maxattempts is None else params.maxattempts
            q[_B_MAX_ATTEMPTS] = max_attempts
            self._slot.d[_B_TIMEOUT] = params.timeout
            q[_B_GENERATION] += 1
