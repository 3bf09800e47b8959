"""Sticky sessions as mod_proxy_balancer finds them: route extraction, route member, decision.

Sources: ``get_path_param``, ``get_cookie_param``, ``find_session_route``,
``find_route_worker`` and ``proxy_balancer_pre_request`` in mod_proxy_balancer.c, and the
reference's §1.7. Where httpd's code and its documentation differ, the code wins; the
quirks it has are pinned here so that nobody "fixes" them by accident.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ajpbalancer.balancer import (
    MemberState,
    StickyOutcome,
    find_route_member,
    find_session_route,
    get_cookie_param,
    get_path_param,
    lbfactor,
    route_decision,
    select_member,
    status_from_letters,
    sticky_names,
)
from ajpbalancer.config import BalancerParams

TOMCAT = ("JSESSIONID", "jsessionid")


def route_of(
    target: bytes = b"/",
    cookies: tuple[bytes, ...] = (),
    sticky: tuple[str, ...] = TOMCAT,
    sep: str | None = ".",
    scolon: bool = False,
) -> tuple[str, str] | None:
    return find_session_route(sticky, target, list(cookies), sep, scolon)


def member(
    name: str, route: str | None, status: str = "", redirect: str | None = None
) -> MemberState:
    return MemberState(
        lbfactor(1),
        name=name,
        route=route,
        redirect=redirect,
        status=status_from_letters(status),
    )


# -- stickysession names -----------------------------------------------------------------------


def test_stickysession_names_cookie_then_url_parameter() -> None:
    assert sticky_names(("JSESSIONID", "jsessionid")) == ("JSESSIONID", "jsessionid")


def test_one_stickysession_name_serves_both_cookie_and_url() -> None:
    assert sticky_names(("BALANCEID",)) == ("BALANCEID", "BALANCEID")


def test_stickysession_splits_at_the_first_bar_only_as_httpd() -> None:
    assert sticky_names(("A", "B", "C")) == ("A", "B|C")


def test_no_stickysession_means_no_route() -> None:
    assert sticky_names(()) is None
    assert route_of(cookies=(b"JSESSIONID=abc.node1",), sticky=()) is None


# -- the route in the cookie -------------------------------------------------------------------


def test_tomcat_jvmroute_cookie_gives_the_route_after_the_dot() -> None:
    assert route_of(cookies=(b"JSESSIONID=ABC.node2",)) == ("node2", "JSESSIONID")


def test_application_cookie_balanceid_gives_the_route() -> None:
    sticky = ("BALANCEID",)
    assert route_of(cookies=(b"BALANCEID=balancer.node2",), sticky=sticky) == (
        "node2",
        "BALANCEID",
    )


def test_documented_routeid_cookie_with_empty_session_part() -> None:
    assert route_of(cookies=(b"ROUTEID=.node1",), sticky=("ROUTEID",)) == ("node1", "ROUTEID")


def test_route_is_after_the_first_separator_only() -> None:
    assert route_of(cookies=(b"JSESSIONID=abc.def.node1",)) == ("def.node1", "JSESSIONID")


def test_value_without_the_separator_carries_no_route() -> None:
    assert route_of(cookies=(b"JSESSIONID=ABC123",)) is None


def test_stickysessionsep_off_makes_the_whole_value_the_route() -> None:
    assert route_of(cookies=(b"JSESSIONID=ABC.node2",), sep=None) == ("ABC.node2", "JSESSIONID")


def test_another_separator_weblogic_style() -> None:
    assert route_of(cookies=(b"JSESSIONID=ABC!n1.x",), sep="!") == ("n1.x", "JSESSIONID")


def test_empty_route_after_the_separator_is_still_reported() -> None:
    assert route_of(cookies=(b"JSESSIONID=ABC.",)) == ("", "JSESSIONID")


@pytest.mark.parametrize(
    "header",
    [
        b"JSESSIONID=abc.n1",
        b"a=1;JSESSIONID=abc.n1",
        b"a=1; JSESSIONID=abc.n1",
        b"a=1,JSESSIONID=abc.n1",
        b"a=1,\tJSESSIONID=abc.n1",
        b"JSESSIONID =abc.n1",
        b"JSESSIONID\t =abc.n1",
        b"JSESSIONID=abc.n1; b=2",
        b"JSESSIONID=abc.n1, b=2",
    ],
)
def test_cookie_found_at_a_boundary_with_its_value_ending_at_semicolon_or_comma(
    header: bytes,
) -> None:
    assert route_of(cookies=(header,)) == ("n1", "JSESSIONID")


@pytest.mark.parametrize(
    "header",
    [
        b"XJSESSIONID=abc.n1",  # no boundary before the name
        b"a=1;xJSESSIONID=abc.n1",
        b"jsessionid=abc.n1",  # cookie names are case-sensitive
        b"JSESSIONIDX=abc.n1",
        b"JSESSIONID",
        b"JSESSIONID=",
        b"a=JSESSIONID",
    ],
)
def test_cookie_not_found(header: bytes) -> None:
    assert route_of(cookies=(header,)) is None


def test_first_matching_cookie_wins() -> None:
    assert route_of(cookies=(b"JSESSIONID=a.n1; JSESSIONID=b.n2",)) == ("n1", "JSESSIONID")


def test_cookie_after_a_non_matching_prefix_of_its_name_is_found() -> None:
    assert route_of(cookies=(b"XJSESSIONID=a.n9; JSESSIONID=b.n2",)) == ("n2", "JSESSIONID")


def test_several_cookie_fields_are_one_merged_header() -> None:
    assert route_of(cookies=(b"a=1", b"JSESSIONID=abc.n2")) == ("n2", "JSESSIONID")


def test_quotes_are_not_stripped() -> None:
    assert route_of(cookies=(b'JSESSIONID="abc.n1"',)) == ('n1"', "JSESSIONID")


def test_empty_cookie_value_before_a_semicolon_is_an_empty_route_with_separator_off() -> None:
    assert route_of(cookies=(b"JSESSIONID=;x=a.n1",), sep=None) == ("", "JSESSIONID")
    assert route_of(cookies=(b"JSESSIONID=;x=a.n1",)) is None


def test_httpd_quirk_a_second_name_right_after_a_bare_one_is_missed() -> None:
    """httpd steps one byte past the non-``=`` it compared before searching again."""
    assert get_cookie_param(b"JSESSIONID JSESSIONID=abc.n1", b"JSESSIONID") is None
    assert get_cookie_param(b"JSESSIONID; JSESSIONID=abc.n1", b"JSESSIONID") == b"abc.n1"


def test_the_cookie_uses_the_first_stickysession_name_only() -> None:
    assert route_of(cookies=(b"jsessionid=abc.n1",)) is None


# -- the route in the URL ------------------------------------------------------------------------


def test_path_parameter_gives_the_route() -> None:
    assert route_of(b"/app;jsessionid=ABC.node1") == ("node1", "jsessionid")


def test_query_parameter_gives_the_route() -> None:
    assert route_of(b"/app?jsessionid=ABC.node1&x=1") == ("node1", "jsessionid")
    assert route_of(b"/app?x=1&jsessionid=ABC.node1") == ("node1", "jsessionid")


def test_url_beats_cookie() -> None:
    found = route_of(b"/app;jsessionid=ABC.node1", (b"JSESSIONID=XYZ.node2",))
    assert found == ("node1", "jsessionid")


def test_url_parameter_has_no_left_boundary_so_xjsessionid_matches() -> None:
    assert route_of(b"/app?xjsessionid=ABC.n1") == ("n1", "jsessionid")


def test_url_parameter_name_is_case_sensitive() -> None:
    assert route_of(b"/app;JSESSIONID=ABC.n1") is None


def test_without_scolonpathdelim_the_value_runs_past_a_semicolon() -> None:
    assert route_of(b"/x;jsessionid=abc.n1;foo=1") == ("n1;foo=1", "jsessionid")


def test_scolonpathdelim_ends_the_value_at_a_semicolon() -> None:
    assert route_of(b"/x;jsessionid=abc.n1;foo=1", scolon=True) == ("n1", "jsessionid")


def test_path_parameter_value_ends_at_question_mark() -> None:
    assert route_of(b"/x;jsessionid=abc.n1?a=b") == ("n1", "jsessionid")


def test_url_name_without_equals_is_skipped_and_a_later_one_found() -> None:
    assert route_of(b"/jsessionid/x?jsessionid=abc.n1") == ("n1", "jsessionid")


def test_empty_url_value_at_the_end_falls_back_to_the_cookie() -> None:
    assert route_of(b"/x?jsessionid=", (b"JSESSIONID=a.n2",)) == ("n2", "JSESSIONID")


def test_httpd_quirk_leading_delimiters_of_the_value_are_skipped() -> None:
    """``apr_strtok`` skips delimiters before the token: the next parameter is the value."""
    assert get_path_param(b"/x?jsessionid=&y=a.n1", b"jsessionid", False) == b"y=a.n1"


def test_httpd_quirk_a_value_of_only_delimiters_ends_the_search() -> None:
    assert get_path_param(b"/x?jsessionid=&&", b"jsessionid", False) is None
    assert route_of(b"/x?jsessionid=&", (b"JSESSIONID=a.n2",)) == ("n2", "JSESSIONID")


def test_url_value_without_separator_gives_no_route_even_if_the_cookie_has_one() -> None:
    assert route_of(b"/x;jsessionid=abc", (b"JSESSIONID=a.n2",)) is None


# -- the member with the route -------------------------------------------------------------------


def test_route_names_its_member() -> None:
    a, b = member("a", "node1"), member("b", "node2")
    assert find_route_member([a, b], "node2", 0.0) is b


def test_unknown_route_names_no_member() -> None:
    assert find_route_member([member("a", "node1")], "node9", 0.0) is None


def test_members_without_route_never_match() -> None:
    assert find_route_member([member("a", None), member("b", "")], "", 0.0) is None


def test_non_standby_member_is_preferred_over_an_earlier_standby_with_the_same_route() -> None:
    standby, regular = member("s", "n1", "H"), member("r", "n1")
    assert find_route_member([standby, regular], "n1", 0.0) is regular


def test_standby_member_is_found_by_its_route() -> None:
    standby = member("s", "n1", "H")
    assert find_route_member([member("a", "n2"), standby], "n1", 0.0) is standby


def test_draining_member_is_found_by_its_route() -> None:
    drain = member("d", "n1", "N")
    assert find_route_member([drain], "n1", 0.0) is drain


def test_member_in_error_is_found_after_retry_seconds() -> None:
    m = member("a", "n1")
    m.put_in_error(10.0)
    assert find_route_member([m], "n1", 70.0) is None
    assert find_route_member([m], "n1", 70.5) is m
    assert m.retries == 1


def test_disabled_member_is_not_found() -> None:
    assert find_route_member([member("a", "n1", "D")], "n1", 0.0) is None


def test_redirect_leads_from_an_unusable_member_to_another() -> None:
    old, new = member("old", "n1", "D", redirect="n2"), member("new", "n2")
    assert find_route_member([old, new], "n1", 0.0) is new


def test_redirect_target_in_error_is_retried() -> None:
    old, new = member("old", "n1", "S", redirect="n2"), member("new", "n2", "E")
    new.retry = 0.0
    assert find_route_member([old, new], "n1", 1.0) is new


def test_redirect_chain_of_member_count_minus_one_hops_is_followed() -> None:
    chain = [
        member("a", "n1", "D", redirect="n2"),
        member("b", "n2", "D", redirect="n3"),
        member("c", "n3", "D", redirect="n4"),
        member("d", "n4"),
    ]
    assert find_route_member(chain, "n1", 0.0) is chain[3]


def test_redirect_cycle_terminates_within_the_member_count() -> None:
    ring = [member("a", "n1", "D", redirect="n2"), member("b", "n2", "D", redirect="n1")]
    assert find_route_member(ring, "n1", 0.0) is None


def test_unusable_redirect_target_gives_no_member() -> None:
    pair = [member("a", "n1", "D", redirect="n2"), member("b", "n2", "S")]
    assert find_route_member(pair, "n1", 0.0) is None


# -- the decision ----------------------------------------------------------------------------------


def test_decision_route_of_a_usable_member_routes_there() -> None:
    a, b = member("a", "n1"), member("b", "n2")
    decision = route_decision([a, b], "n2", 0.0, nofailover=False)
    assert (decision.outcome, decision.member, decision.status) == (StickyOutcome.ROUTED, b, None)


def test_decision_redirect_is_a_route_change() -> None:
    old, new = member("old", "n1", "D", redirect="n2"), member("new", "n2")
    decision = route_decision([old, new], "n1", 0.0, nofailover=True)
    assert (decision.outcome, decision.member) == (StickyOutcome.ROUTE_CHANGED, new)


def test_decision_route_of_an_unusable_member_with_nofailover_is_503() -> None:
    decision = route_decision([member("a", "n1", "E"), member("b", "n2")], "n1", 0.0, True)
    assert (decision.outcome, decision.member, decision.status) == (
        StickyOutcome.UNAVAILABLE,
        None,
        503,
    )


def test_decision_route_of_an_unusable_member_without_nofailover_balances() -> None:
    decision = route_decision([member("a", "n1", "E"), member("b", "n2")], "n1", 0.0, False)
    assert decision.outcome is StickyOutcome.BALANCE


def test_decision_unknown_route_balances_even_with_nofailover() -> None:
    decision = route_decision([member("a", "n1")], "n9", 0.0, nofailover=True)
    assert decision.outcome is StickyOutcome.BALANCE


@pytest.mark.parametrize("route", [None, ""])
def test_decision_without_a_route_balances(route: str | None) -> None:
    decision = route_decision([member("a", "n1", "E")], route, 0.0, nofailover=True)
    assert decision.outcome is StickyOutcome.BALANCE


# -- select_member: the route through pre_request --------------------------------------------------

PARAMS = BalancerParams(stickysession=TOMCAT)


def test_select_member_routes_a_session_to_its_node_every_time() -> None:
    members = [member("a", "node1"), member("b", "node2")]
    for _ in range(100):
        selection = select_member(members, PARAMS, b"/app", [b"JSESSIONID=ABC.node2"], 0.0)
        assert selection.member is members[1]
        assert (selection.route, selection.sticky, selection.routed) == (
            "node2",
            "JSESSIONID",
            True,
        )
        assert selection.route_changed is False


def test_select_member_routes_by_jsessionid_path_parameter() -> None:
    members = [member("a", "node1"), member("b", "node2")]
    selection = select_member(members, PARAMS, b"/app;jsessionid=ABC.node1", [], 0.0)
    assert (selection.member, selection.sticky) == (members[0], "jsessionid")


def test_select_member_fails_over_when_the_route_member_is_down() -> None:
    members = [member("a", "node1", "E"), member("b", "node2")]
    selection = select_member(members, PARAMS, b"/", [b"JSESSIONID=ABC.node1"], 0.0)
    assert selection.member is members[1]
    assert (selection.route, selection.route_changed, selection.routed) == ("node1", True, False)


def test_select_member_answers_503_with_nofailover() -> None:
    params = BalancerParams(stickysession=TOMCAT, nofailover=True)
    members = [member("a", "node1", "E"), member("b", "node2")]
    selection = select_member(members, params, b"/", [b"JSESSIONID=ABC.node1"], 0.0)
    assert (selection.member, selection.status, selection.route) == (None, 503, "node1")
    assert members[1].busy == 0


def test_select_member_balances_an_unknown_route_and_keeps_it_for_jvm_route() -> None:
    members = [member("a", "node1"), member("b", "node2")]
    selection = select_member(members, PARAMS, b"/", [b"JSESSIONID=ABC.node7"], 0.0)
    assert selection.member is members[0]
    assert (selection.route, selection.route_changed) == ("node7", True)


def test_select_member_draining_member_keeps_its_sessions_only() -> None:
    members = [member("a", "node1", "N"), member("b", "node2")]
    routed = select_member(members, PARAMS, b"/", [b"JSESSIONID=ABC.node1"], 0.0)
    assert routed.member is members[0]
    for _ in range(3):
        assert select_member(members, PARAMS, b"/", [], 0.0).member is members[1]


def test_select_member_route_redirect_is_a_route_change() -> None:
    members = [member("a", "node1", "D", redirect="node2"), member("b", "node2")]
    selection = select_member(members, PARAMS, b"/", [b"JSESSIONID=ABC.node1"], 0.0)
    assert (selection.member, selection.route_changed, selection.routed) == (
        members[1],
        True,
        True,
    )


# -- properties ----------------------------------------------------------------------------------

session_ids = st.text(alphabet="ABCDEF0123456789", min_size=1, max_size=32)
routes = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=16)


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(session=session_ids, route=routes)
def test_every_tomcat_session_cookie_yields_its_route(session: str, route: str) -> None:
    cookie = f"JSESSIONID={session}.{route}".encode()
    assert route_of(cookies=(b"other=1; " + cookie + b"; Path=/",)) == (route, "JSESSIONID")


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(session=session_ids, route=routes, query=st.booleans())
def test_every_jsessionid_url_yields_its_route(session: str, route: str, query: bool) -> None:
    mark = "?" if query else ";"
    target = f"/app/page{mark}jsessionid={session}.{route}".encode()
    assert route_of(target + b"&x=1" if query else target) == (route, "jsessionid")


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(value=st.binary(max_size=64), name=st.sampled_from([b"JSESSIONID", b"jsessionid"]))
def test_extraction_never_fails_on_arbitrary_bytes(value: bytes, name: bytes) -> None:
    found = get_cookie_param(value, name)
    assert found is None or (b";" not in found and b"," not in found)
    found = get_path_param(value, name, True)
    assert found is None or not set(found) & set(b";?&")
