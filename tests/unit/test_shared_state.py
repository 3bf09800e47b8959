"""Balancer state in shared memory (slotmem_shm's counterpart): views of one file agree."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ajpbalancer.balancer import MemberState, Status, select_member
from ajpbalancer.config import URL, Balancer, BalancerParams, Location, Member, MemberParams, Scheme
from ajpbalancer.members import MemberRuntime
from ajpbalancer.proxy import BalancerRuntime
from ajpbalancer.shm import SharedLock, SharedMemberState, SharedMemory, SlotError


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
    a, _ = two_views(memory, loadfactor=3, route="node1", lbset=2, status=frozenset("H"), retry=5)
    assert (a.lbfactor, a.route, a.lbset, a.retry, a.standby) == (300, "node1", 2, 5.0, True)
    assert (a.lbstatus, a.busy, a.elected, a.redirect) == (0, 0, 0, None)


def test_two_views_of_one_slot_see_each_others_writes(memory: SharedMemory) -> None:
    a, b = two_views(memory)
    a.lbstatus = -7
    a.request_started()
    a.add_traffic(sent=10, received=20)
    a.request_done()  # publishes the traffic
    a.request_started()
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
    runtimes = [
        MemberRuntime(
            None,
            m.url,
            m.params,
            60.0,
            state=memory.member(f"c {m.url}", str(m.url), m.params, configure=False),
        )
        for m in members
    ]
    return BalancerRuntime(config, runtimes, shared=memory)


def test_byrequests_is_exact_across_two_interleaved_processes(memory: SharedMemory) -> None:
    """Two workers with their own mappings, taking turns unevenly, still give exactly 1:3."""
    one = balancer(memory, (1, 3))
    two = balancer(SharedMemory.attach(memory.fd), (1, 3))
    chosen: list[str] = []
    for i in range(400):
        runtime = one if i % 3 else two
        member, _ = runtime.select(b"/", [], now=0.0)
        assert member is not None
        chosen.append(member.name)
        member.lb.request_done()
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

    monkeypatch.setattr("ajpbalancer.proxy._balancers.select_member", spy)
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
    state.put_in_error(now=0.0)
    state.retry_member(now=100.0)
    state.set_status(Status.DRAIN, True)
    state.request_done()
    assert len(seen) == 5


# -- fewer lock round trips per request ------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lockf_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ``lockf`` the shared state makes: each a system call."""
    calls: list[int] = []
    real = fcntl.lockf

    def spy(fd: int, cmd: int, *args: int) -> None:
        calls.append(cmd)
        real(fd, cmd, *args)

    monkeypatch.setattr("ajpbalancer.shm._balancer.fcntl.lockf", spy)
    return calls


def shared(memory: SharedMemory, key: str = "b m1") -> SharedMemberState:
    state = memory.member(key, "m1", MemberParams(), configure=False)
    assert isinstance(state, SharedMemberState)
    return state


def test_traffic_takes_no_lock_and_is_published_when_the_request_is_done(
    memory: SharedMemory, lockf_calls: list[int]
) -> None:
    state, clock = shared(memory), Clock()
    state.clock = clock
    other = shared(SharedMemory.attach(memory.fd))
    state.request_started()
    state.add_traffic(sent=100)  # the first publishes (nothing published for a second)
    del lockf_calls[:]
    for _ in range(50):
        state.add_traffic(sent=3, received=7)
    assert lockf_calls == []
    assert (other.transferred, other.read) == (100, 0)
    state.request_done()
    assert len(lockf_calls) == 2  # one lock and unlock: busy and traffic together
    assert (other.busy, other.transferred, other.read) == (0, 250, 350)


def test_a_long_transfer_publishes_its_traffic_once_a_second(memory: SharedMemory) -> None:
    state, clock = shared(memory), Clock()
    state.clock = clock
    other = shared(SharedMemory.attach(memory.fd))
    state.request_started()
    state.add_traffic(received=1)
    for _ in range(9):
        clock.now += 0.1
        state.add_traffic(received=10)
    assert other.read == 1  # 0.9 s: still this process's
    clock.now += 0.1
    state.add_traffic(received=10)
    assert other.read == 101
    clock.now += 0.5
    state.add_traffic(received=10)
    state.request_done()
    assert other.read == 111


def test_a_request_takes_the_lock_once_to_start_and_once_to_end(
    memory: SharedMemory, lockf_calls: list[int]
) -> None:
    direct = shared(memory, "direct m")
    runtime = balancer(memory, (1, 3))
    for state in (direct, *runtime.states):
        state.add_traffic(sent=1)  # each publishes its first bytes at once
    del lockf_calls[:]
    direct.request_started()
    for _ in range(20):
        direct.add_traffic(received=4096)
    direct.request_done()
    member, _ = runtime.select(b"/", [], now=0.0)
    assert member is not None
    member.lb.add_traffic(sent=10)
    for _ in range(20):
        member.lb.add_traffic(received=4096)
    member.lb.request_done()
    assert len(lockf_calls) == 2 * 2 * 2
    assert (direct.read, member.lb.read, member.lb.transferred) == (81920, 81920, 11)


def test_a_selection_publishes_this_processs_traffic_first(memory: SharedMemory) -> None:
    """bytraffic counts every byte the choosing process moved, in flight or not."""
    runtime = balancer(memory, (1, 1))
    runtime.params = replace(runtime.params, lbmethod="bytraffic")
    first, second = runtime.states
    first.add_traffic(received=1)  # published at once
    first.add_traffic(received=100_000)  # pending: the request is in flight
    assert first.read == 1
    member, _ = runtime.select(b"/", [], now=0.0)
    assert member is not None
    assert member.lb is second
    assert first.read == 100_001


def test_two_states_of_one_slot_count_pending_traffic_once(memory: SharedMemory) -> None:
    """A reload makes a new state for a slot while the old one's requests are in flight."""
    old = shared(memory)
    old.add_traffic(sent=1)
    old.request_started()
    old.add_traffic(sent=10)
    new = shared(memory)  # the reloaded runtime's, in the same process
    new.transferred = old.transferred  # what a reload's carry-over does
    new.request_started()
    new.add_traffic(sent=5)
    new.request_done()
    old.request_done()
    assert (old.transferred, new.transferred, new.busy) == (16, 16, 0)


def test_the_flag_reads_agree_with_a_private_state(memory: SharedMemory) -> None:
    state = shared(memory)
    private = MemberState.from_params("m1", MemberParams())
    for bits in range(1 << len(Status)):
        flags = Status(0)
        for i, flag in enumerate(Status):
            if bits >> i & 1:
                flags |= flag
        state.status = private.status = flags
        assert state.usable is private.usable
        assert [state.has(f) for f in Status] == [private.has(f) for f in Status]
        assert (state.draining, state.standby, state.spare, state.in_error) == (
            private.draining,
            private.standby,
            private.spare,
            private.in_error,
        )


def test_traffic_and_busy_from_two_processes_add_up_exactly(memory: SharedMemory) -> None:
    """Two real processes (fork) counting requests at once lose no byte and no decrement."""
    state = shared(memory)
    rounds = 2000

    def serve() -> None:
        for _ in range(rounds):
            state.request_started()
            state.add_traffic(sent=3)
            state.add_traffic(received=5)
            state.request_done()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            serve()
        finally:
            os._exit(0)
    serve()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert (state.busy, state.transferred, state.read) == (0, 2 * 3 * rounds, 2 * 5 * rounds)
