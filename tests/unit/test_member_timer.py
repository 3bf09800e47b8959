"""The member connections' inactivity timer: one pending call, reused across requests."""

from __future__ import annotations

from twisted.internet.task import Clock

from ajpbalancer.members._timer import IdleTimer


def make() -> tuple[Clock, IdleTimer, list[float]]:
    clock = Clock()
    fired: list[float] = []
    timer = IdleTimer(clock, 10.0, lambda: fired.append(clock.seconds()))
    return clock, timer, fired


def test_silence_for_the_whole_timeout_expires() -> None:
    clock, timer, fired = make()
    timer.start()
    clock.advance(9.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [10.0]


def test_touch_postpones_the_expiry() -> None:
    clock, timer, fired = make()
    timer.start()
    clock.advance(6)
    timer.touch()
    clock.advance(6)
    assert fired == []
    clock.advance(4)
    assert fired == [16.0]


def test_stop_keeps_the_call_but_it_never_expires() -> None:
    """Requests on a pooled connection do not schedule and cancel a call each."""
    clock, timer, fired = make()
    timer.start()
    timer.stop()
    assert len(clock.getDelayedCalls()) == 1
    timer.start()  # the next request reuses the pending call
    timer.stop()
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(10)
    assert fired == []
    assert clock.getDelayedCalls() == []  # the call ended on a stopped timer


def test_a_request_started_late_gets_its_whole_timeout() -> None:
    """The pending call of an earlier request fires early for this one: it re-arms."""
    clock, timer, fired = make()
    timer.start()
    timer.stop()
    clock.advance(8)
    timer.start()
    clock.advance(2)  # the old call fires at 10: only 2 s of silence
    assert fired == []
    clock.advance(7.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [18.0]


def test_paused_connections_do_not_time_out() -> None:
    clock, timer, fired = make()
    timer.start()
    timer.paused = True
    clock.advance(50)
    assert fired == []
    timer.paused = False
    timer.touch()
    clock.advance(10)
    assert fired == [60.0]


def test_cancel_removes_the_pending_call() -> None:
    clock, timer, fired = make()
    timer.start()
    timer.cancel()
    assert clock.getDelayedCalls() == []
    assert not timer.running
    clock.advance(20)
    assert fired == []
