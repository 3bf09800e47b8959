"""The supervisor's policy with an injected clock and spawner: restart, backoff, signals, stop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.task import Clock

from ajpbalancer.service._supervisor import Supervisor


@dataclass
class FakeProcess:
    pid: int | None
    on_exit: Callable[[int | None], None]
    signals: list[str | int] = field(default_factory=list)

    def signalProcess(self, signalID: str | int) -> None:
        self.signals.append(signalID)

    def exit(self, code: int | None) -> None:
        self.pid = None
        self.on_exit(code)


@dataclass
class FakeSpawner:
    started: list[FakeProcess] = field(default_factory=list)

    def __call__(self, on_exit: Callable[[int | None], None]) -> FakeProcess:
        process = FakeProcess(1000 + len(self.started), on_exit)
        self.started.append(process)
        return process


def supervisor(count: int = 2) -> tuple[Supervisor, FakeSpawner, Clock]:
    clock = Clock()
    spawner = FakeSpawner()
    sup = Supervisor(clock, spawner, count, min_uptime=1.0, backoff=0.5, max_backoff=4.0)
    sup.start()
    return sup, spawner, clock


def test_start_spawns_one_process_per_worker() -> None:
    sup, spawner, _ = supervisor(3)
    assert len(spawner.started) == 3
    assert sup.pids() == [1000, 1001, 1002]


def test_a_worker_that_ran_a_while_is_restarted_at_once() -> None:
    sup, spawner, clock = supervisor()
    clock.advance(5)
    spawner.started[0].exit(None)  # SIGKILL
    clock.advance(0)
    assert len(spawner.started) == 3
    assert sup.pids() == [1002, 1001]
    assert sup.restarts == 1


def test_a_worker_dying_at_once_repeatedly_backs_off_exponentially_up_to_the_cap() -> None:
    _sup, spawner, clock = supervisor(1)
    delays = []
    for _ in range(6):
        spawner.started[-1].exit(1)
        count = len(spawner.started)
        waited = 0.0
        while len(spawner.started) == count:
            clock.advance(0.25)
            waited += 0.25
        delays.append(waited)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_worker_that_lived_long_enough_resets_the_backoff() -> None:
    _sup, spawner, clock = supervisor(1)
    spawner.started[-1].exit(1)
    clock.advance(0.5)
    spawner.started[-1].exit(1)
    clock.advance(1.0)
    clock.advance(10)  # this one ran a while
    spawner.started[-1].exit(1)
    clock.advance(0)
    assert len(spawner.started) == 4


def test_signals_go_to_every_running_worker() -> None:
    sup, spawner, _ = supervisor()
    sup.signal_all("HUP")
    assert [p.signals for p in spawner.started] == [["HUP"], ["HUP"]]


def test_replace_all_restarts_each_worker_as_soon_as_it_exited() -> None:
    sup, spawner, clock = supervisor()
    sup.replace_all()
    assert [p.signals for p in spawner.started] == [["TERM"], ["TERM"]]
    spawner.started[0].exit(0)  # at once: not counted as a quick death
    clock.advance(0)
    assert len(spawner.started) == 3
    assert sup.slots[0].quick_deaths == 0


def test_stop_terminates_all_and_fires_when_all_exited_without_restarting() -> None:
    sup, spawner, clock = supervisor()
    fired: list[object] = []
    sup.stop().addCallback(fired.append)
    assert [p.signals for p in spawner.started] == [["TERM"], ["TERM"]]
    spawner.started[0].exit(0)
    assert fired == []
    spawner.started[1].exit(0)
    clock.advance(100)
    assert fired == [None]
    assert len(spawner.started) == 2
    assert [p.signals for p in spawner.started] == [["TERM"], ["TERM"]]  # no KILL


def test_stop_kills_workers_still_running_after_the_bound() -> None:
    sup, spawner, clock = supervisor()
    sup.stop()
    clock.advance(sup.kill_after)
    assert [p.signals for p in spawner.started] == [["TERM", "KILL"], ["TERM", "KILL"]]


def test_stop_cancels_a_pending_restart() -> None:
    sup, spawner, clock = supervisor(1)
    spawner.started[0].exit(1)  # quick death: restart pending
    fired: list[object] = []
    sup.stop().addCallback(fired.append)
    clock.advance(60)
    assert fired == [None]
    assert len(spawner.started) == 1


def test_a_worker_that_cannot_be_spawned_is_retried_with_backoff() -> None:
    clock = Clock()
    spawner = FakeSpawner()
    failures = [PermissionError(13, "Permission denied", "python")] * 2

    def spawn(on_exit: Callable[[int | None], None]) -> FakeProcess:
        if failures:
            raise failures.pop()
        return spawner(on_exit)

    sup = Supervisor(clock, spawn, 1, min_uptime=1.0, backoff=0.5, max_backoff=4.0)
    sup.start()  # does not raise: twistd keeps running and says why
    assert sup.pids() == []
    clock.advance(0.5)
    assert sup.pids() == []  # second failure: next try after 1 s
    clock.advance(0.9)
    assert sup.pids() == []
    clock.advance(0.1)
    assert sup.pids() == [1000]
