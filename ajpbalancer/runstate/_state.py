"""The runtime state of one proxy: its runtime values, kept in step with a store and the file.

:class:`RuntimeState` owns the runtime values (:mod:`._model`). The admin records what
balancer-manager changed (:meth:`~RuntimeState.record`); the composition root asks for
the configuration to run at start and at each reload (:meth:`~RuntimeState.configure`:
the file's, with the runtime values that still hold in place of its values, the others
dropped and logged); the store (:mod:`._file`, :mod:`._redis`) tells of changes made
elsewhere (:meth:`~RuntimeState.changed`, :meth:`~RuntimeState.snapshot`) and of its own
acknowledgements (:meth:`~RuntimeState.acked`), which are applied to the running proxy at
once. Nothing here waits: the request path never sees the store.

Ordering (a shared store): every change gets a number from the store (``seq``), and the
highest number wins, so every proxy ends with the value of the last change the store
took, whichever proxy made it. A change made here holds until the store numbered it; a
change from the store with a lower number than one already applied is stale and ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from ajpbalancer.balancer import (
    MemberState,
    SettableBalancer,
    Value,
    apply_member_values,
    set_balancer_values,
)
from ajpbalancer.config import Config
from ajpbalancer.runstate._model import (
    MISSING,
    Entry,
    FieldKey,
    configured,
    describe,
    group,
    overlay,
    verdict,
)

log = Logger()


class RunningMember(Protocol):
    route: str | None

    @property
    def name(self) -> str: ...

    @property
    def lb(self) -> MemberState: ...


class RunningBalancer(SettableBalancer, Protocol):
    @property
    def members(self) -> Sequence[RunningMember]: ...

    @property
    def lock(self) -> AbstractContextManager[None]: ...


class RunningProxy(Protocol):
    @property
    def balancers(self) -> Mapping[str, RunningBalancer]: ...


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """How the store is: ``connected`` (a file: the last write worked), ``last_sync`` (the
    last time the store answered or the file was written), the last ``error``, changes not
    yet in the store (``pending``) and times the connection was made again."""

    store: str
    kind: str
    connected: bool
    last_sync: float | None
    error: str | None
    pending: int
    reconnects: int


class Store(Protocol):
    """Where runtime values are kept: ``shared`` stores number changes themselves."""

    shared: bool

    def start(self, state: RuntimeState) -> None: ...

    def balancers(self, names: Sequence[str]) -> None: ...

    def write(self, field: FieldKey, entry: Entry | None, if_seq: int | None = None) -> None: ...

    def stop(self) -> Deferred[None]: ...

    def health(self) -> StoreHealth: ...


class RuntimeState:
    """The runtime values of one proxy (see the module docstring)."""

    def __init__(
        self,
        *,
        persist: bool,
        running: Callable[[], RunningProxy | None],
        store: Store | None = None,
        hostname: str = "",
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.persist = persist
        self.store = store
        self._running = running
        self._hostname = hostname
        self._wall = wall
        self.values: dict[FieldKey, Entry] = {}
        self.config: Config | None = None
        self._seen: dict[FieldKey, int] = {}
        self._pending: dict[FieldKey, Entry | None] = {}
        self._latest: dict[FieldKey, tuple[int, Entry | None]] = {}
        self._epochs: dict[str, str] = {}
        self.seq = 0

    # -- the composition root ---------------------------------------------------------------

    def restore(self, entries: Iterable[tuple[FieldKey, Entry]], seq: int) -> None:
        """Runtime values read back at start (a file store)."""
        self.values.update(entries)
        self.seq = max(seq, *(e.seq or 0 for e in self.values.values()), 0)

    def configure(self, config: Config, *, reload: bool = False) -> Config:
        """The configuration to run: ``config`` (the file's) with the runtime values that
        still hold; those the file has changed since are dropped (logged, and removed from
        the store). A reload without ``BalancerPersist`` drops them all, as httpd does."""
        self.config = config
        if reload and not self.persist and self.values:
            log.info(
                "reload: {count} runtime value(s) dropped (BalancerPersist is off)",
                count=len(self.values),
            )
            self.values.clear()
        for field, entry in list(self.values.items()):
            why = verdict(config, field, entry)
            if why is not None:
                self._drop(field, entry, why)
        if self.store is not None:
            self.store.balancers([b.name for b in config.balancers])
        return overlay(config, self.values.items())

    def start(self) -> None:
        if self.store is not None:
            self.store.start(self)

    def stop(self) -> Deferred[None]:
        return succeed(None) if self.store is None else self.store.stop()

    # -- the admin ------------------------------------------------------------------------

    def record(
        self, balancer: str, member: str | None, values: Mapping[str, Value], by: str
    ) -> None:
        """balancer-manager set ``values`` (already applied): keep them as runtime values; a
        value equal to the file's ends the runtime value instead."""
        if self.config is None:
            return
        who = f"{by} on {self._hostname}" if self._hostname else by
        for key, value in values.items():
            field = (balancer, member, key)
            base = configured(self.config, field)
            if base is MISSING:
                continue
            if value == base:
                if self.values.pop(field, None) is not None:
                    self._write(field, None)
                continue
            entry = Entry(value, base, self._wall(), who)  # type: ignore[arg-type]  # a Value
            self.values[field] = entry
            self._write(field, entry)

    def entries(self, balancer: str, member: str | None) -> dict[str, Entry]:
        return group(self.values, balancer, member)

    def health(self) -> StoreHealth | None:
        return None if self.store is None else self.store.health()

    def document(self) -> list[tuple[FieldKey, Entry]]:
        """Every runtime value, in a stable order (what a file store writes)."""
        return sorted(
            self.values.items(), key=lambda item: (item[0][0], item[0][1] or "", item[0][2])
        )

    # -- the store --------------------------------------------------------------------------

    def _write(self, field: FieldKey, entry: Entry | None, if_seq: int | None = None) -> None:
        store = self.store
        if store is None:
            return
        if not store.shared:
            self.seq += 1
            if entry is not None:
                self.values[field] = replace(entry, seq=self.seq)
            store.write(field, entry)
            return
        self._pending[field] = entry
        store.write(field, entry, if_seq)

    def _drop(self, field: FieldKey, entry: Entry, why: str) -> None:
        log.warn(
            "runtime value dropped: {field} = {value} ({why})",
            field=describe(field),
            value=entry.value,
            why=why,
        )
        self.values.pop(field, None)
        store = self.store
        if store is None:
            return
        if store.shared and entry.seq is not None:
            store.write(field, None, entry.seq)  # unless someone changed it meanwhile
        else:
            self._write(field, None)

    def acked(self, field: FieldKey, seq: int, sent: Entry | None) -> None:
        """The store numbered our change of ``field`` (``sent``) ``seq``."""
        if field in self._pending and self._pending[field] is sent:
            del self._pending[field]
            if sent is not None and self.values.get(field) is sent:
                self.values[field] = replace(sent, seq=seq)
        self._seen[field] = max(self._seen.get(field, 0), seq)
        if field not in self._pending:
            latest = self._latest.pop(field, None)
            if latest is not None and latest[0] > seq:
                self._take(field, *latest)

    def failed(self, field: FieldKey, sent: Entry | None) -> None:
        """A conditional delete found the value changed meanwhile: nothing to wait for."""
        if field in self._pending and self._pending[field] is sent:
            del self._pending[field]

    def changed(self, field: FieldKey, seq: int, entry: Entry | None) -> None:
        """The store says ``field`` became ``entry`` (None: back to the file's) as its
        change number ``seq``."""
        if field in self._pending:
            latest = self._latest.get(field)
            if latest is None or seq > latest[0]:
                self._latest[field] = (seq, entry)
            return
        if seq <= self._seen.get(field, 0):
            return
        self._take(field, seq, entry)

    def snapshot(
        self, balancer: str, seq: int, fields: Mapping[FieldKey, Entry], epoch: str = ""
    ) -> None:
        """Everything the store holds for ``balancer`` as of its change number ``seq``.

        A store whose ``epoch`` is not the one seen before has lost its data (restarted
        empty, flushed): the values held here are sent to it again rather than dropped,
        and what it has that is not held here is taken, so the fleet keeps its state."""
        known_epoch = self._epochs.get(balancer)
        self._epochs[balancer] = epoch
        if known_epoch is not None and known_epoch != epoch:
            log.warn(
                "runtime state: the store lost the changes of balancer://{balancer}; "
                "sending it the values held here",
                balancer=balancer,
            )
            for field in [f for f in self._seen if f[0] == balancer]:
                del self._seen[field]
            for field, held in list(self.values.items()):
                if field[0] == balancer and field not in self._pending:
                    fresh = self.values[field] = replace(held, seq=None)
                    self._write(field, fresh)
            for field, theirs in fields.items():
                if field not in self.values and field not in self._pending:
                    self._take(field, theirs.seq or seq, theirs)
            return
        known = {f for f in self.values if f[0] == balancer} | set(fields)
        for field in sorted(known, key=lambda f: (f[1] or "", f[2])):
            if field in self._pending or self._seen.get(field, 0) > seq:
                continue
            entry = fields.get(field)
            current = self.values.get(field)
            if entry is None:
                if current is not None:
                    self._take(field, seq, None)
                self._seen[field] = max(self._seen.get(field, 0), seq)
            elif current is None or current.seq != entry.seq or current != entry:
                self._take(field, entry.seq or seq, entry)

    def _take(self, field: FieldKey, seq: int, entry: Entry | None) -> None:
        self._seen[field] = max(self._seen.get(field, 0), seq)
        if entry is not None and self.config is not None:
            why = verdict(self.config, field, entry)
            if why is not None:
                self._drop(field, replace(entry, seq=seq), why)
                entry = None
        if entry is not None:
            self.values[field] = replace(entry, seq=seq)
            self._apply(field, entry.value, f"set by {entry.by}")
            return
        if self.values.pop(field, None) is None or self.config is None:
            return
        base = configured(self.config, field)
        if base is not MISSING:
            self._apply(field, base, "back to the configuration file's value")  # type: ignore[arg-type]

    def _apply(self, field: FieldKey, value: Value, why: str) -> None:
        running = self._running()
        name, member_name, key = field
        balancer = None if running is None else running.balancers.get(name)
        if balancer is None:
            return
        with balancer.lock:
            if member_name is None:
                changed = set_balancer_values(balancer, {key: value})
            else:
                member = next((m for m in balancer.members if m.name == member_name), None)
                if member is None:
                    return
                changed = apply_member_values(balancer.states, member.lb, {key: value})
                member.route = member.lb.route
        if changed:
            log.info(
                "runtime state: {field} = {value} ({why})",
                field=describe(field),
                value=value,
                why=why,
            )
