"""The finder, member state and failover bookkeeping, against httpd's sources and documentation.

Sources: ``proxy_balancer_get_best_worker`` and ``ap_proxy_retry_worker`` (proxy_util.c),
``force_recovery``/``pre_request``/``post_request`` (mod_proxy_balancer.c), the three
``mod_lbmethod_*.c``, and the "Request Counting Algorithm" tables of
mod_lbmethod_byrequests's documentation. Time is a plain float passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ajpbalancer.balancer import (
    LBMETHODS,
    NOT_USABLE,
    STATUS_LETTERS,
    MemberState,
    Status,
    bybusyness,
    byrequests,
    bytraffic,
    charge_sticky_hit,
    find_best,
    force_recovery,
    lbfactor,
    max_attempts,
    post_request,
    select_member,
    status_from_letters,
)
from ajpbalancer.config import LBMETHODS as CONFIG_LBMETHODS
from ajpbalancer.config import URL, BalancerParams, Location, Member, MemberParams, Scheme


def member(
    name: str,
    loadfactor: float = 1,
    *,
    status: str = "",
    lbset: int = 0,
    route: str | None = None,
    retry: float = 60.0,
) -> MemberState:
    return MemberState(
        lbfactor(loadfactor),
        name=name,
        status=status_from_letters(status),
        lbset=lbset,
        route=route,
        retry=retry,
    )


def names(members: Sequence[MemberState], picks: int, method: str = "byrequests") -> str:
    out = []
    for _ in range(picks):
        chosen = find_best(members, method, now=0.0)
        out.append("-" if chosen is None else chosen.name)
    return "".join(out)


def statuses(members: Sequence[MemberState]) -> tuple[int, ...]:
    return tuple(m.lbstatus // 100 for m in members)


# -- member state ----------------------------------------------------------------------------


def test_status_letters_are_mod_proxy_h_bits() -> None:
    assert {letter: int(flag) for letter, flag in STATUS_LETTERS.items()} == {
        "I": 0x0002,
        "N": 0x0004,
        "U": 0x0010,
        "D": 0x0020,
        "S": 0x0040,
        "E": 0x0080,
        "H": 0x0100,
        "C": 0x0400,
        "R": 0x0800,
    }


@pytest.mark.parametrize("letter", sorted(STATUS_LETTERS))
def test_usable_is_false_exactly_for_the_not_usable_bitmap_letters(letter: str) -> None:
    m = member("a", status=letter)
    assert m.usable is (letter not in "UDSEC")
    assert bool(STATUS_LETTERS[letter] & NOT_USABLE) is (letter not in "INHR")


def test_status_letters_parse_case_insensitively_and_show_in_table_order() -> None:
    m = member("a", status="hE")
    assert m.status == Status.HOT_STANDBY | Status.IN_ERROR
    assert m.letters == "EH"


def test_set_status_sets_and_clears_one_flag() -> None:
    m = member("a", status="H")
    m.set_status(Status.DRAIN, True)
    m.set_status(Status.HOT_STANDBY, False)
    assert m.letters == "N"


def test_member_state_from_config_takes_route_redirect_lbset_retry_status_and_lbfactor() -> None:
    params = MemberParams(
        route="node1",
        redirect="node2",
        loadfactor=2.5,
        lbset=3,
        status=frozenset({"H", "I"}),
        retry=5.0,
    )
    config = Member(URL(Scheme.AJP, "127.0.0.2", 8009, ""), params, Location("lb.ini", 1))
    m = MemberState.from_member(config)
    assert (m.name, m.route, m.redirect, m.lbset, m.retry) == (
        "ajp://127.0.0.2:8009",
        "node1",
        "node2",
        3,
        5.0,
    )
    assert (m.lbfactor, m.lbstatus, m.elected, m.busy) == (250, 0, 0, 0)
    assert m.status == Status.HOT_STANDBY | Status.IGNORE_ERRORS


def test_members_compare_by_identity() -> None:
    a, b = member("a"), member("a")
    assert a != b
    assert a == a  # noqa: PLR0124 -- identity is the point
    assert len({a, b}) == 2


def test_put_in_error_records_the_time_and_makes_the_member_unusable() -> None:
    m = member("a")
    assert m.put_in_error(100.0) is True
    assert (m.in_error, m.usable, m.error_time) == (True, False, 100.0)


def test_put_in_error_is_ignored_with_ignore_errors() -> None:
    m = member("a", status="I")
    assert m.put_in_error(100.0) is False
    assert (m.in_error, m.usable) == (False, True)


def test_retry_member_clears_the_error_only_strictly_after_retry_seconds() -> None:
    m = member("a", retry=60.0)
    m.put_in_error(100.0)
    assert m.retry_member(160.0) is False
    assert m.in_error
    assert m.retry_member(160.001) is True
    assert (m.in_error, m.usable, m.retries) == (False, True, 1)


def test_retry_zero_retries_at_any_later_time() -> None:
    m = member("a", retry=0.0)
    m.put_in_error(100.0)
    assert m.retry_member(100.0) is False
    assert m.retry_member(100.000001) is True


def test_retry_member_clears_an_error_at_once_with_ignore_errors() -> None:
    m = member("a", status="EI")
    assert m.retry_member(0.0) is True
    assert (m.in_error, m.retries) == (False, 1)


def test_a_stopped_member_in_error_is_never_retried() -> None:
    m = member("a", status="SE")
    assert m.retry_member(1e9) is False
    assert (m.in_error, m.retries) == (True, 0)


def test_retry_member_leaves_a_member_not_in_error_alone() -> None:
    m = member("a", status="D")
    assert m.retry_member(1e9) is True
    assert (m.letters, m.retries, m.usable) == ("D", 0, False)


def test_request_done_decrements_busy_but_never_below_zero() -> None:
    m = member("a")
    m.busy = 1
    m.request_done()
    m.request_done()
    assert m.busy == 0


def test_add_traffic_counts_bytes_to_and_from_the_member() -> None:
    m = member("a")
    m.add_traffic(sent=10, received=5)
    m.add_traffic(received=7)
    assert (m.transferred, m.read) == (10, 12)


# -- the registry ----------------------------------------------------------------------------


def test_registry_holds_exactly_the_lbmethods_the_config_accepts() -> None:
    assert set(LBMETHODS) == set(CONFIG_LBMETHODS)
    assert (LBMETHODS["byrequests"], LBMETHODS["bytraffic"], LBMETHODS["bybusyness"]) == (
        byrequests,
        bytraffic,
        bybusyness,
    )


@pytest.mark.parametrize("method", sorted(LBMETHODS))
def test_find_best_accepts_an_lbmethod_by_name_or_as_the_function(method: str) -> None:
    one, two = [member("a"), member("b")], [member("a"), member("b")]
    assert names(one, 6, method) == "".join(
        m.name for m in (find_best(two, LBMETHODS[method], 0.0) for _ in range(6)) if m
    )


@pytest.mark.parametrize("method", sorted(LBMETHODS))
def test_no_members_or_none_usable_gives_none(method: str) -> None:
    assert find_best([], method, 0.0) is None
    assert find_best([member("a", status="D"), member("b", status="S")], method, 0.0) is None


# -- byrequests: Apache's documented tables through the finder ------------------------------------


def test_documented_table_four_members_at_25_with_b_disabled() -> None:
    members = [member("a", 25), member("b", 25, status="D"), member("c", 25), member("d", 25)]
    rows = []
    for _ in range(3):
        find_best(members, "byrequests", 0.0)
        rows.append(statuses(members))
    assert rows == [(-50, 0, 25, 25), (-25, 0, -25, 50), (0, 0, 0, 0)]


def test_documented_schedule_with_b_disabled_is_a_c_d_repeated() -> None:
    members = [member("a", 25), member("b", 25, status="D"), member("c", 25), member("d", 25)]
    assert names(members, 12) == "acd" * 4


def test_documented_ten_step_table_70_30() -> None:
    members = [member("a", 70), member("b", 30)]
    rows = []
    for _ in range(10):
        find_best(members, "byrequests", 0.0)
        rows.append(statuses(members))
    assert rows == [
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
    assert [m.elected for m in members] == [7, 3]


def test_loadfactors_1_4_1_give_1_4_1_exactly() -> None:
    members = [member("a", 1), member("b", 4), member("c", 1)]
    assert Counter(names(members, 600)) == {"a": 100, "b": 400, "c": 100}


# -- bytraffic and bybusyness --------------------------------------------------------------------


def test_bytraffic_documented_1_1_3_gives_c_three_times_the_requests_of_equal_size() -> None:
    members = [member("a", 1), member("b", 1), member("c", 3)]
    for _ in range(500):
        chosen = find_best(members, "bytraffic", 0.0)
        assert chosen is not None
        chosen.add_traffic(sent=600, received=400)
    assert [m.elected for m in members] == [100, 100, 300]


def test_bytraffic_divides_each_direction_by_lbfactor_with_integer_truncation() -> None:
    # a: 199//100 + 199//100 = 2 ; b: 300//100 + 0 = 3. Exact division would give 3.98 > 3.
    a, b = member("a"), member("b")
    a.transferred, a.read, b.transferred = 199, 199, 300
    assert bytraffic([a, b]) is a


def test_bytraffic_prefers_the_member_with_less_traffic_per_lbfactor() -> None:
    a, b = member("a", 1), member("b", 2)
    a.read, b.read = 1000, 1500  # per lbfactor: 10 against 7
    assert bytraffic([a, b]) is b


def test_bytraffic_ties_go_to_the_first_and_lbstatus_is_untouched() -> None:
    a, b = member("a"), member("b")
    assert bytraffic([a, b]) is a
    assert (a.lbstatus, b.lbstatus, a.elected) == (0, 0, 1)


def test_bybusyness_picks_the_fewest_requests_in_flight() -> None:
    a, b, c = member("a"), member("b"), member("c")
    a.busy, b.busy, c.busy = 2, 0, 1
    assert bybusyness([a, b, c]) is b


def test_bybusyness_breaks_ties_by_byrequests_lbstatus() -> None:
    a, b = member("a"), member("b")
    a.lbstatus, b.lbstatus = 0, 50
    assert bybusyness([a, b]) is b
    assert (a.lbstatus, b.lbstatus) == (100, 150 - 200)


def test_bybusyness_with_requests_finishing_at_once_schedules_as_byrequests() -> None:
    busy = [member("a", 1), member("b", 3), member("c", 2)]
    counting = [member("a", 1), member("b", 3), member("c", 2)]
    assert names(busy, 60, "bybusyness") == names(counting, 60, "byrequests")


def test_bybusyness_through_select_member_spreads_requests_that_stay_in_flight() -> None:
    members = [member("a", 1), member("b", 100)]
    params = BalancerParams(lbmethod="bybusyness")
    picked = [select_member(members, params, b"/", [], 0.0).member for _ in range(4)]
    assert [m.name for m in picked if m] == ["b", "a", "b", "a"]
    assert [m.busy for m in members] == [2, 2]


# -- lbset tiers, hot standby, spares, drain ------------------------------------------------------


def test_lower_lbset_is_used_while_any_of_its_members_is_usable() -> None:
    members = [member("b", lbset=1), member("a", lbset=0), member("c", lbset=1)]
    assert names(members, 4) == "aaaa"
    members[1].put_in_error(0.0)
    assert names(members, 4) == "bcbc"


def test_empty_lbsets_in_between_are_skipped() -> None:
    members = [member("a", status="E", lbset=0), member("b", lbset=5)]
    assert names(members, 2) == "bb"


def test_hot_standby_serves_only_when_no_other_member_of_its_lbset_is_usable() -> None:
    members = [member("a"), member("s", status="H"), member("b")]
    assert names(members, 4) == "abab"
    members[0].put_in_error(0.0)
    assert names(members, 2) == "bb"
    members[2].set_status(Status.DISABLED, True)
    assert names(members, 2) == "ss"


def test_hot_standbys_share_by_lbmethod_among_themselves() -> None:
    members = [
        member("a", status="D"),
        member("s", status="H", loadfactor=1),
        member("t", status="H", loadfactor=2),
    ]
    assert Counter(names(members, 30)) == {"s": 10, "t": 20}


def test_hot_standby_of_the_lowest_lbset_comes_before_a_higher_lbset() -> None:
    members = [member("a", status="E"), member("s", status="H"), member("b", lbset=1)]
    assert names(members, 2) == "ss"


def test_an_unusable_hot_standby_lets_the_next_lbset_serve() -> None:
    members = [member("a", status="E"), member("s", status="HD"), member("b", lbset=1)]
    assert names(members, 2) == "bb"


def test_spare_stays_idle_while_every_regular_member_is_usable() -> None:
    members = [member("a"), member("r", status="R"), member("b")]
    assert names(members, 6) == "ababab"


def test_one_spare_replaces_each_unusable_regular_member() -> None:
    members = [
        member("a", status="E"),
        member("r", status="R"),
        member("q", status="R"),
        member("b"),
    ]
    assert set(names(members, 6)) == {"b", "r"}  # one unusable: only the first spare
    members[3].set_status(Status.STOPPED, True)
    assert set(names(members, 6)) == {"r", "q"}


def test_spares_alone_serve_nothing_since_they_only_replace_unusable_members() -> None:
    members = [member("r", status="R"), member("b", lbset=1)]
    assert names(members, 2) == "bb"
    assert find_best([member("r", status="R")], "byrequests", 0.0) is None


def test_a_draining_member_counts_as_unusable_and_a_spare_replaces_it() -> None:
    members = [member("a", status="N"), member("r", status="R"), member("b")]
    assert set(names(members, 4)) == {"r", "b"}


def test_draining_spares_and_standbys_are_skipped_without_counting() -> None:
    members = [member("a"), member("r", status="RN"), member("s", status="HN")]
    assert names(members, 2) == "aa"
    members[0].put_in_error(0.0)
    assert names(members, 2) == "--"


def test_a_draining_member_gets_no_new_sessions() -> None:
    members = [member("a", status="N"), member("b")]
    assert names(members, 4) == "bbbb"
    assert members[0].lbstatus == 0


def test_only_draining_members_give_none() -> None:
    assert find_best([member("a", status="N"), member("b", status="N")], "byrequests", 0.0) is None


# -- retry and error state in the finder -----------------------------------------------------


def test_a_member_in_error_comes_back_after_retry_seconds() -> None:
    members = [member("a", retry=30), member("b")]
    members[0].put_in_error(1000.0)
    assert find_best(members, "byrequests", 1010.0) is members[1]
    assert find_best(members, "byrequests", 1030.0) is members[1]
    chosen = find_best(members, "byrequests", 1030.5)
    assert not members[0].in_error
    assert members[0].retries == 1
    assert chosen is members[0]


def test_status_plus_e_starts_in_error_and_is_retried_after_retry() -> None:
    members = [member("a", status="E", retry=60), member("b")]
    assert names(members, 2) == "bb"
    assert find_best(members, "byrequests", 61.0) is members[0]


def test_ignore_errors_member_in_error_is_retried_at_once_by_the_finder() -> None:
    members = [member("a", status="IE"), member("b")]
    assert find_best(members, "byrequests", 0.0) is members[0]


def test_a_stopped_member_never_comes_back() -> None:
    members = [member("a", status="SE", retry=0), member("b")]
    assert names(members, 3) == "bbb"


def test_members_of_higher_lbsets_are_not_retried_while_a_lower_one_serves() -> None:
    members = [member("a"), member("b", status="E", lbset=1, retry=0)]
    find_best(members, "byrequests", 100.0)
    assert (members[1].in_error, members[1].retries) == (True, 0)


# -- force recovery --------------------------------------------------------------------------


def test_forcerecovery_clears_the_error_of_every_member_when_all_are_in_error() -> None:
    members = [member("a"), member("b")]
    for m in members:
        m.put_in_error(100.0)
    assert force_recovery(members, 101.0) is True
    assert [(m.in_error, m.retries) for m in members] == [(False, 1), (False, 1)]


def test_forcerecovery_off_leaves_them_in_error() -> None:
    members = [member("a", status="E"), member("b", status="E")]
    assert force_recovery(members, 1.0, enabled=False) is False
    assert all(m.in_error for m in members)


def test_no_recovery_is_forced_while_one_member_is_not_in_error_even_if_disabled() -> None:
    members = [member("a", status="E"), member("b", status="D")]
    assert force_recovery(members, 1.0) is False
    assert members[0].in_error


def test_an_ordinary_retry_during_the_check_prevents_forcing() -> None:
    members = [member("a", status="E", retry=10), member("b", status="E", retry=1000)]
    assert force_recovery(members, 11.0) is False
    assert (members[0].in_error, members[1].in_error) == (False, True)


def test_forced_recovery_also_clears_the_error_of_a_stopped_member_which_stays_stopped() -> None:
    members = [member("a", status="SE"), member("b", status="E")]
    assert force_recovery(members, 0.0) is True
    assert (members[0].letters, members[0].usable) == ("S", False)


def test_forcerecovery_with_no_members_does_nothing() -> None:
    assert force_recovery([], 0.0) is False


def test_select_member_forces_recovery_before_answering_503() -> None:
    members = [member("a", status="E"), member("b", status="E")]
    selection = select_member(members, BalancerParams(), b"/", [], 0.0)
    assert selection.member is members[0]
    off = [member("a", status="E"), member("b", status="E")]
    selection = select_member(off, BalancerParams(forcerecovery=False), b"/", [], 0.0)
    assert (selection.member, selection.status) == (None, 503)


# -- sticky hits count against the member's share --------------------------------------------


def test_sticky_hit_charges_the_chosen_member_the_total_of_usable_lbfactors() -> None:
    a, b, c = member("a"), member("b"), member("c", status="D")
    charge_sticky_hit([a, b, c], b)
    assert (a.lbstatus, b.lbstatus, c.lbstatus) == (100, -100, 0)
    assert (a.elected, b.elected) == (0, 1)


def test_requests_routed_to_b_make_the_next_balanced_requests_go_to_a() -> None:
    params = BalancerParams(stickysession=("JSESSIONID", "jsessionid"))
    a, b = member("a", route="node1"), member("b", route="node2")
    for _ in range(3):
        routed = select_member([a, b], params, b"/", [b"JSESSIONID=x.node2"], 0.0)
        assert routed.member is b
    balanced = [select_member([a, b], params, b"/", [], 0.0).member for _ in range(5)]
    assert [m.name for m in balanced if m] == ["a", "a", "a", "a", "b"]
    assert (a.elected, b.elected) == (4, 4)


# -- select_member and post_request ----------------------------------------------------------------


def test_select_member_counts_the_request_as_busy_until_it_is_done() -> None:
    members = [member("a")]
    selection = select_member(members, BalancerParams(), b"/", [], 0.0)
    assert selection.member is members[0]
    assert members[0].busy == 1
    members[0].request_done()
    assert members[0].busy == 0


def test_balanced_request_without_stickysession_is_not_a_route_change() -> None:
    selection = select_member([member("a")], BalancerParams(), b"/", [], 0.0)
    assert (selection.route, selection.sticky, selection.route_changed) == (None, None, False)


def test_balanced_request_with_stickysession_is_a_route_change() -> None:
    params = BalancerParams(stickysession=("JSESSIONID",))
    selection = select_member([member("a", route="n1")], params, b"/", [], 0.0)
    assert (selection.routed, selection.route_changed) == (False, True)


def test_no_usable_member_is_503() -> None:
    members = [member("a", status="D"), member("b", status="S")]
    selection = select_member(members, BalancerParams(), b"/", [], 0.0)
    assert (selection.member, selection.status) == (None, 503)


def test_failover_attempt_after_put_in_error_goes_to_the_next_member() -> None:
    members = [member("a"), member("b")]
    first = select_member(members, BalancerParams(), b"/", [], 0.0).member
    assert first is members[0]
    first.put_in_error(0.0)
    assert select_member(members, BalancerParams(), b"/", [], 0.0).member is members[1]


def test_failonstatus_puts_the_member_in_error() -> None:
    m = member("a")
    params = BalancerParams(failonstatus=frozenset({500, 503}))
    assert post_request(m, params, 200, False, 5.0) is False
    assert post_request(m, params, 503, False, 5.0) is True
    assert (m.in_error, m.error_time) == (True, 5.0)


def test_failontimeout_puts_the_member_in_error_only_when_set() -> None:
    m = member("a")
    assert post_request(m, BalancerParams(), 504, True, 1.0) is False
    assert post_request(m, BalancerParams(failontimeout=True), 504, True, 1.0) is True


def test_post_request_never_puts_an_ignore_errors_member_in_error() -> None:
    m = member("a", status="I")
    params = BalancerParams(failonstatus=frozenset({500}), failontimeout=True)
    assert post_request(m, params, 500, True, 1.0) is False
    assert not m.in_error


@pytest.mark.parametrize(
    ("configured", "members", "expected"),
    [(None, 1, 0), (None, 2, 1), (None, 5, 4), (0, 5, 0), (3, 1, 3), (None, 0, 0)],
)
def test_max_attempts_defaults_to_one_per_other_member(
    configured: int | None, members: int, expected: int
) -> None:
    assert max_attempts(BalancerParams(maxattempts=configured), members) == expected


# -- properties ------------------------------------------------------------------------------

flags = st.text(alphabet="DSIHNERC", max_size=4)
member_specs = st.lists(
    st.tuples(st.integers(1, 10), flags, st.integers(0, 2)), min_size=1, max_size=6
)


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(specs=member_specs, method=st.sampled_from(sorted(LBMETHODS)))
def test_the_finder_never_elects_an_unusable_or_draining_member(
    specs: list[tuple[int, str, int]], method: str
) -> None:
    members = [member(str(i), f, status=s, lbset=lb) for i, (f, s, lb) in enumerate(specs)]
    for _ in range(10):
        chosen = find_best(members, method, 0.0)
        if chosen is not None:
            assert chosen.usable
            assert not chosen.draining


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(
    specs=st.lists(
        st.tuples(st.integers(1, 10), st.text(alphabet="DSIHNEC", max_size=4), st.integers(0, 2)),
        min_size=1,
        max_size=6,
    )
)
def test_the_finder_elects_from_the_lowest_lbset_with_a_usable_non_draining_member(
    specs: list[tuple[int, str, int]],
) -> None:
    members = [member(str(i), f, status=s, lbset=lb) for i, (f, s, lb) in enumerate(specs)]
    chosen = find_best(members, "byrequests", 0.0)
    # After the call: the finder has retried every member of the tiers it looked at.
    eligible = [m.lbset for m in members if m.usable and not m.draining]
    if not eligible:
        assert chosen is None
    else:
        assert chosen is not None
        assert chosen.lbset == min(eligible)
