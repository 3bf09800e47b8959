"""Runtime state without a store process: values versus the file, the store's order, the
file format, and the Redis connection's time limits on a clock of our own."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport

from ajpbalancer.balancer import apply_member_values
from ajpbalancer.config import parse
from ajpbalancer.resp import encode_command
from ajpbalancer.runstate import (
    Entry,
    FileStore,
    RuntimeState,
    StateFileError,
    StoreHealth,
    decode,
    encode,
    overlay,
    verdict,
)
from ajpbalancer.runstate._client import RedisConnection, StoreError
from ajpbalancer.runstate._file import write_atomically
from ajpbalancer.runstate._model import FieldKey
from ajpbalancer.service import ProxyRuntime

M1 = "http://127.0.0.2:8080"
M2 = "http://127.0.0.3:8080"


def config_text(lf: str = "1", extra: str = "") -> str:
    return f"""
[ajpbalancer]
access_log = off
{extra}
[frontend]
listen = tcp:8080
ProxyPass = /app balancer://c/app
[balancer://c]
BalancerMember = {M1} route=node1 loadfactor={lf}
                 {M2} route=node2
"""


CONFIG = parse(config_text(), "lb.ini")
LF: FieldKey = ("c", M1, "loadfactor")
DIS: FieldKey = ("c", M1, "status_D")


@dataclass
class FakeStore:
    """A shared store that records writes; the test plays the store's answers."""

    shared: bool = True
    writes: list[tuple[FieldKey, Entry | None, int | None]] = field(default_factory=list)

    def start(self, state: RuntimeState) -> None: ...

    def balancers(self, names: object) -> None: ...

    def write(self, f: FieldKey, entry: Entry | None, if_seq: int | None = None) -> None:
        self.writes.append((f, entry, if_seq))

    def stop(self) -> Deferred[None]:
        return succeed(None)

    def health(self) -> StoreHealth:
        return StoreHealth("fake", "fake", True, None, None, 0, 0)


class Proxy:
    """A running proxy built as the service builds it, with its runtime state."""

    def __init__(self, persist: bool = True) -> None:
        self.store = FakeStore()
        self.runtime: ProxyRuntime | None = None
        self.state = RuntimeState(
            persist=persist, running=lambda: self.runtime, store=self.store, wall=lambda: 5.0
        )
        self.reactor = MemoryReactorClock()
        self.reload(CONFIG)

    def reload(self, config: Any) -> None:
        effective = self.state.configure(config, reload=self.runtime is not None)
        self.runtime = ProxyRuntime(self.reactor, effective, access_log=None, server_name=b"x")

    def admin_sets(self, values: dict[str, Any]) -> None:
        """What balancer-manager does: apply, then record."""
        assert self.runtime is not None
        balancer = self.runtime.balancers["c"]
        apply_member_values(balancer.states, balancer.members[0].lb, values)
        self.state.record("c", M1, values, "ops")

    def lf(self) -> float:
        assert self.runtime is not None
        return self.runtime.balancers["c"].members[0].lb.lbfactor / 100


def entry(value: Any, base: Any = 1.0, seq: int | None = None) -> Entry:
    return Entry(value, base, 1.0, "ops", seq)


# --- the file versus runtime values --------------------------------------------------------


def test_a_value_holds_while_the_file_says_what_it_was_set_over() -> None:
    assert verdict(CONFIG, LF, entry(5.0, base=1.0)) is None
    changed = parse(config_text("3"), "lb.ini")
    why = verdict(changed, LF, entry(5.0, base=1.0))
    assert why == ("the configuration file now says 3.0; the runtime value 5.0 was set over 1.0")
    gone = verdict(CONFIG, ("c", "http://10.0.0.1:1", "lbset"), entry(2, 0))
    assert gone == "the member is no longer in the configuration"


def test_overlay_puts_runtime_values_in_place_of_the_files() -> None:
    run = overlay(
        CONFIG,
        [
            (LF, entry(5.0)),
            (DIS, entry(True, False)),
            (("c", None, "lbmethod"), entry("bybusyness", "byrequests")),
        ],
    )
    b = run.balancers[0]
    assert b.members[0].params.loadfactor == 5.0
    assert "D" in b.members[0].params.status
    assert b.params.lbmethod == "bybusyness"
    assert CONFIG.balancers[0].members[0].params.loadfactor == 1.0


def test_a_recorded_change_is_sent_and_a_value_back_to_the_files_ends_it() -> None:
    p = Proxy()
    p.state.record("c", M1, {"loadfactor": 4.0, "status_D": True}, "ops")
    assert [(w[0], w[1].value if w[1] else None) for w in p.store.writes] == [
        (LF, 4.0),
        (DIS, True),
    ]
    assert p.state.entries("c", M1)["loadfactor"].by == "ops"
    p.state.record("c", M1, {"status_D": False}, "ops")
    assert p.store.writes[-1] == (DIS, None, None)
    assert "status_D" not in p.state.entries("c", M1)


def test_a_reload_that_changes_a_key_drops_its_runtime_value_and_only_that_one() -> None:
    p = Proxy()
    p.state.record("c", M1, {"loadfactor": 4.0, "status_D": True}, "ops")
    p.state.acked(LF, 7, p.state.values[LF])
    p.reload(parse(config_text("3"), "lb.ini"))
    assert p.lf() == 3.0
    assert set(p.state.entries("c", M1)) == {"status_D"}
    assert p.store.writes[-1] == (LF, None, 7)  # deleted unless changed meanwhile


def test_without_balancer_persist_a_reload_drops_every_runtime_value() -> None:
    p = Proxy(persist=False)
    p.state.record("c", M1, {"loadfactor": 4.0}, "ops")
    p.reload(CONFIG)
    assert p.state.values == {}
    assert p.lf() == 1.0


# --- the store's order --------------------------------------------------------------------


def test_changes_from_the_store_apply_in_its_order_and_stale_ones_are_ignored() -> None:
    p = Proxy()
    p.state.changed(LF, 3, entry(3.0))
    assert p.lf() == 3.0
    p.state.changed(LF, 2, entry(2.0))  # older than what was applied
    assert p.lf() == 3.0
    p.state.changed(LF, 4, None)  # back to the file's value
    assert p.lf() == 1.0 and p.state.values == {}


def test_a_change_made_here_holds_until_numbered_then_the_stores_last_wins() -> None:
    p = Proxy()
    p.admin_sets({"loadfactor": 4.0})
    sent = p.state.values[LF]
    p.state.changed(LF, 10, entry(9.0))  # another proxy's, numbered before ours was
    assert p.lf() == 4.0
    p.state.acked(LF, 9, sent)  # ours came first: the other one is the last
    assert p.lf() == 9.0
    q = Proxy()
    q.admin_sets({"loadfactor": 4.0})
    q.state.changed(LF, 10, entry(9.0))
    q.state.acked(LF, 11, q.state.values[LF])  # ours is the last
    assert q.lf() == 4.0 and q.state.values[LF].seq == 11


def test_a_snapshot_takes_the_stores_values_unless_newer_ones_arrived() -> None:
    p = Proxy()
    p.state.changed(DIS, 12, entry(True, False))
    p.state.snapshot("c", 10, {LF: entry(6.0, seq=8)}, "e1")  # DIS came after it
    assert p.lf() == 6.0 and DIS in p.state.values
    p.state.snapshot("c", 20, {}, "e1")
    assert p.state.values == {} and p.lf() == 1.0


def test_a_store_with_a_new_epoch_gets_the_values_held_here_again() -> None:
    p = Proxy()
    p.state.snapshot("c", 5, {LF: entry(6.0, seq=5)}, "e1")
    p.store.writes.clear()
    p.state.snapshot("c", 1, {DIS: entry(True, False, seq=1)}, "e2")  # restarted empty
    assert [w[0] for w in p.store.writes] == [LF]  # seeded again
    assert p.lf() == 6.0 and DIS in p.state.values  # and what it has is taken


def test_a_value_from_the_store_set_over_another_file_value_is_dropped() -> None:
    p = Proxy()
    p.state.changed(LF, 4, entry(5.0, base=2.0))
    assert p.lf() == 1.0 and p.state.values == {}
    assert p.store.writes[-1] == (LF, None, 4)


# --- the file -------------------------------------------------------------------------------


def test_the_file_round_trips_and_is_versioned() -> None:
    entries = [(LF, entry(4.0, seq=3)), (("c", None, "stickysession"), entry(("A", "a"), (), 4))]
    data = encode(entries, 4, 10.0)
    doc = json.loads(data)
    assert (doc["format"], doc["version"], doc["seq"]) == ("ajpbalancer-runtime-state", 1, 4)
    assert decode(data, "f") == (entries, 4)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{", "not JSON"),
        (b"[]", "not an ajpbalancer runtime state file"),
        (b'{"format": "ajpbalancer-runtime-state", "version": 2, "entries": []}', "newer"),
        (b'{"format": "ajpbalancer-runtime-state", "entries": []}', "no valid version"),
    ],
)
def test_a_file_this_version_cannot_read_is_refused_with_why(data: bytes, why: str) -> None:
    with pytest.raises(StateFileError, match=why):
        decode(data, "f")


def test_bad_entries_are_skipped_and_the_rest_read() -> None:
    good = json.loads(encode([(LF, entry(4.0, seq=1))], 1, 0.0))
    good["entries"] += [
        {"balancer": "c", "member": M1, "key": "loadfactor", "value": 500, "base": 1},
        {"balancer": "c", "member": M1, "key": "future_key", "value": 1, "base": 0},
        "junk",
    ]
    entries, _ = decode(json.dumps(good).encode(), "f")
    assert entries == [(LF, entry(4.0, seq=1))]


def test_an_unreadable_file_is_set_aside_and_the_start_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\x00\x01")
    store = FileStore(MemoryReactorClock(), str(path), lambda work: succeed(work()))
    assert store.load() == ([], 0)
    assert (tmp_path / "state.json.invalid").read_bytes() == b"\x00\x01"
    assert store.health().error is not None


def test_writes_are_atomic_and_leave_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    write_atomically(str(path), b"new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_the_file_store_writes_each_change_and_reads_it_back(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    store = FileStore(MemoryReactorClock(), path, lambda work: succeed(work()))
    state = RuntimeState(persist=True, running=lambda: None, store=store, wall=lambda: 2.0)
    state.configure(CONFIG)
    state.start()
    state.record("c", M1, {"loadfactor": 4.0}, "ops")
    again = FileStore(MemoryReactorClock(), path, lambda work: succeed(work()))
    entries, seq = again.load()
    assert [(f, e.value, e.seq) for f, e in entries] == [(LF, 4.0, 1)] and seq == 1


# --- the Redis connection --------------------------------------------------------------------


def connection(timeout: float = 2.0) -> tuple[RedisConnection, StringTransport, MemoryReactorClock]:
    clock = MemoryReactorClock()
    messages: list[tuple[bytes, bytes]] = []
    conn = RedisConnection(clock, timeout, on_message=lambda c, m: messages.append((c, m)))
    conn.messages = messages  # type: ignore[attr-defined]
    transport = StringTransport()
    conn.makeConnection(transport)
    return conn, transport, clock


def test_replies_answer_commands_in_order() -> None:
    conn, transport, _ = connection()
    first, second = conn.command("PING"), conn.command("GET", "k")
    assert transport.value() == encode_command("PING") + encode_command("GET", "k")
    got: list[object] = []
    first.addCallback(got.append)
    second.addCallback(got.append)
    conn.dataReceived(b"+PONG\r\n$1\r\nv\r\n")
    assert got == [b"PONG", b"v"]


def test_a_command_not_answered_in_time_fails_and_drops_the_connection() -> None:
    conn, transport, clock = connection(timeout=2.0)
    failed: list[Any] = []
    conn.command("PING").addErrback(failed.append)
    clock.advance(1.9)
    assert failed == [] and not transport.disconnecting
    clock.advance(0.2)
    assert failed and failed[0].check(StoreError)
    assert "within 2s" in str(failed[0].value)
    assert transport.disconnecting


def test_published_messages_go_to_the_subscriber() -> None:
    conn, _, _ = connection()
    confirmed: list[object] = []
    conn.subscribe("a", "b").addCallback(confirmed.append)
    conn.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
    assert confirmed == []
    conn.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
    assert len(confirmed) == 1
    conn.dataReceived(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
    assert conn.messages == [(b"a", b"hi")]  # type: ignore[attr-defined]


def test_garbage_from_the_store_drops_the_connection() -> None:
    conn, transport, _ = connection()
    failed: list[Any] = []
    conn.command("PING").addErrback(failed.append)
    conn.dataReceived(b"?\r\n")
    assert failed and transport.disconnecting
