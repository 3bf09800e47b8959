"""Routing: ProxyPass prefixes, ``!`` exclusions, ProxyPassMatch substitution, and the path
the rules see (normalised as Apache does, with Tomcat's ``;parameters`` view for ``!``).

Rules come from the real config parser, so a test reads like the config it proves. The
expected normalisations and forwarded paths are what Apache httpd 2.4 did with the same
targets (``ProxyPass /app http://…/app``, ``MergeSlashes`` and ``AllowEncodedSlashes``
at their defaults), recorded as its backend saw them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import capturedLogs

from ajpbalancer.config import URL, Location, ProxyRule, RuleKind, Scheme, parse
from ajpbalancer.patterns import RulePattern
from ajpbalancer.routing import (
    RequestPath,
    RouteMatch,
    Router,
    RoutingError,
    normalise,
    split_target,
)


def router(proxy_pass: str = "", proxy_pass_match: str = "") -> Router:
    """A router for one frontend whose ``ProxyPass``/``ProxyPassMatch`` hold these lines."""
    text = "[balancer://c]\nBalancerMember = http://m1:8080\n[frontend]\nlisten = tcp:8080\n"
    for key, lines in (("ProxyPass", proxy_pass), ("ProxyPassMatch", proxy_pass_match)):
        if lines:
            text += f"{key} = " + "\n    ".join(lines.strip().splitlines()) + "\n"
    return Router(parse(text, "test.ini").frontends[0].rules)


def route(r: Router, path: str) -> RouteMatch | None:
    """What ``r`` does with the request path ``path`` (as a client sends it)."""
    return r.match(path)


def mapped(r: Router, path: str) -> str | None:
    m = route(r, path)
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
        assert route(r, path) is None, path


def test_prefix_with_trailing_slash_does_not_match_the_bare_directory() -> None:
    r = router("/app/ http://h/backend/")
    assert mapped(r, "/app/x") == "http://h/backend/x"
    assert route(r, "/app") is None


def test_root_prefix_matches_every_path() -> None:
    r = router("/ http://h/")
    for path in ("/", "/x", "/a/b/c"):
        assert mapped(r, path) == "http://h" + path


def test_mapped_path_always_starts_with_a_slash() -> None:
    """``ProxyPass / http://h`` must not send ``x`` (or make host ``hx``) for ``/x``."""
    r = router("/ http://h")
    m = route(r, "/x")
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
    assert route(router("/app http://h/"), "/APP") is None


def test_match_reports_the_rule_and_the_target() -> None:
    r = router("/app balancer://c/app")
    m = route(r, "/app/x")
    assert m is not None
    assert m.rule is r.rules[0]
    assert m.target == URL(Scheme.BALANCER, "c", None, "/app")
    assert m.path == "/app/x"


def test_request_target_adds_the_query_when_there_is_one() -> None:
    m = route(router("/app http://h/b"), "/app/x")
    assert m is not None
    assert m.request_target(None) == "/b/x"
    assert m.request_target("") == "/b/x?"
    assert m.request_target("a=1&b=2") == "/b/x?a=1&b=2"


# -- ! exclusions and order -------------------------------------------------------------------


def test_exclusion_before_a_broader_rule_keeps_its_paths_local() -> None:
    r = router("/static !\n/ http://h/")
    assert route(r, "/static") is None
    assert route(r, "/static/logo.png") is None
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
    assert route(router("/a http://h/a"), "/b") is None
    assert route(Router([]), "/") is None


def test_regex_exclusion_before_a_broader_rule_keeps_its_paths_local() -> None:
    exclusion = router(proxy_pass_match=r"/\.git(/|$) !").rules
    r = Router([*exclusion, *router("/ http://h/").rules])
    assert route(r, "/repo/.git/config") is None
    assert route(r, "/repo/.git") is None
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
    m = route(r, "/a/b")
    assert m is not None
    assert (m.target.host, m.path) == ("c", "/a/b")


def test_capture_without_a_leading_slash_cannot_extend_the_host() -> None:
    r = router(proxy_pass_match=r"^/(.*)$ http://h$1")
    m = route(r, "/evil.example/x")
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
    assert route(r, "/a/b.jsp") is not None
    assert route(r, "/a/b.jspx") is not None
    assert route(r, "/a/b.html") is None


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
        regex=RulePattern("^/(a)"),
    )
    assert mapped(Router([rule]), "/a") == "http://h/a"


def test_bytes_that_are_not_visible_ascii_in_a_path_are_refused() -> None:
    for char in [*map(chr, range(0x00, 0x21)), "\x7f", "\x80", "\xe9"]:
        with pytest.raises(RoutingError) as info:
            normalise("/a" + char + "b")
        assert info.value.status == 400


def test_percent_encoded_space_is_passed_on_encoded() -> None:
    r = router(proxy_pass_match=r"^/(.*)$ http://h/$1")
    assert mapped(r, "/a%20b") == "http://h/a%20b"


# -- split_target and the normalised path -------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/", "/", None),
        ("/a/b", "/a/b", None),
        ("/a?", "/a", ""),
        ("/a?x=1&y=2", "/a", "x=1&y=2"),
        ("/a?x=?y", "/a", "x=?y"),
        ("/a/../b?p=../..", "/b", "p=../.."),
        ("/a//b?p=%2F%00//", "/a/b", "p=%2F%00//"),
    ],
)
def test_split_target_gives_normalised_path_and_untouched_query(
    target: str, path: str, query: str | None
) -> None:
    got, got_query = split_target(target)
    assert (normalise(got).decoded, got_query) == (path, query)


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
        ("/.", "/"),
        ("/./a", "/a"),
        ("/a/./b", "/a/b"),
        ("/a/.../b", "/a/.../b"),
        ("/a/..b/c", "/a/..b/c"),
        ("/a/.b", "/a/.b"),
        ("/file.html", "/file.html"),
        # Apache: MergeSlashes on, and a merged slash before ".." takes one segment off
        ("/a//b", "/a/b"),
        ("//a///b//", "/a/b/"),
        ("/app//", "/app/"),
        ("/a/b//../c", "/a/c"),
        # Apache: unreserved escapes decoded before dot-segments, the rest after
        ("/app/%2e%2e/admin", "/admin"),
        ("/app/%2E%2E/admin", "/admin"),
        ("/app/.%2e/admin", "/admin"),
        ("/app/%2e./admin", "/admin"),
        ("/app/%2e/admin", "/app/admin"),
        ("/%61pp/%65cho/%7e/x", "/app/echo/~/x"),
        ("/a%20b%3Fc%23d", "/a b?c#d"),
        ("/caf%c3%a9", "/caf\xc3\xa9"),
        ("/a%25b", "/a%b"),
        ("/a%252e%252e/x", "/a%2e%2e/x"),
    ],
)
def test_normalised_path_is_apaches(path: str, expected: str) -> None:
    assert normalise(path).decoded == expected


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/..", 400),
        ("/../a", 400),
        ("/a/../..", 400),
        ("/a/b/c/../../../../g", 400),
        ("/%2e%2e/a", 400),
        ("/a%zzb", 400),
        ("/a%4", 400),
        ("/a%", 400),
        ("/a%2Fb", 404),
        ("/a%2fb", 404),
        ("/a%00b", 404),
        ("/a%2Fb/%zz", 400),  # Apache: a bad escape is 400 before %2F is 404
        ("/../a%2Fb", 400),
    ],
)
def test_paths_apache_refuses_are_refused_with_its_status(path: str, status: int) -> None:
    """Apache answers 400 for a malformed escape or a climb above the root, 404 for ``%2F``
    (``AllowEncodedSlashes off``) and ``%00``."""
    with pytest.raises(RoutingError) as info:
        normalise(path)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/app/echo", "/app/echo"),
        ("/%61pp/echo", "/app/echo"),
        ("/app/%65cho/%7e/x", "/app/echo/~/x"),
        ("/app/echo/caf%c3%a9", "/app/echo/caf%C3%A9"),
        ("/app//echo", "/app/echo"),
        ("//app/echo", "/app/echo"),
        ("/app/echo/a[b]c", "/app/echo/a%5Bb%5Dc"),
        ('/app/echo/a"b', "/app/echo/a%22b"),
        ("/app/echo/a\\b", "/app/echo/a%5Cb"),
        ("/app/echo/a{b}|c^d`e", "/app/echo/a%7Bb%7D%7Cc%5Ed%60e"),
        ("/app/echo/a%5bb", "/app/echo/a%5Bb"),
        ("/app/echo/a%3bb", "/app/echo/a;b"),
        ("/app/echo/a%3Db%2Bc%26d", "/app/echo/a=b+c&d"),
        ("/app/echo/a%20b%3Fc%23d", "/app/echo/a%20b%3Fc%23d"),
        ("/app/echo/a%25b", "/app/echo/a%25b"),
        ("/app/echo/a%2525b", "/app/echo/a%2525b"),
        ("/app/echo/a%0Ab", "/app/echo/a%0Ab"),
        ("/app/echo/a%FFb", "/app/echo/a%FFb"),
        ("/app/echo/x;jsessionid=ABC.node1", "/app/echo/x;jsessionid=ABC.node1"),
        ("/app/echo/a;p=1/%20b", "/app/echo/a;p=1/%20b"),
        ("/app/;jsessionid=ABC.node1", "/app/;jsessionid=ABC.node1"),
        ("/app/echo/.", "/app/echo/"),
        ("/app/echo/..", "/app/"),
        ("/app/../app/echo", "/app/echo"),
    ],
)
def test_forwarded_path_is_what_apache_forwards(path: str, forwarded: str) -> None:
    """``ProxyPass /app http://h/app``: Tomcat gets the path Apache would have sent it."""
    r = router("/app http://h/app")
    assert mapped(r, path) == "http://h" + forwarded


def test_captures_are_forwarded_encoded_as_apache_does() -> None:
    r = router(proxy_pass_match=r"^/rx/(.*)$ http://h/rx/$1")
    assert mapped(r, "/rx/x%20y/caf%c3%a9") == "http://h/rx/x%20y/caf%C3%A9"
    assert mapped(r, "/rx//a//b") == "http://h/rx/a/b"


def test_regex_target_without_back_reference_gets_the_path_encoded() -> None:
    r = router(proxy_pass_match=r"\.png$ http://h/store")
    assert mapped(r, "/a%20b/c%2epng") == "http://h/store/a%20b/c.png"


def test_escaped_prefix_matches_the_rule_of_its_decoded_path() -> None:
    """Apache matches ``ProxyPass`` on the decoded path: ``/%61pp`` is ``/app``."""
    r = router("/app http://h/app")
    assert mapped(r, "/%61pp/echo") == "http://h/app/echo"
    assert mapped(r, "/ap%70") == "http://h/app"


def test_prefixes_written_encoded_or_non_ascii_match_decoded_paths() -> None:
    r = router("/a%20b !\n/caf\u00e9 http://h/c\n/ http://h/")
    assert route(r, "/a%20b/x") is None
    assert mapped(r, "/caf%C3%A9/x") == "http://h/c/x"


def test_non_ascii_target_paths_are_sent_percent_encoded() -> None:
    """The request line to a member is ASCII: ``/café`` in the config goes as UTF-8 escapes."""
    r = router("/caf\u00e9 http://h/caf\u00e9", "^/x/(.*)$ http://h/\u00e9/$1")
    assert mapped(r, "/caf%C3%A9/%C3%A9") == "http://h/caf%C3%A9/%C3%A9"
    assert mapped(r, "/x/y") == "http://h/%C3%A9/y"


def test_dot_segments_cannot_escape_an_exclusion() -> None:
    r = router("/static !\n/ http://h/")
    path, _ = split_target("/app/../static/secret")
    assert r.match(path) is None


def test_dot_segments_cannot_climb_into_another_prefix() -> None:
    r = router("/public http://h/public")
    for target in ("/public/../admin", "/public/%2e%2e/admin", "/public/./../admin"):
        path, _ = split_target(target)
        assert r.match(path) is None, target


@pytest.mark.parametrize(
    ("path", "normalised"),
    [
        ("/app/..;/manager", "/manager"),
        ("/app/..;jsessionid=x/manager", "/manager"),
        ("/app/..%3Bx/manager", "/manager"),
        ("/app/.;x/y", "/app/y"),
        ("/app/a;b/c", "/app/a;b/c"),
    ],
)
def test_dot_segments_with_path_parameters_are_resolved_as_tomcat_does(
    path: str, normalised: str
) -> None:
    """Tomcat drops ``;params`` before resolving dot-segments: ``..;x`` climbs for it."""
    assert normalise(path).decoded == normalised


def test_path_parameters_climbing_above_the_root_are_refused() -> None:
    with pytest.raises(RoutingError) as info:
        normalise("/..;x/manager")
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("path", "tomcat"),
    [
        ("/app/echo/secret;x/x", "/app/echo/secret/x"),
        ("/app/echo;a=b/secret/x", "/app/echo/secret/x"),
        ("/app/echo/;x/secret/x", "/app/echo/secret/x"),
        ("/app;jsessionid=A.n1", "/app"),
        ("/app/;jsessionid=A.n1", "/app/"),
        ("/app/echo\\secret/x", "/app/echo/secret/x"),
        ("/a\\..\\..\\b", "/b"),
    ],
)
def test_tomcat_view_drops_path_parameters_of_every_segment(path: str, tomcat: str) -> None:
    assert normalise(path).tomcat == tomcat


def test_a_plain_path_is_its_own_view() -> None:
    """No escape, ``;``, ``//`` or dot-segment: nothing to compute (the hot path)."""
    for path in ("/", "/app/echo", "/app/file.html", "/a-b_c~d/e!$&'()*+,:=@"):
        seen = normalise(path)
        assert seen == RequestPath(path, path, True)
        assert seen.tomcat is seen.decoded


segments = st.lists(
    st.sampled_from(
        ["", ".", "..", "%2e", "%2E%2e", ".%2e", "a", "b.c", "...", "%41", ";x", "..;y", "%3b"]
    ),
    min_size=1,
    max_size=8,
)


def _normalised_or_none(path: str) -> RequestPath | None:
    try:
        return normalise(path)
    except RoutingError as e:
        assert e.status == 400
        return None


@given(segments=segments)
def test_normalised_path_is_absolute_with_no_dot_segment_or_empty_segment(
    segments: list[str],
) -> None:
    seen = _normalised_or_none("/" + "/".join(segments))
    if seen is None:
        return
    for view in (seen.decoded, seen.tomcat):
        assert view.startswith("/")
        assert "//" not in view
        parts = view.split("/")
        assert not {".", ".."} & {p.partition(";")[0] for p in parts}
    assert "%" not in seen.decoded


@given(segments=segments)
def test_normalising_the_forwarded_path_again_changes_nothing(segments: list[str]) -> None:
    """What we forward is a fixed point: a member normalising it sees the same path."""
    r = router("/ http://h/")
    path = "/" + "/".join(segments)
    seen = _normalised_or_none(path)
    if seen is None:
        return
    m = r.match(path)
    assert m is not None
    again = normalise(m.path)
    assert (again.decoded, again.tomcat) == (seen.decoded, seen.tomcat)


# -- access rules against path spelling ------------------------------------------------------

BYPASS_SPELLINGS = [
    "/app/echo//secret/x",
    "/app//echo/secret/x",
    "/app/echo/%73ecret/x",
    "/app/ech%6f/secret/x",
    "/app/echo/secret;x/x",
    "/app/echo;a=b/secret/x",
]
"""Each reached Tomcat's ``/app/echo/secret/x`` past ``ProxyPass /app/echo/secret !``."""

MORE_SPELLINGS = [
    "/app/echo/secret",
    "/app/echo/secret;x",
    "/app/echo/secret%3Bx/x",
    "/app/echo/;x/secret/x",
    "/app/echo/./secret/x",
    "/app/echo/%2e/secret/x",
    "/app/echo/x/../secret/x",
    "/app/echo/x/..;y/secret/x",
    "/%61pp/echo/secret/x",
    "/app/echo\\secret/x",
]


@pytest.mark.parametrize("path", BYPASS_SPELLINGS + MORE_SPELLINGS)
def test_exclusion_holds_whatever_the_spelling_of_the_path(path: str) -> None:
    r = router("/app/echo/secret !\n/app balancer://c/app")
    assert route(r, path) is None


@pytest.mark.parametrize("path", BYPASS_SPELLINGS + MORE_SPELLINGS)
def test_regex_exclusion_holds_whatever_the_spelling_of_the_path(path: str) -> None:
    exclusion = router(proxy_pass_match=r"^/app/echo/secret(/|$) !").rules
    r = Router([*exclusion, *router("/app balancer://c/app").rules])
    assert route(r, path) is None


def test_path_parameters_still_reach_the_member_through_forwarding_rules() -> None:
    """Sticky sessions read ``;jsessionid=…``: rules that forward keep it."""
    r = router("/app/echo/secret !\n/app balancer://c/app")
    assert mapped(r, "/app/echo/x;jsessionid=ABC.node1") == (
        "balancer://c/app/echo/x;jsessionid=ABC.node1"
    )
    assert mapped(r, "/app/echo/secretive;jsessionid=A.n1") == (
        "balancer://c/app/echo/secretive;jsessionid=A.n1"
    )


def test_forwarding_rules_match_as_apache_does_with_path_parameters() -> None:
    """Apache's ``/app`` does not match ``/app;x`` (its segment is ``app;x``): neither here."""
    r = router("/app http://h/app")
    assert route(r, "/app;jsessionid=A.n1/echo") is None


# -- one regular expression must not stop the proxy ----------------------------------------


@contextmanager
def finishes_within(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging) if the block runs longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_nested_quantifier_pattern_answers_on_a_pathological_path() -> None:
    """``(\\w+)*`` and ``/api/aaaa…!``: exponential for a backtracking engine (Python's
    ``re`` needed 1.35 s at 24 letters, twice as long per letter); RE2 is linear."""
    r = router(proxy_pass_match=r"^/api/(\w+)*/x$ http://h/$1")
    with finishes_within(10):
        for letters in (24, 40, 4000):
            assert route(r, "/api/" + "a" * letters + "!") is None
        assert mapped(r, "/api/" + "a" * 40 + "/x") == "http://h/" + "a" * 40


def test_backtracking_only_pattern_that_takes_too_long_gives_500() -> None:
    """A look-ahead needs the backtracking engine; a match past its time limit is 500."""
    r = router(proxy_pass_match=r"^/(?!z)(a|aa)+$ http://h/$1")
    with finishes_within(10), pytest.raises(RoutingError) as info:
        route(r, "/" + "a" * 60 + "!")
    assert info.value.status == 500
    assert mapped(r, "/aaaa") == "http://h/a"


def test_match_timeout_is_logged_with_the_rule_and_pattern() -> None:
    r = router(proxy_pass_match=r"^/(?!z)(a|aa)+$ http://h/$1")
    with capturedLogs() as events, pytest.raises(RoutingError):
        route(r, "/" + "a" * 60 + "!")
    [event] = [e for e in events if e.get("pattern") == r"^/(?!z)(a|aa)+$"]
    assert event["where"] == "test.ini:5"
    assert event["log_level"].name == "error"


def test_regex_sees_bytes_as_apache_does() -> None:
    """PCRE in Apache matches bytes: ``.`` is one byte of a UTF-8 character, ``é`` in the
    pattern is its two bytes, ``\\w`` is ASCII, and ``.`` matches a newline (DOTALL)."""
    r = router(
        proxy_pass_match="^/one/(.)$ http://h/one/$1\n"
        "^/caf\u00e9$ http://h/cafe\n"
        r"^/w/(\w+)$ http://h/w/$1" + "\n"
        "^/nl/a.b$ http://h/nl\n"
        "^/end$ http://h/end"
    )
    assert route(r, "/one/%C3%A9") is None
    assert mapped(r, "/one/%E9") == "http://h/one/%E9"
    assert mapped(r, "/caf%C3%A9") == "http://h/cafe/caf%C3%A9"
    assert route(r, "/w/caf%C3%A9") is None
    assert mapped(r, "/nl/a%0Ab") == "http://h/nl/nl/a%0Ab"
    assert route(r, "/end%0A") is None  # Apache's $ is end-only (AP_REG_DOLLAR_ENDONLY)
