"""Reverse rewriting as httpd does it: ``ap_proxy_location_reverse_map`` and
``ap_proxy_cookie_reverse_map`` (proxy_util.c), the examples of mod_proxy's documentation
for ``ProxyPassReverse`` and ``ProxyPassReverseCookiePath``, and httpd-tests' PR 61560.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ajpbalancer.config import (
    Balancer,
    BalancerParams,
    CookieRule,
    Frontend,
    Location,
    Member,
    MemberParams,
    ReverseRule,
)
from ajpbalancer.config._values import url
from ajpbalancer.rewrite import (
    COOKIE_HEADERS,
    LOCATION_HEADERS,
    ReverseMap,
    frontend_base,
    is_url,
    reverse_cookie,
    reverse_location,
)

HERE = Location("lb.ini", 1)
BASE = b"http://www.example.com"


def rules(*pairs: tuple[str, str]) -> list[ReverseRule]:
    return [ReverseRule(path, url(target), HERE) for path, target in pairs]


def cookie_rules(*pairs: tuple[str, str]) -> list[CookieRule]:
    return [CookieRule(internal, public, HERE) for internal, public in pairs]


def location(
    value: bytes,
    *pairs: tuple[str, str],
    members: dict[str, list[str]] | None = None,
    base: bytes = BASE,
) -> bytes:
    return reverse_location(value, rules(*pairs), members or {}, base)


# -- the frontend's own URL --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "host", "port", "expected"),
    [
        ("http", "www.example.com", 80, b"http://www.example.com"),
        ("http", "www.example.com", 8080, b"http://www.example.com:8080"),
        ("https", "www.example.com", 443, b"https://www.example.com"),
        ("https", "www.example.com", 80, b"https://www.example.com:80"),
        ("http", "::1", 8080, b"http://[::1]:8080"),
        ("http", "[::1]", 80, b"http://[::1]"),
        ("http", "bücher.example", 80, b"http://xn--bcher-kva.example"),
    ],
)
def test_frontend_base_leaves_out_the_default_port(
    scheme: str, host: str, port: int, expected: bytes
) -> None:
    assert frontend_base(scheme, host, port) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"http://x/", True),
        (b"svn+ssh://x", True),
        (b"a.b-c:rest", True),
        (b"/path", False),
        (b":nothing", False),
        (b"no colon", False),
        (b"/a:b", False),
        (b"", False),
    ],
)
def test_is_url_is_ap_is_url(value: bytes, expected: bool) -> None:
    assert is_url(value) is expected


# -- ProxyPassReverse with a member URL --------------------------------------------------------


def test_documented_example_mirror_foo() -> None:
    """mod_proxy docs: a redirect to http://backend.example.com/bar becomes
    http://example.com/mirror/foo/bar."""
    value = location(
        b"http://backend.example.com/bar",
        ("/mirror/foo/", "http://backend.example.com/"),
        base=b"http://example.com",
    )
    assert value == b"http://example.com/mirror/foo/bar"


def test_tomcat_directory_redirect_comes_back_to_the_public_host() -> None:
    value = location(b"http://127.0.0.4:8080/app/", ("/", "http://127.0.0.4:8080/"))
    assert value == BASE + b"/app/"


def test_frontend_port_is_kept_in_the_absolute_result() -> None:
    value = location(
        b"http://127.0.0.4:8080/app/",
        ("/", "http://127.0.0.4:8080/"),
        base=frontend_base("https", "lb.example", 8443),
    )
    assert value == b"https://lb.example:8443/app/"


def test_prefix_is_compared_case_insensitively() -> None:
    value = location(b"HTTP://Backend.Example.COM/App/x", ("/p", "http://backend.example.com/App"))
    assert value == BASE + b"/p/x"


def test_path_part_is_case_insensitive_too_as_in_httpd() -> None:
    value = location(b"http://b.example/APP/x", ("/p", "http://b.example/app"))
    assert value == BASE + b"/p/x"


def test_query_and_fragment_are_kept() -> None:
    value = location(b"http://b.example/app/x?a=1#f", ("/", "http://b.example/app/"))
    assert value == BASE + b"/x?a=1#f"


def test_value_not_starting_with_the_url_is_unchanged() -> None:
    for value in (b"http://other.example/app/", b"/app/", b"", b"http://b.exampl"):
        assert location(value, ("/", "http://b.example/")) == value


def test_first_matching_rule_wins() -> None:
    pairs = (("/one", "http://b.example/"), ("/two", "http://b.example/"))
    assert location(b"http://b.example/x", *pairs) == BASE + b"/onex"


def test_later_rule_applies_when_earlier_ones_do_not_match() -> None:
    pairs = (("/one", "http://a.example/"), ("/two/", "http://b.example/"))
    assert location(b"http://b.example/x", *pairs) == BASE + b"/two/x"


def test_plain_rule_concatenates_so_a_url_without_slash_under_root_doubles_it() -> None:
    """httpd avoids ``//`` only in the balancer branch; a plain rule concatenates."""
    assert location(b"http://b.example/x", ("/", "http://b.example")) == BASE + b"//x"


# -- ProxyPassReverse with balancer:// ----------------------------------------------------------

MEMBERS = {"mycluster": ["http://127.0.0.2:8080", "http://127.0.0.3:8080"]}


@pytest.mark.parametrize("member", MEMBERS["mycluster"])
def test_balancer_rule_expands_to_every_member(member: str) -> None:
    value = location(member.encode() + b"/app/x", ("/", "balancer://mycluster/"), members=MEMBERS)
    assert value == BASE + b"/app/x"


def test_balancer_rule_with_public_root_does_not_double_the_slash() -> None:
    value = location(b"http://127.0.0.3:8080/", ("/", "balancer://mycluster"), members=MEMBERS)
    assert value == BASE + b"/"


def test_balancer_rule_with_public_path() -> None:
    value = location(
        b"http://127.0.0.2:8080/x", ("/public", "balancer://mycluster/"), members=MEMBERS
    )
    assert value == BASE + b"/public/x"


def test_balancer_rule_matches_member_url_case_insensitively() -> None:
    value = location(b"HTTP://127.0.0.2:8080/x", ("/", "balancer://mycluster/"), members=MEMBERS)
    assert value == BASE + b"/x"


def test_balancer_name_is_case_insensitive() -> None:
    value = location(b"http://127.0.0.2:8080/x", ("/", "balancer://MyCluster/"), members=MEMBERS)
    assert value == BASE + b"/x"


def test_balancer_rule_leaves_other_hosts_alone_and_tries_the_next_rule() -> None:
    pairs = (("/", "balancer://mycluster/"), ("/o/", "http://other.example/"))
    assert location(b"http://other.example/x", *pairs, members=MEMBERS) == BASE + b"/o/x"
    assert location(b"http://127.0.0.9:8080/x", *pairs, members=MEMBERS) == (
        b"http://127.0.0.9:8080/x"
    )


def test_source_example_balancer_url_part_follows_the_member_url() -> None:
    """proxy_util.c: member http://example.com/foo, ``ProxyPassReverse /bash
    balancer://alias/bar``: http://example.com/foo/bar/that becomes /bash/that."""
    members = {"alias": ["http://example.com/foo"]}
    value = location(
        b"http://example.com/foo/bar/that", ("/bash", "balancer://alias/bar"), members=members
    )
    assert value == BASE + b"/bash/that"


def test_balancer_url_part_after_a_member_url_ending_in_slash() -> None:
    members = {"alias": ["http://example.com/foo/"]}
    value = location(
        b"http://example.com/foo/bar/that", ("/bash", "balancer://alias/bar"), members=members
    )
    assert value == BASE + b"/bash/that"


def test_balancer_url_part_is_case_sensitive() -> None:
    members = {"alias": ["http://example.com/foo"]}
    value = b"http://example.com/foo/BAR/that"
    assert location(value, ("/bash", "balancer://alias/bar"), members=members) == value


def test_unknown_balancer_rule_never_matches_a_member_url() -> None:
    value = b"http://127.0.0.2:8080/x"
    assert location(value, ("/", "balancer://nosuch/"), members=MEMBERS) == value


def test_reverse_map_for_a_configured_frontend_rewrites_location_and_cookie() -> None:
    frontend = Frontend(
        "",
        (),
        (),
        HERE,
        reverse=tuple(rules(("/", "balancer://mycluster/"))),
        cookie_domain=tuple(cookie_rules(("127.0.0.2", "www.example.com"))),
        cookie_path=tuple(cookie_rules(("/app", "/"))),
    )
    balancer = Balancer(
        "mycluster",
        tuple(
            Member(url(f"http://127.0.0.{n}:8080"), MemberParams(route=f"node{n}"), HERE)
            for n in (2, 3)
        ),
        BalancerParams(),
        HERE,
    )
    mapping = ReverseMap.for_frontend(frontend, [balancer])
    assert mapping.header(b"Location", b"http://127.0.0.3:8080/app/", BASE) == BASE + b"/app/"
    cookie = b"JSESSIONID=ABC.node1; Path=/app; Domain=127.0.0.2; HttpOnly"
    assert mapping.header(b"set-cookie", cookie, BASE) == (
        b"JSESSIONID=ABC.node1; Path=/; Domain=www.example.com; HttpOnly"
    )


@pytest.mark.parametrize(
    "name", [b"Location", b"content-location", b"URI", b"Destination", b"LOCATION"]
)
def test_location_like_headers_are_mapped(name: bytes) -> None:
    mapping = ReverseMap(rules=tuple(rules(("/", "http://b.example/"))))
    assert mapping.header(name, b"http://b.example/x", BASE) == BASE + b"/x"


@pytest.mark.parametrize("name", [b"Link", b"Refresh", b"Content-Type", b"Set-Cookie2"])
def test_other_headers_are_not_mapped(name: bytes) -> None:
    mapping = ReverseMap(
        rules=tuple(rules(("/", "http://b.example/"))),
        cookie_path=tuple(cookie_rules(("/", "/p"))),
    )
    value = b"http://b.example/x; path=/"
    assert mapping.header(name, value, BASE) == value


def test_header_tables_are_the_ones_httpd_maps() -> None:
    assert {b"location", b"content-location", b"uri", b"destination"} == LOCATION_HEADERS
    assert {b"set-cookie"} == COOKIE_HEADERS


# -- ProxyPassReverseCookieDomain / ProxyPassReverseCookiePath ------------------------------------


def cookie(
    value: bytes, domains: tuple[tuple[str, str], ...] = (), paths: tuple[tuple[str, str], ...] = ()
) -> bytes:
    return reverse_cookie(value, cookie_rules(*domains), cookie_rules(*paths))


def test_pr_61560_a_cookie_named_fakedomain_is_not_a_domain_attribute() -> None:
    value = cookie(b"fakedomain=local;domain=local", domains=(("local", "remote"),))
    assert value == b"fakedomain=local;domain=remote"


def test_a_cookie_named_fakepath_is_not_a_path_attribute() -> None:
    value = cookie(b"fakepath=/internal;path=/internal", paths=(("/internal", "/"),))
    assert value == b"fakepath=/internal;path=/"


def test_documented_path_example_replaces_the_whole_path() -> None:
    """mod_proxy docs: ``ProxyPassReverseCookiePath "/" "/mirror/foo/"`` rewrites a cookie
    with path /, /example or anything to /mirror/foo/."""
    for path in (b"/", b"/example", b"/a/b/c"):
        value = cookie(b"a=b; path=" + path, paths=(("/", "/mirror/foo/"),))
        assert value == b"a=b; path=/mirror/foo/"


def test_path_match_is_case_sensitive() -> None:
    value = b"a=b; path=/App"
    assert cookie(value, paths=(("/app", "/"),)) == value


def test_domain_match_is_case_insensitive_and_replaces_the_whole_value() -> None:
    value = cookie(
        b"a=b; domain=Internal.Example.COM", domains=(("internal.example", "pub.example"),)
    )
    assert value == b"a=b; domain=pub.example"


@pytest.mark.parametrize("attribute", [b"Path", b"PATH", b"pAtH"])
def test_path_attribute_name_is_case_insensitive(attribute: bytes) -> None:
    value = cookie(b"a=b; " + attribute + b"=/app/x", paths=(("/app", "/"),))
    assert value == b"a=b; " + attribute + b"=/"


@pytest.mark.parametrize("attribute", [b"Domain", b"DOMAIN"])
def test_domain_attribute_name_is_case_insensitive(attribute: bytes) -> None:
    value = cookie(b"a=b; " + attribute + b"=10.0.0.1", domains=(("10.0.0.1", "example.com"),))
    assert value == b"a=b; " + attribute + b"=example.com"


def test_path_and_domain_are_both_rewritten_in_either_order() -> None:
    domains, paths = (("int", "pub"),), (("/app", "/"),)
    assert cookie(b"a=b; Path=/app; Domain=int", domains, paths) == b"a=b; Path=/; Domain=pub"
    assert cookie(b"a=b; Domain=int; Path=/app", domains, paths) == b"a=b; Domain=pub; Path=/"


def test_only_the_first_matching_rule_is_used() -> None:
    paths = (("/a", "/first"), ("/", "/second"), ("/a", "/third"))
    assert cookie(b"x=1; path=/a/b", paths=paths) == b"x=1; path=/first"


def test_no_matching_rule_leaves_the_cookie_unchanged() -> None:
    value = b"a=b; Path=/other; Domain=elsewhere; Secure"
    assert cookie(value, (("int", "pub"),), (("/app", "/"),)) == value


def test_everything_else_is_kept_byte_for_byte() -> None:
    value = b'ID="x y";  Expires=Wed, 21 Oct 2015 07:28:00 GMT;\tpath=/app/sub;;Secure ; HttpOnly'
    expected = b'ID="x y";  Expires=Wed, 21 Oct 2015 07:28:00 GMT;\tpath=/;;Secure ; HttpOnly'
    assert cookie(value, paths=(("/app", "/"),)) == expected


def test_white_space_before_the_next_semicolon_is_part_of_the_value_as_in_httpd() -> None:
    assert cookie(b"a=b; path=/app ; Secure", paths=(("/app", "/"),)) == b"a=b; path=/; Secure"


def test_httpd_quirk_the_last_of_repeated_attributes_is_rewritten() -> None:
    value = b"a=b; path=/app; path=/app/x"
    assert cookie(value, paths=(("/app", "/p"),)) == b"a=b; path=/app; path=/p"


def test_httpd_quirk_a_token_is_an_attribute_by_its_spelling_even_first() -> None:
    """httpd checks every ``;`` token, the cookie's own name=value included."""
    assert cookie(b"path=/app/x; Max-Age=1", paths=(("/app", "/"),)) == b"path=/; Max-Age=1"


def test_empty_rule_lists_change_nothing() -> None:
    value = b"a=b; path=/app; domain=x"
    assert reverse_cookie(value, [], []) == value


# -- properties ----------------------------------------------------------------------------------

TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=8,
)
SAFE = st.binary(max_size=20).filter(lambda b: b";" not in b)
ATTRIBUTES = st.lists(
    st.tuples(st.sampled_from([b"", b" ", b"  ", b"\t"]), TOKEN.map(str.encode), SAFE).filter(
        lambda t: not t[1].lower().startswith((b"path", b"domain"))
    ),
    max_size=4,
)


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(
    name=TOKEN,
    before=ATTRIBUTES,
    after=ATTRIBUTES,
    internal=st.sampled_from(["/", "/app", "/app/"]),
    tail=st.binary(max_size=10).filter(lambda b: b";" not in b),
    public=st.sampled_from(["/", "/x", "/mirror/foo/"]),
)
def test_only_the_path_value_changes(
    *,
    name: str,
    before: list[tuple[bytes, bytes, bytes]],
    after: list[tuple[bytes, bytes, bytes]],
    internal: str,
    tail: bytes,
    public: str,
) -> None:
    def attrs(items: list[tuple[bytes, bytes, bytes]]) -> bytes:
        return b"".join(b";" + space + key + b"=" + val for space, key, val in items)

    head = name.encode() + b"=v" + attrs(before) + b"; Path="
    rest = attrs(after)
    path = internal.encode() + tail
    value = head + path + rest
    assert (
        reverse_cookie(value, [], cookie_rules((internal, public))) == head + public.encode() + rest
    )


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(value=st.binary(max_size=80))
def test_a_cookie_without_path_or_domain_attribute_is_never_changed(value: bytes) -> None:
    tokens = [t.lstrip(b" \t\n\v\f\r").lower() for t in value.split(b";")]
    if any(t.startswith((b"path=", b"domain=")) for t in tokens):
        return
    assert cookie(value, (("", "x"),), (("", "/x"),)) == value


@settings(deadline=None)  # timing on a shared machine is not what these prove
@given(value=st.binary(max_size=80))
def test_a_location_is_unchanged_unless_it_starts_with_the_member_url(value: bytes) -> None:
    out = location(value, ("/", "http://b.example/"))
    if not value.lower().startswith(b"http://b.example/"):
        assert out == value
    else:
        assert out == BASE + b"/" + value[len(b"http://b.example/") :]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # httpd compares a path-only internal value with the path part of the header.
        (b"http://10.0.0.7:8080/app/x?y=1", b"http://www.example.com/pub/x?y=1"),
        (b"/app/x", b"http://www.example.com/pub/x"),
        (b"/APP/x", b"http://www.example.com/pub/x"),
        (b"http://10.0.0.7:8080/other/x", b"http://10.0.0.7:8080/other/x"),
        (b"http://10.0.0.7:8080", b"http://10.0.0.7:8080"),
    ],
)
def test_a_path_only_internal_value_matches_the_path_part(value: bytes, expected: bytes) -> None:
    only_path = [ReverseRule("/pub/", None, HERE, internal_path="/app/")]
    assert reverse_location(value, only_path, {}, BASE) == expected
