"""Load-balancing methods: Apache's request counting, reproduced from its documentation.

The examples are mod_lbmethod_byrequests's own ("Request Counting Algorithm"). Loadfactors
go through :func:`lbfactor` as the balancer does, so lbstatus is in hundredths; the rows
Apache documents are compared after dividing by 100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from math import gcd

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.balancer import LBMETHODS, LBState, byrequests, lbfactor


def members(*loadfactors: float) -> list[LBState]:
    return [LBState(lbfactor(f)) for f in loadfactors]


def statuses(states: Sequence[LBState]) -> tuple[int, ...]:
    """lbstatus in Apache's documented units (loadfactor, not hundredths)."""
    return tuple(s.lbstatus // 100 for s in states)


def schedule(states: list[LBState], picks: int, names: str = "abcdefgh") -> str:
    out = []
    for _ in range(picks):
        chosen = byrequests(states)
        assert chosen is not None
        out.append(names[next(i for i, s in enumerate(states) if s is chosen)])
    return "".join(out)


# -- lbfactor ----------------------------------------------------------------------------------


def test_lbfactor_is_loadfactor_in_hundredths_for_every_valid_integer() -> None:
    for loadfactor in range(1, 101):
        assert lbfactor(loadfactor) == loadfactor * 100


def test_lbfactor_keeps_two_decimals_of_a_fractional_loadfactor() -> None:
    assert lbfactor(2.5) == 250
    assert lbfactor(1.25) == 125


def test_new_state_starts_with_zero_counters() -> None:
    state = LBState(100)
    assert (state.lbstatus, state.elected, state.busy, state.transferred, state.read) == (
        0,
        0,
        0,
        0,
        0,
    )


# -- Apache's documented examples ----------------------------------------------------------


def test_apache_example_with_b_disabled_gives_the_documented_lbstatus_rows() -> None:
    a, b, c, d = members(25, 25, 25, 25)
    candidates = [a, c, d]  # b is disabled: not a candidate, its lbstatus never moves
    rows = []
    for _ in range(3):
        byrequests(candidates)
        rows.append(statuses([a, b, c, d]))
    assert rows == [(-50, 0, 25, 25), (-25, 0, -25, 50), (0, 0, 0, 0)]


def test_apache_example_with_b_disabled_schedules_a_c_d_repeatedly() -> None:
    a, _, c, d = members(25, 25, 25, 25)
    assert schedule([a, c, d], 12, "acd") == "acd" * 4


def test_apache_example_70_30_follows_the_documented_ten_step_cycle() -> None:
    states = members(70, 30)
    expected = [
        (-30, 30),
        (40, -40),
        (10, -10),
        (-20, 20),
        (-50, 50),
        (20, -20),
        (-10, 10),
        (-40, 40),
        (30, -30),
        (0, 0),
    ]
    for cycle in range(3):
        rows = []
        for _ in range(10):
            byrequests(states)
            rows.append(statuses(states))
        assert rows == expected, cycle


def test_apache_example_70_30_picks_seven_a_and_three_b_per_cycle() -> None:
    assert schedule(members(70, 30), 10, "ab") == "abaaabaaba"


def test_loadfactors_1_3_over_400_picks_give_exactly_100_and_300() -> None:
    a, b = members(1, 3)
    for _ in range(400):
        byrequests([a, b])
    assert (a.elected, b.elected) == (100, 300)


def test_loadfactors_1_4_1_give_exactly_1_4_1() -> None:
    states = members(1, 4, 1)
    for _ in range(600):
        byrequests(states)
    assert [s.elected for s in states] == [100, 400, 100]


def test_loadfactors_are_relative() -> None:
    """25,25,25,25 schedules exactly as 1,1,1,1 does."""
    assert schedule(members(25, 25, 25, 25), 40) == schedule(members(1, 1, 1, 1), 40)


def test_equal_loadfactors_give_plain_round_robin_in_configuration_order() -> None:
    assert schedule(members(1, 1, 1), 9) == "abcabcabc"


def test_ties_go_to_the_first_candidate() -> None:
    a, b = LBState(100, lbstatus=50), LBState(100, lbstatus=50)
    assert byrequests([a, b]) is a
    a, b = LBState(100), LBState(100)
    assert byrequests([b, a]) is b


def test_higher_lbstatus_wins_over_configuration_order() -> None:
    a, b = LBState(100, lbstatus=0), LBState(100, lbstatus=1)
    assert byrequests([a, b]) is b


# -- bookkeeping ---------------------------------------------------------------------------------


def test_chosen_member_has_the_total_of_the_candidates_lbfactors_subtracted() -> None:
    a, b, c = LBState(100), LBState(200), LBState(300)
    chosen = byrequests([a, b, c])
    assert chosen is c
    assert (a.lbstatus, b.lbstatus, c.lbstatus) == (100, 200, 300 - 600)


def test_only_the_chosen_member_is_counted_as_elected() -> None:
    a, b = members(1, 1)
    byrequests([a, b])
    assert (a.elected, b.elected) == (1, 0)


def test_members_that_are_not_candidates_are_left_untouched() -> None:
    a, b, c = members(1, 2, 3)
    for _ in range(10):
        byrequests([a, c])
    assert (b.lbstatus, b.elected) == (0, 0)


def test_byrequests_does_not_touch_busy_or_traffic_counters() -> None:
    a = LBState(100, busy=3, transferred=10, read=20)
    byrequests([a])
    assert (a.busy, a.transferred, a.read) == (3, 10, 20)


def test_a_single_candidate_is_always_chosen_and_its_lbstatus_stays_zero() -> None:
    (a,) = members(7)
    for _ in range(5):
        assert byrequests([a]) is a
        assert a.lbstatus == 0
    assert a.elected == 5


# -- the registry ---------------------------------------------------------------------------------


def test_byrequests_is_registered_under_its_apache_name() -> None:
    assert LBMETHODS["byrequests"] is byrequests


@pytest.mark.parametrize("name", sorted(LBMETHODS))
def test_every_lbmethod_returns_none_without_candidates(name: str) -> None:
    assert LBMETHODS[name]([]) is None


@pytest.mark.parametrize("name", sorted(LBMETHODS))
def test_every_lbmethod_picks_one_of_the_candidates(name: str) -> None:
    candidates = members(1, 2, 3)
    for _ in range(20):
        chosen = LBMETHODS[name](candidates)
        assert any(chosen is c for c in candidates)


@pytest.mark.parametrize("name", sorted(LBMETHODS))
def test_every_lbmethod_counts_each_pick_as_one_election(name: str) -> None:
    candidates = members(1, 2, 3)
    for _ in range(30):
        LBMETHODS[name](candidates)
    assert sum(s.elected for s in candidates) == 30


# -- properties ----------------------------------------------------------------------------------

loadfactor_lists = st.lists(st.integers(1, 100), min_size=1, max_size=6)


@given(loadfactors=loadfactor_lists)
def test_one_period_elects_each_member_exactly_its_share_and_resets_lbstatus(
    loadfactors: list[int],
) -> None:
    states = members(*loadfactors)
    divisor = gcd(*loadfactors)
    period = sum(loadfactors) // divisor
    for _ in range(period):
        byrequests(states)
    assert [s.elected for s in states] == [f // divisor for f in loadfactors]
    assert all(s.lbstatus == 0 for s in states)


@given(loadfactors=loadfactor_lists, picks=st.integers(0, 300))
def test_lbstatus_always_sums_to_zero(loadfactors: list[int], picks: int) -> None:
    states = members(*loadfactors)
    for _ in range(picks):
        byrequests(states)
        assert sum(s.lbstatus for s in states) == 0


@given(loadfactors=loadfactor_lists, picks=st.integers(1, 200))
def test_elected_counts_exactly_the_picks_of_each_member(
    loadfactors: list[int], picks: int
) -> None:
    states = members(*loadfactors)
    chosen = Counter(id(byrequests(states)) for _ in range(picks))
    assert sum(chosen.values()) == picks
    assert [chosen[id(s)] for s in states] == [s.elected for s in states]
