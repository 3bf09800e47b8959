"""Giving the heap back after many client connections closed (service/_heap.py)."""

from __future__ import annotations

from twisted.internet.task import Clock

from ajpbalancer.service._heap import INTERVAL, MIN_DROP, HeapTrimmer, glibc_malloc_trim


def trimmer() -> tuple[Clock, HeapTrimmer, list[int]]:
    clock = Clock()
    trims: list[int] = []
    heap = HeapTrimmer(clock, lambda: trims.append(len(trims)))
    heap.start()
    return clock, heap, trims


def crowd(heap: HeapTrimmer, opened: int, closed: int) -> None:
    for _ in range(opened):
        heap.opened()
    for _ in range(closed):
        heap.closed()


def test_the_heap_is_trimmed_once_after_the_connections_fell_to_half() -> None:
    clock, heap, trims = trimmer()
    crowd(heap, 500, 0)
    clock.advance(INTERVAL)
    assert trims == []
    crowd(heap, 0, 300)  # 200 left: fell by 300, to less than half
    clock.advance(INTERVAL)
    assert heap.trims == 1
    clock.advance(INTERVAL)  # the peak is now 200: nothing more
    assert heap.trims == 1


def test_a_crowd_that_came_and_went_between_two_looks_is_seen() -> None:
    clock, heap, _ = trimmer()
    crowd(heap, 500, 500)
    clock.advance(INTERVAL)
    assert heap.trims == 1


def test_a_small_drop_is_not_worth_a_trim() -> None:
    clock, heap, _ = trimmer()
    crowd(heap, MIN_DROP - 1, MIN_DROP - 1)  # to zero, but by fewer than MIN_DROP
    clock.advance(INTERVAL)
    assert heap.trims == 0


def test_a_drop_to_more_than_half_is_not_trimmed() -> None:
    clock, heap, _ = trimmer()
    crowd(heap, 1000, 400)
    clock.advance(INTERVAL)
    assert heap.trims == 0


def test_stop_ends_the_looks() -> None:
    clock, heap, _ = trimmer()
    heap.stop()
    assert clock.getDelayedCalls() == []


def test_without_a_trim_function_nothing_is_scheduled() -> None:
    clock = Clock()
    HeapTrimmer(clock, None).start()
    assert clock.getDelayedCalls() == []


def test_glibc_malloc_trim_is_found_and_runs() -> None:
    trim = glibc_malloc_trim()
    assert trim is not None  # Debian: glibc
    trim()
