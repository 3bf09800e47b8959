"""Routing: ProxyPass prefixes, ``!`` exclusions, ProxyPassMatch substitution, dot-segments.

Rules come from the real config parser, so a test reads like the config it proves.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.config import URL, Location, ProxyRule, RuleKind, Scheme, parse
from ajpbalancer.routing import Router, RoutingError, remove_dot_segments, split_target


def router(proxy_pass: str = "", proxy_pass_match: str = "") -> Router:
    """A router for one frontend whose ``ProxyPass``/``ProxyPassMatch`` hold these lines."""
    text = "[balancer://c]\nBalancerMember = http://m1:8080\n[frontend]\nlisten = tcp:8080\n"
    for key, lines in (("ProxyPass", proxy_pass), ("ProxyPassMatch", proxy_pass_match)):
        if lines:
            text += f"{key} = " + "\n    ".join(lines.strip().splitlines()) + "\n"
    return Router(parse(text, "test.ini").frontends[0].rules)


def mapped(r: Router, path: str) -> str | None:
    m = r.match(path)
    return None if m is None else m.target.origin + m.path


# -- ProxyPass prefixes ----------------------------------------------------------------------


def test_prefix_matches_itself_and_everything_below_it() -> None:
    r = router("/app http://h/backend")
    assert mapped(r, "/app") == "http://h/backend"
    assert mapped(r, "/app/") == "http://h/backend/"
    assert mapped(r, "/app/x/y") == "http://h/backend/x/y"


def test_prefix_matches_whole_segments_only() -> None:
    r = router("/app http://h/backend")
    for path in ("/application", "/app.html", "/apps/x", "/ap", "/", "/x/app"):
        assert r.match(path) is None, path


def test_prefix_with_trailing_slash_does_not_match_the_bare_directory() -> None:
    r = router("/app/ http://h/backend/")
    assert mapped(r, "/app/x") == "http://h/backend/x"
    assert r.match("/app") is None


def test_root_prefix_matches_every_path() -> None:
    r = router("/ http://h/")
    for path in ("/", "/x", "/a/b/c"):
        assert mapped(r, path) == "http://h" + path


def test_mapped_path_always_starts_with_a_slash() -> None:
    """``ProxyPass / http://h`` must not send ``x`` (or make host ``hx``) for ``/x``."""
    r = router("/ http://h")
    m = r.match("/x")
    assert m is not None
    assert (m.target.host, m.path) == ("h", "/x")
    assert mapped(r, "/") == "http://h/"


def test_prefix_to_bare_origin_maps_the_rest_of_the_path() -> None:
    r = router("/app http://h")
    assert mapped(r, "/app") == "http://h/"
    assert mapped(r, "/app/x") == "http://h/x"


def test_mismatched_trailing_slashes_concatenate_as_in_apache() -> None:
    """Apache's docs warn that ``/a`` → ``http://h/`` maps ``/a/b`` to ``//b``; so do we."""
    assert mapped(router("/a http://h/"), "/a/b") == "http://h//b"


def test_prefix_is_case_sensitive() -> None:
    assert router("/app http://h/").match("/APP") is None


def test_match_reports_the_rule_and_the_target() -> None:
    r = router("/app balancer://c/app")
    m = r.match("/app/x")
    assert m is not None
    assert m.rule is r.rules[0]
    assert m.target == URL(Scheme.BALANCER, "c", None, "/app")
    assert m.path == "/app/x"


def test_request_target_adds_the_query_when_there_is_one() -> None:
    m = router("/app http://h/b").match("/app/x")
    assert m is not None
    assert m.request_target(None) == "/b/x"
    assert m.request_target("") == "/b/x?"
    assert m.request_target("a=1&b=2") == "/b/x?a=1&b=2"


# -- ! exclusions and order -------------------------------------------------------------------


def test_exclusion_before_a_broader_rule_keeps_its_paths_local() -> None:
    r = router("/static !\n/ http://h/")
    assert r.match("/static") is None
    assert r.match("/static/logo.png") is None
    assert mapped(r, "/staticfile") == "http://h/staticfile"
    assert mapped(r, "/app") == "http://h/app"


def test_exclusion_after_a_broader_rule_never_applies() -> None:
    """First match wins, as in Apache: an exclusion must come before what it carves out."""
    r = router("/ http://h/\n/static !")
    assert mapped(r, "/static/x") == "http://h/static/x"


def test_first_matching_prefix_wins_even_if_a_later_one_is_longer() -> None:
    r = router("/a http://first/a\n/a/b http://second/a/b")
    assert mapped(r, "/a/b/c") == "http://first/a/b/c"


def test_later_rule_is_used_when_earlier_ones_do_not_match() -> None:
    r = router("/a http://first/a\n/b http://second/b")
    assert mapped(r, "/b/x") == "http://second/b/x"


def test_proxypass_lines_come_before_proxypassmatch_lines_in_key_order() -> None:
    r = router("/a http://prefix/a", r"^/a/(.*)$ http://regex/$1")
    assert mapped(r, "/a/x") == "http://prefix/a/x"


def test_no_rule_matching_gives_none() -> None:
    assert router("/a http://h/a").match("/b") is None
    assert Router([]).match("/") is None


def test_regex_exclusion_before_a_broader_rule_keeps_its_paths_local() -> None:
    exclusion = router(proxy_pass_match=r"/\.git(/|$) !").rules
    r = Router([*exclusion, *router("/ http://h/").rules])
    assert r.match("/repo/.git/config") is None
    assert r.match("/repo/.git") is None
    assert mapped(r, "/repo/.github/x") == "http://h/repo/.github/x"


# -- ProxyPassMatch ------------------------------------------------------------------------------


def test_back_references_are_substituted_into_the_path() -> None:
    r = router(proxy_pass_match=r"^/app/(\w+)/(\w+)$ http://h/$2/$1")
    assert mapped(r, "/app/one/two") == "http://h/two/one"


def test_dollar_zero_is_the_whole_match() -> None:
    r = router(proxy_pass_match=r"^/x/\d+ http://h/y$0")
    assert mapped(r, "/x/42/rest") == "http://h/y/x/42"


def test_back_reference_right_after_the_authority_begins_the_path() -> None:
    r = router(proxy_pass_match=r"^(/.*)$ balancer://c$1")
    m = r.match("/a/b")
    assert m is not None
    assert (m.target.host, m.path) == ("c", "/a/b")


def test_capture_without_a_leading_slash_cannot_extend_the_host() -> None:
    r = router(proxy_pass_match=r"^/(.*)$ http://h$1")
    m = r.match("/evil.example/x")
    assert m is not None
    assert (m.target.host, m.path) == ("h", "/evil.example/x")


def test_target_without_back_reference_gets_the_whole_path_appended() -> None:
    """Apache: a ProxyPassMatch URL with no ``$`` has the request path appended."""
    r = router(proxy_pass_match=r"^/images/.*\.png$ http://img/store")
    assert mapped(r, "/images/a/b.png") == "http://img/store/images/a/b.png"


def test_target_without_back_reference_and_without_path_gets_the_path() -> None:
    r = router(proxy_pass_match=r"\.jsp$ http://tomcat:8009")
    assert mapped(r, "/shop/cart.jsp") == "http://tomcat:8009/shop/cart.jsp"


def test_regex_is_searched_not_anchored() -> None:
    r = router(proxy_pass_match=r"\.jsp http://tomcat:8009/")
    assert r.match("/a/b.jsp") is not None
    assert r.match("/a/b.jspx") is not None
    assert r.match("/a/b.html") is None


def test_group_that_did_not_participate_substitutes_empty() -> None:
    r = router(proxy_pass_match=r"^/a(/x)?(/.*)$ http://h/t$1$2")
    assert mapped(r, "/a/y") == "http://h/t/y"
    assert mapped(r, "/a/x/y") == "http://h/t/x/y"


def test_back_reference_beyond_the_groups_substitutes_empty() -> None:
    """The parser refuses such targets; the router stays safe if one is built by hand."""
    rule = ProxyRule(
        RuleKind.REGEX,
        "^/(a)",
        URL(Scheme.HTTP, "h", None, "/$1$5"),
        Location("test.ini", 1),
        regex=re.compile("^/(a)"),
    )
    assert mapped(Router([rule]), "/a") == "http://h/a"


def test_unsafe_bytes_in_a_mapped_path_are_refused() -> None:
    r = router("/ http://h/")
    for char in [*map(chr, range(0x00, 0x21)), "\x7f"]:
        with pytest.raises(RoutingError) as info:
            r.match("/a" + char + "b")
        assert info.value.status == 400


def test_percent_encoded_space_is_passed_on_as_is() -> None:
    r = router(proxy_pass_match=r"^/(.*)$ http://h/$1")
    assert mapped(r, "/a%20b") == "http://h/a%20b"


# -- split_target and dot-segments ---------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", ("/", None)),
        ("/a/b", ("/a/b", None)),
        ("/a?", ("/a", "")),
        ("/a?x=1&y=2", ("/a", "x=1&y=2")),
        ("/a?x=?y", ("/a", "x=?y")),
        ("/a/../b?p=../..", ("/b", "p=../..")),
    ],
)
def test_split_target_gives_normalised_path_and_untouched_query(
    target: str, expected: tuple[str, str | None]
) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize("target", ["*", "http://h/a", "a/b", "", "?x"])
def test_split_target_refuses_what_is_not_origin_form(target: str) -> None:
    with pytest.raises(RoutingError) as info:
        split_target(target)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # RFC 3986 §5.2.4 and §5.4 examples, as absolute paths
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/a/b/c/.", "/a/b/c/"),
        ("/a/b/c/..", "/a/b/"),
        ("/a/b/c/./", "/a/b/c/"),
        ("/a/b/c/../", "/a/b/"),
        ("/a/b/c/../..", "/a/"),
        ("/a/b/c/../../../g", "/g"),
        ("/a/b/c/../../../../g", "/g"),
        ("/..", "/"),
        ("/.", "/"),
        ("/../a", "/a"),
        ("/./a", "/a"),
        ("/a/./b", "/a/b"),
        ("/a/.../b", "/a/.../b"),
        ("/a/..b/c", "/a/..b/c"),
        ("/a/.b", "/a/.b"),
        ("/file.html", "/file.html"),
        ("/a//b", "/a//b"),
        ("/a%2fb", "/a%2fb"),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/app/%2e%2e/admin", "/admin"),
        ("/app/%2E%2E/admin", "/admin"),
        ("/app/.%2e/admin", "/admin"),
        ("/app/%2e./admin", "/admin"),
        ("/app/%2e/admin", "/app/admin"),
    ],
)
def test_percent_encoded_dots_are_decoded_before_removing_dot_segments(
    path: str, expected: str
) -> None:
    assert remove_dot_segments(path) == expected


def test_dot_segments_cannot_escape_an_exclusion() -> None:
    r = router("/static !\n/ http://h/")
    path, _ = split_target("/app/../static/secret")
    assert r.match(path) is None


def test_dot_segments_cannot_climb_into_another_prefix() -> None:
    r = router("/public http://h/public")
    for target in ("/public/../admin", "/public/%2e%2e/admin", "/public/./../admin"):
        path, _ = split_target(target)
        assert r.match(path) is None, target


segments = st.lists(
    st.sampled_from(["", ".", "..", "%2e", "%2E%2e", ".%2e", "a", "b.c", "...", "%2f"]),
    max_size=8,
)


@given(segments=segments)
def test_remove_dot_segments_leaves_no_dot_segment_and_an_absolute_path(
    segments: list[str],
) -> None:
    result = remove_dot_segments("/" + "/".join(segments))
    assert result.startswith("/")
    assert not {".", ".."} & set(result.split("/"))
    assert "%2e" not in result.lower()


@given(segments=segments)
def test_remove_dot_segments_is_idempotent(segments: list[str]) -> None:
    once = remove_dot_segments("/" + "/".join(segments))
    assert remove_dot_segments(once) == once


@pytest.mark.parametrize(
    ("path", "normalised"),
    [
        ("/app/..;/manager", "/manager"),
        ("/app/..;jsessionid=x/manager", "/manager"),
        ("/app/.;x/y", "/app/y"),
        ("/app/a;b/c", "/app/a;b/c"),
    ],
)
def test_dot_segments_with_path_parameters_are_resolved_as_tomcat_does(
    path: str, normalised: str
) -> None:
    assert remove_dot_segments(path) == normalised
