"""Balancer state in shared memory (slotmem_shm's counterpart): views of one file agree."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from ajpbalancer.balancer import MemberState, Status, select_member
from ajpbalancer.balancer._shared import SharedLock, SharedMemberState, SharedMemory, SlotError
from ajpbalancer.config import URL, Balancer, BalancerParams, Location, Member, MemberParams, Scheme
from ajpbalancer.proxy._workers import BalancerRuntime, Worker


@pytest.fixture
def memory() -> Iterator[SharedMemory]:
    yield SharedMemory.create(members=8, balancers=2)


def two_views(memory: SharedMemory, key: str = "b m1", **params: object) -> tuple[MemberState, ...]:
    other = SharedMemory.attach(memory.fd)  # another process's mapping of the same file
    p = MemberParams(**params)  # type: ignore[arg-type]
    return (
        memory.member(key, "m1", p, configure=False),
        other.member(key, "m1", p, configure=False),
    )


def test_a_new_slot_is_filled_from_the_member_parameters(memory: SharedMemory) -> None:
    a, _ = two_views(memory, loadfactor=3, route="node1", lbset=2, status="H", retry=5)
    assert (a.lbfactor, a.route, a.lbset, a.retry, a.standby) == (300, "node1", 2, 5.0, True)
    assert (a.lbstatus, a.busy, a.elected, a.redirect) == (0, 0, 0, None)


def test_two_views_of_one_slot_see_each_others_writes(memory: SharedMemory) -> None:
    a, b = two_views(memory)
    a.lbstatus = -7
    a.request_started()
    a.add_traffic(sent=10, received=20)
    a.put_in_error(now=12.5)
    a.route = "n1"
    assert (b.lbstatus, b.busy, b.transferred, b.read) == (-7, 1, 10, 20)
    assert (b.in_error, b.error_time, b.errors, b.route) == (True, 12.5, 1, "n1")
    b.request_done()
    b.set_status(Status.DISABLED, True)
    assert a.busy == 0
    assert a.letters == "DE"


def test_an_existing_slot_keeps_its_state_for_a_new_process(memory: SharedMemory) -> None:
    a, _ = two_views(memory, loadfactor=2)
    a.set_status(Status.DISABLED, True)
    a.lbstatus = 5
    later = SharedMemory.attach(memory.fd).member(
        "b m1", "m1", MemberParams(loadfactor=4), configure=False
    )
    assert (later.lbfactor, later.lbstatus, later.letters) == (200, 5, "D")


def test_a_reload_configures_the_slot_but_keeps_the_runtime_flags(memory: SharedMemory) -> None:
    a, _ = two_views(memory, loadfactor=2)
    a.put_in_error(now=1.0)
    a.set_status(Status.DISABLED, True)
    a.lbstatus = 5
    new = memory.member("b m1", "m1", MemberParams(loadfactor=4, route="r"), configure=True)
    assert (new.lbfactor, new.route, new.lbstatus, new.letters) == (400, "r", 5, "E")


def test_members_have_a_slot_each_and_the_slots_run_out(memory: SharedMemory) -> None:
    states = [memory.member(f"b m{i}", "m", MemberParams(), configure=False) for i in range(8)]
    states[0].lbstatus = 1
    assert [s.lbstatus for s in states] == [1, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(SlotError):
        memory.member("b m8", "m", MemberParams(), configure=False)


def test_a_string_longer_than_its_slot_is_refused(memory: SharedMemory) -> None:
    state = memory.member("b m1", "m1", MemberParams(), configure=False)
    with pytest.raises(SlotError):
        state.route = "r" * 257


def test_balancer_parameters_changed_in_one_view_apply_in_the_other(memory: SharedMemory) -> None:
    configured = BalancerParams(stickysession=("JSESSIONID",), failonstatus=frozenset({503}))
    a = memory.balancer("c", configured, 1, "nonce-a", configure=False)
    b = SharedMemory.attach(memory.fd).balancer("c", configured, 1, "nonce-b", configure=False)
    assert b.nonce == a.nonce == "nonce-a"
    a.params = replace(a.params, lbmethod="bybusyness", nofailover=True, timeout=3.0)
    a.max_attempts = 4
    assert (b.params.lbmethod, b.params.nofailover, b.params.timeout) == ("bybusyness", True, 3.0)
    assert (b.params.stickysession, b.params.failonstatus) == (("JSESSIONID",), frozenset({503}))
    assert b.max_attempts == 4


def balancer(memory: SharedMemory, factors: tuple[int, ...]) -> BalancerRuntime:
    where = Location("lb.ini", 1)
    urls = [URL(Scheme.HTTP, "127.0.0.1", 8000 + i, "") for i in range(len(factors))]
    members = tuple(
        Member(u, MemberParams(loadfactor=f), where) for u, f in zip(urls, factors, strict=True)
    )
    config = Balancer("c", members, BalancerParams(), where)
    workers = [
        Worker(
            None,
            m.url,
            m.params,
            60.0,
            state=memory.member(f"c {m.url}", str(m.url), m.params, configure=False),
        )
        for m in members
    ]
    return BalancerRuntime(config, workers, shared=memory)


def test_byrequests_is_exact_across_two_interleaved_processes(memory: SharedMemory) -> None:
    """Two workers with their own mappings, taking turns unevenly, still give exactly 1:3."""
    one = balancer(memory, (1, 3))
    two = balancer(SharedMemory.attach(memory.fd), (1, 3))
    chosen: list[str] = []
    for i in range(400):
        runtime = one if i % 3 else two
        worker, _ = runtime.select(b"/", [], now=0.0)
        assert worker is not None
        chosen.append(worker.name)
        worker.lb.request_done()
    assert chosen.count("http://127.0.0.1:8000") == 100
    assert chosen.count("http://127.0.0.1:8001") == 300
    assert one.states[0].elected == 100


def test_the_whole_selection_holds_the_lock(
    memory: SharedMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = balancer(memory, (1, 1))
    seen: list[bool] = []
    lock = runtime.lock
    assert isinstance(lock, SharedLock)

    def spy(*args: object, **kw: object) -> object:
        seen.append(lock.held)
        return select_member(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("ajpbalancer.proxy._workers.select_member", spy)
    runtime.select(b"/", [], now=0.0)
    assert seen == [True]
    assert not lock.held


def test_read_modify_writes_hold_the_lock(memory: SharedMemory) -> None:
    state = memory.member("b m1", "m1", MemberParams(), configure=False)
    assert isinstance(state, SharedMemberState)
    seen: list[bool] = []

    class Watch(SharedLock):
        def __enter__(self) -> None:
            super().__enter__()
            seen.append(True)

    state.lock = Watch(memory.fd)
    state.request_started()
    state.add_traffic(sent=1)
    state.put_in_error(now=0.0)
    state.retry_worker(now=100.0)
    state.set_status(Status.DRAIN, True)
    state.request_done()
    assert len(seen) == 6
