"""Runtime state shared through Redis (``state = redis://HOST:PORT/DB``).

Per balancer NAME (with ``state_prefix`` P): the hash ``P+NAME`` holds one field per
runtime value (``KEY`` or ``KEY MEMBER_URL``) whose value is ``SEQ JSON``; ``P+NAME:seq``
counts the balancer's changes; every change is published on ``P+NAME:changes:DB`` as
``SEQ\\nFIELD\\nJSON`` (empty JSON: the value is gone, back to the file's). A change is
one Lua script, so numbering, storing and publishing it are one step in the store's
order: the store's number decides which change is the last.

Two connections: one for commands, one subscribed to the balancers' channels. On
(re)connecting: log in and select the database, subscribe, read every balancer whole and
take what the store holds (:meth:`RuntimeState.snapshot`), then send the changes made here meanwhile
(coalesced: the last per value). Each balancer has an epoch in the store (``P+NAME:epoch``,
made by the first proxy that reads it), so a store that lost its data (restarted empty)
is recognised and given the values the proxies hold again. Both connections are pinged every
``ping`` seconds; a command or ping not answered within ``timeout`` seconds, or a lost
connection, drops both and they are made again after a delay doubling from ``backoff``
to ``max_backoff``. None of this is on the request path: requests read the local state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from ajpbalancer.balancer import BadValueError
from ajpbalancer.config import StateStore
from ajpbalancer.resp import Reply
from ajpbalancer.runstate._client import RedisConnection, StoreError
from ajpbalancer.runstate._model import Entry, FieldKey, field_name, parse_field
from ajpbalancer.runstate._state import RuntimeState, StoreHealth

log = Logger()

CHANGE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then
  if not cur or string.match(cur, '^(%d+) ') ~= ARGV[4] then return 0 end
end
local n = redis.call('INCR', KEYS[2])
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], n .. ' ' .. ARGV[2]) end
redis.call('PUBLISH', ARGV[3], n .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
return n
"""
"""Number, store (or delete) and publish one change; with an expected number (ARGV[4]),
only if the value still has it (0 otherwise)."""

SNAPSHOT = """
redis.call('SETNX', KEYS[3], ARGV[1])
return {redis.call('GET', KEYS[3]), redis.call('GET', KEYS[2]) or '0',
        redis.call('HGETALL', KEYS[1])}
"""
"""A balancer's epoch (made by the first reader: a store that lost its data has a new
one), its change number and every value, in one step."""


class RedisStore:
    """``state = redis://…`` (see the module docstring)."""

    shared = True

    def __init__(
        self,
        reactor: Any,
        store: StateStore,
        prefix: str,
        *,
        timeout: float = 2.0,
        ping: float = 1.0,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
    ) -> None:
        self._reactor = reactor
        self.store = store
        self.prefix = prefix
        self.timeout = timeout
        self.ping = ping
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._state: RuntimeState | None = None
        self._names: tuple[str, ...] = ()
        self._queue: dict[FieldKey, tuple[Entry | None, int | None]] = {}
        self._inflight: dict[FieldKey, tuple[Entry | None, int | None]] = {}
        self._command: RedisConnection | None = None
        self._subscriber: RedisConnection | None = None
        self._synced = False
        self._stopping = False
        self._delay = backoff
        self._retry: IDelayedCall | None = None
        self._pinger: IDelayedCall | None = None
        self._attempt = 0
        self._error: str | None = None
        self._last_sync: float | None = None
        self.reconnects = 0
        self._ever = False

    # -- names ---------------------------------------------------------------------------

    def _hash(self, balancer: str) -> str:
        return f"{self.prefix}{balancer}"

    def _channel(self, balancer: str) -> str:
        return f"{self.prefix}{balancer}:changes:{self.store.db}"

    # -- Store -----------------------------------------------------------------------------

    def start(self, state: RuntimeState) -> None:
        self._state = state
        self._connect()

    def balancers(self, names: Sequence[str]) -> None:
        """The balancers to share; a new set subscribes again (a reconnection)."""
        names = tuple(names)
        if names == self._names:
            return
        self._names = names
        if self._command is not None or self._subscriber is not None:
            self._lost("the balancers changed")

    def write(self, field: FieldKey, entry: Entry | None, if_seq: int | None = None) -> None:
        self._queue.pop(field, None)
        self._queue[field] = (entry, if_seq)
        if self._synced:
            self._flush()

    def stop(self) -> Deferred[None]:
        self._stopping = True
        for call in (self._retry, self._pinger):
            if call is not None and call.active():
                call.cancel()
        for conn in (self._command, self._subscriber):
            if conn is not None and conn.transport is not None:
                conn.transport.loseConnection()
        return succeed(None)

    def health(self) -> StoreHealth:
        return StoreHealth(
            store=str(self.store),
            kind="redis",
            connected=self._synced,
            last_sync=self._last_sync,
            error=self._error,
            pending=len(self._queue),
            reconnects=self.reconnects,
        )

    # -- connecting ------------------------------------------------------------------------

    def _connect(self) -> None:
        self._retry = None
        if self._stopping:
            return
        self._attempt += 1
        attempt = self._attempt
        endpoint = HostnameEndpoint(
            self._reactor, self.store.host, self.store.port, timeout=self.timeout
        )

        def connection(subscriber: bool) -> Deferred[RedisConnection]:
            proto = RedisConnection(
                self._reactor,
                self.timeout,
                on_message=self._message if subscriber else None,
                on_lost=lambda conn, why: self._conn_lost(attempt, why),
            )
            d = endpoint.connect(_Quiet(proto))
            return d.addCallback(lambda _: self._login(proto))

        def connected(conns: list[tuple[bool, Any]]) -> Deferred[Any] | None:
            failed = [f for ok, f in conns if not ok]
            opened = [c for ok, c in conns if ok]
            if attempt != self._attempt or self._stopping:
                for conn in opened:
                    conn.abort("no longer wanted")
                return None
            if failed:
                for conn in opened:
                    conn.abort("the other connection failed")
                self._lost(_why(failed[0]))
                return None
            self._command, self._subscriber = opened
            return self._sync(attempt)

        both = DeferredList([connection(False), connection(True)], consumeErrors=True)
        both.addCallback(connected)
        both.addErrback(lambda f: self._lost(_why(f)) if attempt == self._attempt else None)

    def _login(self, conn: RedisConnection) -> Deferred[RedisConnection]:
        d: Deferred[Reply] = succeed(None)
        if self.store.password is not None:
            login = [self.store.username] if self.store.username else []
            d = conn.command("AUTH", *login, self.store.password)
        if self.store.db:
            d.addCallback(lambda _: conn.command("SELECT", self.store.db))
        return d.addCallback(lambda _: conn)

    def _sync(self, attempt: int) -> Deferred[Any]:
        assert self._command is not None and self._subscriber is not None
        command = self._command
        channels = [self._channel(name) for name in self._names]
        d: Deferred[Any] = self._subscriber.subscribe(*channels) if channels else succeed(None)
        for name in self._names:
            d.addCallback(self._snapshot_after, command, name)
        d.addCallback(lambda _: self._flush())

        def synced(_: object) -> None:
            if attempt != self._attempt:
                return
            if self._ever:
                self.reconnects += 1
            self._ever = True
            if self._error is not None or self.reconnects:
                log.info("runtime state: {store} connected and in step", store=str(self.store))
            self._synced = True
            self._error = None
            self._delay = self.backoff
            self._last_sync = self._reactor.seconds()
            self._pinger = self._reactor.callLater(self.ping, self._ping, attempt)
            if self._queue:
                self._flush()

        d.addCallback(synced)
        d.addErrback(lambda f: self._lost(_why(f)) if attempt == self._attempt else None)
        return d

    def _ping(self, attempt: int) -> None:
        self._pinger = None
        if attempt != self._attempt or self._command is None or self._subscriber is None:
            return
        pings = [self._command.command("PING"), self._subscriber.command("PING")]

        def answered(_: object) -> None:
            if attempt == self._attempt:
                self._last_sync = self._reactor.seconds()
                self._pinger = self._reactor.callLater(self.ping, self._ping, attempt)

        d = DeferredList(pings, fireOnOneErrback=True, consumeErrors=True)
        d.addCallbacks(answered, lambda f: None)  # a failure drops the connection itself

    def _conn_lost(self, attempt: int, why: str) -> None:
        if attempt == self._attempt:
            self._lost(why)

    def _lost(self, why: str) -> None:
        """Drop both connections and connect again after the backoff delay."""
        if self._stopping:
            return
        if self._synced or self._error != why:
            log.warn(
                "runtime state: {store}: {why}; serving with the state held here, "
                "connecting again in {delay:g}s",
                store=str(self.store),
                why=why,
                delay=self._delay,
            )
        self._synced = False
        self._error = why
        self._inflight.clear()  # not acknowledged: sent again once connected
        self._attempt += 1  # whatever the old connections still report is ignored
        for conn in (self._command, self._subscriber):
            if conn is not None:
                conn.abort(why)
        self._command = self._subscriber = None
        if self._pinger is not None and self._pinger.active():
            self._pinger.cancel()
        self._pinger = None
        if self._stopping or self._retry is not None:
            return
        self._retry = self._reactor.callLater(self._delay, self._connect)
        self._delay = min(self._delay * 2, self.max_backoff)

    # -- changes -------------------------------------------------------------------------

    def _flush(self) -> Deferred[None]:
        command = self._command
        if command is None:
            return succeed(None)
        sent: list[Deferred[Any]] = []
        for field, item in list(self._queue.items()):
            if self._inflight.get(field) == item:
                continue  # sent already, its answer is on its way
            self._inflight[field] = item
            entry, if_seq = item
            balancer, member, key = field
            d = command.command(
                "EVAL",
                CHANGE,
                2,
                self._hash(balancer),
                self._hash(balancer) + ":seq",
                field_name(member, key),
                "" if entry is None else entry.to_json(),
                self._channel(balancer),
                "" if if_seq is None else str(if_seq),
            )
            d.addCallback(self._written, field, entry, if_seq)
            sent.append(d)
        return DeferredList(sent, fireOnOneErrback=True, consumeErrors=True).addCallback(
            lambda _: None
        )

    def _written(
        self, reply: Reply, field: FieldKey, entry: Entry | None, if_seq: int | None
    ) -> None:
        item = self._queue.get(field)
        if item is not None and item[0] is entry and item[1] == if_seq:
            del self._queue[field]
        flying = self._inflight.get(field)
        if flying is not None and flying[0] is entry and flying[1] == if_seq:
            del self._inflight[field]
        self._last_sync = self._reactor.seconds()
        state = self._state
        if state is None:
            return
        if isinstance(reply, int) and reply > 0:
            state.acked(field, reply, entry)
        else:
            state.failed(field, entry)

    def _message(self, channel: bytes, data: bytes) -> None:
        state = self._state
        name = next((n for n in self._names if self._channel(n).encode() == channel), None)
        if state is None or name is None:
            return
        try:
            seq_text, name_text, entry_text = data.decode("utf-8").split("\n", 2)
            member, key = parse_field(name_text)
            seq = int(seq_text)
            entry = Entry.from_json(key, entry_text, seq) if entry_text else None
        except (ValueError, UnicodeDecodeError) as e:
            log.warn(
                "runtime state: a change from {store} ignored: {error}",
                store=str(self.store),
                error=e,
            )
            return
        state.changed((name, member, key), seq, entry)

    def _snapshot_after(self, _: object, command: RedisConnection, balancer: str) -> Deferred[None]:
        return self._snapshot(command, balancer)

    def _snapshot(self, command: RedisConnection, balancer: str) -> Deferred[None]:
        key = self._hash(balancer)
        epoch = str(uuid.uuid4())
        d = command.command("EVAL", SNAPSHOT, 3, key, key + ":seq", key + ":epoch", epoch)

        def read(reply: Reply) -> None:
            if not isinstance(reply, list) or len(reply) != 3 or not isinstance(reply[2], list):
                raise StoreError("an unexpected answer to the snapshot")
            epoch_raw, seq_raw, flat = reply[0], reply[1], reply[2]
            assert isinstance(flat, list)
            seq = int(seq_raw) if isinstance(seq_raw, bytes | int) else 0
            fields: dict[FieldKey, Entry] = {}
            for name_raw, value_raw in zip(flat[::2], flat[1::2], strict=True):
                if not isinstance(name_raw, bytes) or not isinstance(value_raw, bytes):
                    continue
                try:
                    member, k = parse_field(name_raw.decode("utf-8"))
                    seq_text, _, text = value_raw.decode("utf-8").partition(" ")
                    fields[(balancer, member, k)] = Entry.from_json(k, text, int(seq_text))
                except (ValueError, UnicodeDecodeError, BadValueError) as e:
                    log.warn(
                        "runtime state: {field!r} of {key} ignored: {error}",
                        field=name_raw,
                        key=key,
                        error=e,
                    )
            if self._state is not None:
                shown = epoch_raw.decode("ascii", "replace") if isinstance(epoch_raw, bytes) else ""
                self._state.snapshot(balancer, seq, fields, shown)

        return d.addCallback(read)


class _Quiet(Factory):
    """Hands the endpoint the connection built beforehand, without connectProtocol's log
    lines for every connection."""

    noisy = False

    def __init__(self, protocol: RedisConnection) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> RedisConnection:
        return self._protocol


def _why(failure: Failure) -> str:
    error = failure.value
    inner = getattr(error, "subFailure", None)
    if inner is not None:
        error = inner.value
    return str(error) or type(error).__name__
