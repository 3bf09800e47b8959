"""The configuration parser: INI syntax, sections, directives, values, problems and the API."""

from __future__ import annotations

import ast
import os
import pathlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ajpbalancer.config
from ajpbalancer.config import (
    URL,
    CheckEndpoint,
    Config,
    ConfigError,
    Location,
    MemberParams,
    Problem,
    RuleKind,
    Scheme,
    _directives,
    load,
    parse,
    summary,
)
from ajpbalancer.patterns import Engine

FRONT = "[frontend]\nlisten = tcp:8080\n"
CLUSTER = "[balancer://c]\nBalancerMember = http://127.0.0.1:8001\n"


def problems(text: str, check_endpoint: CheckEndpoint | None = None) -> list[str]:
    """Every problem ``parse`` reports for ``text`` (file ``lb.ini``), as printed."""
    with pytest.raises(ConfigError) as info:
        parse(text, "lb.ini", check_endpoint=check_endpoint)
    return [str(p) for p in info.value.problems]


def messages(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "lb.ini")
    return [p.message for p in info.value.problems]


def ok(text: str) -> Config:
    return parse(text, "lb.ini")


def with_member(line: str) -> str:
    """A config whose only balancer has the member ``line``."""
    return FRONT + "ProxyPass = / balancer://c\n[balancer://c]\nBalancerMember = " + line + "\n"


def with_proxyset(line: str) -> str:
    return FRONT + CLUSTER + "ProxySet = " + line + "\n"


# -- INI syntax ---------------------------------------------------------------------------------


def test_full_line_comments_with_hash_and_semicolon_are_ignored() -> None:
    config = ok("# top\n; top\n[frontend]\n  # indented\nlisten = tcp:8080\n; end\n")
    assert [x.description for x in config.frontends[0].listen] == ["tcp:8080"]


def test_inline_comment_after_whitespace_is_stripped() -> None:
    config = ok("[frontend]   ; a comment\nlisten = tcp:8080   # another\n")
    assert config.frontends[0].listen[0].description == "tcp:8080"


def test_comment_prefix_without_whitespace_before_it_stays_in_the_value() -> None:
    config = ok(FRONT + "ProxyPass = /a;b http://h/x#y\n".replace("#y", ""))
    assert config.frontends[0].rules[0].pattern == "/a;b"


def test_keys_are_case_insensitive() -> None:
    config = ok("[frontend]\nLISTEN = tcp:8080\nproxypass = /a http://h/\n")
    assert config.frontends[0].rules[0].kind is RuleKind.PREFIX


def test_each_continuation_line_is_an_instance_with_its_own_line() -> None:
    config = ok(
        "[frontend]\nlisten = tcp:8080\nProxyPass = /a http://h/a\n"
        "            /b http://h/b\n\n            /c http://h/c\n"
    )
    assert [(r.pattern, r.where.line) for r in config.frontends[0].rules] == [
        ("/a", 3),
        ("/b", 4),
        ("/c", 6),
    ]


def test_blank_and_comment_lines_inside_a_value_do_not_end_it() -> None:
    config = ok(FRONT + "ProxyPass =\n  ; first\n  /a http://h/a\n\n  # second\n  /b http://h/b\n")
    assert [r.where.line for r in config.frontends[0].rules] == [5, 8]


def test_empty_first_line_of_a_multiline_value_is_fine() -> None:
    config = ok("[frontend]\nlisten =\n  tcp:8080\n  tcp:8081\n")
    assert [x.where.line for x in config.frontends[0].listen] == [3, 4]


def test_crlf_and_cr_line_endings_count_lines_like_lf() -> None:
    config = ok("[frontend]\r\nlisten = tcp:8080\rProxyPass = /a http://h/\r\n")
    assert config.frontends[0].rules[0].where.line == 3


def test_duplicate_key_is_an_error_naming_the_first_line() -> None:
    found = problems(FRONT + "ProxyPass = /a http://h/\nproxypass = /b http://h/\n")
    assert found == [
        "lb.ini:4: proxypass: duplicate directive in [frontend] (first at line 3); "
        "write each instance on its own indented line under one key"
    ]


def test_duplicate_section_is_an_error_naming_the_first_line() -> None:
    found = problems(FRONT + CLUSTER + "[balancer://c]\nBalancerMember = http://x\n")
    assert found == ["lb.ini:5: section: duplicate section [balancer://c] (first at line 3)"]


def test_duplicate_section_differing_in_case_is_an_error() -> None:
    found = problems("[frontend:www]\nlisten = tcp:1\n[Frontend:WWW]\nlisten = tcp:2\n")
    assert found == ["lb.ini:3: section: duplicate section [Frontend:WWW] (first at line 1)"]


def test_line_before_the_first_section_is_an_error() -> None:
    assert problems("listen = tcp:80\n" + FRONT) == [
        "lb.ini:1: config: a line before the first [section] header"
    ]


def test_line_without_equals_is_an_error_hinting_at_indentation() -> None:
    found = problems(FRONT + "ProxyPass = /a http://h/\n/b http://h/\n")
    assert found == [
        "lb.ini:4: config: expected 'directive = value', got '/b http://h/' "
        "(a value continuing on the next line must be indented)"
    ]


def test_colon_is_not_a_key_value_delimiter() -> None:
    assert problems("[frontend]\nlisten: tcp:8080\n")[1].startswith("lb.ini:2: config: expected")


def test_text_after_a_section_header_is_an_error() -> None:
    assert problems("[frontend] x\nlisten = tcp:1\n") == [
        "lb.ini:1: section: unexpected text after the section header [frontend]"
    ]


def test_a_line_that_looks_like_a_key_but_is_not_indented_gets_an_indentation_hint() -> None:
    text = with_member("http://a:1") + "http://b:1 route=x\n"
    assert messages(text) == [
        "unknown directive 'http://b:1 route' in [balancer://c] "
        "(a value continuing on the next line must be indented)"
    ]


def test_quoted_words_may_hold_spaces_and_escaped_quotes() -> None:
    config = ok(FRONT + 'ProxyPassMatch = "^/a b\\"c$" http://h/\n')
    assert config.frontends[0].rules[0].pattern == '^/a b"c$'


def test_unterminated_quote_is_an_error() -> None:
    assert messages(FRONT + 'ProxyPass = "/a http://h/\n') == [
        "unterminated quote \" in '\"/a http://h/'"
    ]


# -- sections -----------------------------------------------------------------------------------


def test_unknown_section_suggests_the_closest_known_one() -> None:
    assert problems("[frontnd:www]\n" + FRONT) == [
        "lb.ini:1: section: unknown section 'frontnd:www' (did you mean 'frontend:www'?)"
    ]


@pytest.mark.parametrize(
    ("header", "meant"),
    [
        ("balancr://c", "balancer://c"),
        ("balancer:/c", "balancer://c"),
        ("Proxy balancer://c", "balancer://c"),
        ("ajpbalancr", "ajpbalancer"),
        ("frontend www", "frontend:www"),
    ],
)
def test_unknown_section_suggestions(header: str, meant: str) -> None:
    assert messages(f"[{header}]\n" + FRONT) == [
        f"unknown section {header!r} (did you mean {meant!r}?)"
    ]


def test_default_section_is_not_special_and_is_unknown() -> None:
    assert messages("[DEFAULT]\n" + FRONT)[0].startswith("unknown section 'DEFAULT'")


def test_at_least_one_frontend_is_required() -> None:
    assert problems(CLUSTER) == [
        "lb.ini:1: section: at least one [frontend] or [frontend:NAME] section is required"
    ]


def test_empty_file_needs_a_frontend() -> None:
    assert messages("") == ["at least one [frontend] or [frontend:NAME] section is required"]


def test_frontend_without_name_has_empty_name() -> None:
    assert ok(FRONT).frontends[0].name == ""


def test_frontend_name_and_header_line_are_kept() -> None:
    frontend = ok("\n[frontend:www]\nlisten = tcp:1\n").frontends[0]
    assert (frontend.name, frontend.where) == ("www", Location("lb.ini", 2))


def test_section_kinds_are_case_insensitive() -> None:
    config = ok(
        "[AJPBalancer]\nworkers = 1\n[FrontEnd:www]\nlisten = tcp:1\n[Balancer://C]\n"
        "BalancerMember = http://h\n"
    )
    assert (config.frontends[0].name, config.balancers[0].name) == ("www", "c")


def test_frontend_colon_without_name_is_an_error() -> None:
    assert messages("[frontend:]\nlisten = tcp:1\n") == [
        "[frontend:] needs a name, or write [frontend]"
    ]


@pytest.mark.parametrize("header", ["frontend:a b", "frontend:-x", "balancer://a/b", "balancer://"])
def test_section_names_are_restricted_to_name_characters(header: str) -> None:
    found = messages(f"[{header}]\nlisten = tcp:1\nBalancerMember = http://h\n" + FRONT)
    assert any("name" in m and "must be letters, digits" in m for m in found)


def test_ajpbalancer_section_may_appear_only_once() -> None:
    found = problems("[ajpbalancer]\n[AJPBALANCER]\n" + FRONT)
    assert found == ["lb.ini:2: section: duplicate section [AJPBALANCER] (first at line 1)"]


def test_balancer_names_are_case_insensitive_and_stored_lower_case() -> None:
    config = ok(
        FRONT + "ProxyPass = / balancer://MyCluster/\n[balancer://MYCLUSTER]\n"
        "BalancerMember = http://h\n"
    )
    assert config.balancers[0].name == "mycluster"
    assert config.frontends[0].rules[0].target == URL(Scheme.BALANCER, "mycluster", None, "/")


def test_balancer_without_member_is_an_error() -> None:
    assert problems(FRONT + "[balancer://c]\nProxySet = lbmethod=byrequests\n") == [
        "lb.ini:3: BalancerMember: [balancer://c] needs at least one BalancerMember"
    ]


def test_frontend_without_listen_is_an_error() -> None:
    assert problems("[frontend:www]\nProxyPass = / http://h/\n") == [
        "lb.ini:1: listen: [frontend:www] needs at least one listen line"
    ]


# -- problems -----------------------------------------------------------------------------------


def test_problem_reads_file_line_directive_message() -> None:
    text = "\n" * 12 + "[balancer://c]\nBalancerMember = http://h rout=node1\n" + FRONT
    with pytest.raises(ConfigError) as info:
        parse(text, "etc/lb.ini")
    assert str(info.value) == (
        "etc/lb.ini:14: BalancerMember: unknown parameter 'rout' (did you mean 'route'?)"
    )
    assert info.value.problems == (
        Problem(
            Location("etc/lb.ini", 14),
            "BalancerMember",
            "unknown parameter 'rout' (did you mean 'route'?)",
        ),
    )


def test_all_problems_are_collected_in_file_order() -> None:
    text = (
        "[balancer://c]\nBalancerMember = http://h:0\n  http://h loadfactor=0\n"
        "[frontend]\nlisten = tcp:1\nProxyPass = x http://h/\nProxyPreserveHost = maybe\n"
        "[frontnd]\n"
    )
    lines = [p.split(":")[1] for p in problems(text)]
    assert lines == ["2", "3", "6", "7", "8"]


def test_directive_is_printed_in_its_canonical_spelling() -> None:
    assert problems(FRONT + CLUSTER + "proxyset = lbmethod=nope\n")[0].startswith(
        "lb.ini:5: ProxySet: lbmethod 'nope'"
    )


def test_config_error_message_has_one_line_per_problem() -> None:
    with pytest.raises(ConfigError) as info:
        parse("[x]\n[y]\n", "lb.ini")
    assert len(str(info.value).splitlines()) == 3


# -- directives ---------------------------------------------------------------------------------


def test_unknown_directive_suggests_the_closest_of_its_section() -> None:
    assert problems(FRONT + "ProxyPas = / http://h/\n") == [
        "lb.ini:3: ProxyPas: unknown directive 'ProxyPas' in [frontend] (did you mean 'ProxyPass'?)"
    ]


def test_directive_of_another_section_says_where_it_belongs() -> None:
    assert problems(FRONT + "ProxySet = lbmethod=byrequests\n") == [
        "lb.ini:3: ProxySet: belongs in [balancer://NAME], not in [frontend]"
    ]


def test_directive_without_value_is_an_error() -> None:
    assert problems(FRONT + "ProxyPreserveHost =\n") == [
        "lb.ini:3: ProxyPreserveHost: needs a value: On | Off"
    ]


def test_one_value_directive_rejects_a_second_line() -> None:
    assert problems(FRONT + "ProxyPreserveHost = on\n  off\n") == [
        "lb.ini:4: ProxyPreserveHost: takes one value, not one per line"
    ]


def test_one_value_directive_rejects_two_words() -> None:
    assert messages("[ajpbalancer]\nProxyTimeout = 3 4\n" + FRONT) == [
        "expected one value (SECONDS), got 2 words"
    ]


# -- [ajpbalancer] ------------------------------------------------------------------------------


def test_settings_default_when_section_is_absent() -> None:
    settings_ = ok(FRONT).settings
    assert (settings_.workers, settings_.admin, settings_.access_log, settings_.proxy_timeout) == (
        1,
        None,
        "-",
        300.0,
    )


def test_workers_one_is_accepted() -> None:
    assert ok("[ajpbalancer]\nworkers = 1\n" + FRONT).settings.workers == 1


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_workers_must_be_a_positive_integer_or_auto(value: str) -> None:
    assert messages(f"[ajpbalancer]\nworkers = {value}\n" + FRONT) == [
        f"workers must be an integer from 1 to 256, got {value!r}"
    ]


def test_workers_other_than_one_is_accepted() -> None:
    assert ok("[ajpbalancer]\nworkers = 4\n" + FRONT).settings.workers == 4


def test_workers_auto_resolves_to_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert ok("[ajpbalancer]\nworkers = AUTO\n" + FRONT).settings.workers == 1


def test_workers_auto_on_several_cores_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert ok("[ajpbalancer]\nworkers = auto\n" + FRONT).settings.workers == 8


@pytest.mark.parametrize(
    ("value", "stored"),
    [("-", "-"), ("off", "off"), ("OFF", "off"), ("/var/log/access.log", "/var/log/access.log")],
)
def test_access_log_takes_dash_off_or_a_path(value: str, stored: str) -> None:
    assert ok(f"[ajpbalancer]\naccess_log = {value}\n" + FRONT).settings.access_log == stored


def test_proxy_timeout_accepts_decimal_seconds() -> None:
    assert ok("[ajpbalancer]\nProxyTimeout = 2.5\n" + FRONT).settings.proxy_timeout == 2.5


@pytest.mark.parametrize("value", ["0", "-3", "abc", "500ms"])
def test_proxy_timeout_must_be_more_than_zero_seconds(value: str) -> None:
    assert "ProxyTimeout must be" in messages(f"[ajpbalancer]\nProxyTimeout = {value}\n" + FRONT)[0]


def test_admin_on_loopback_needs_no_users() -> None:
    admin = ok("[ajpbalancer]\nadmin = tcp:8081:interface=127.0.0.1\n" + FRONT).settings.admin
    assert admin is not None and admin.description == "tcp:8081:interface=127.0.0.1"


@pytest.mark.parametrize(
    "endpoint",
    [
        "tcp:8081",
        "tcp:8081:interface=0.0.0.0",
        "ssl:8443:interface=10.0.0.1",
        "systemd:domain=INET:index=0",
    ],
)
def test_admin_beyond_loopback_requires_admin_users(endpoint: str) -> None:
    assert messages(f"[ajpbalancer]\nadmin = {endpoint}\n" + FRONT) == [
        f"{endpoint!r} listens beyond loopback; set admin_users to require a password"
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        "tcp:8081:interface=127.0.0.1",
        "tcp:8081:interface=localhost",
        "tcp:8081:127.0.0.2:50",
        "tcp6:8081:interface=\\:\\:1",
        "ssl:8443:privateKey=k.pem:interface=127.0.0.1",
        "unix:/run/ajpbalancer.sock",
    ],
)
def test_admin_on_loopback_or_a_unix_socket_needs_no_users(endpoint: str) -> None:
    admin = ok(f"[ajpbalancer]\nadmin = {endpoint}\n" + FRONT).settings.admin
    assert admin is not None and admin.description == endpoint


def test_admin_beyond_loopback_with_admin_users_is_fine() -> None:
    settings_ = ok("[ajpbalancer]\nadmin = tcp:8081\nadmin_users = etc/u\n" + FRONT).settings
    assert settings_.admin_users == "etc/u"


def test_admin_users_without_admin_is_an_error() -> None:
    assert messages("[ajpbalancer]\nadmin_users = etc/u\n" + FRONT) == [
        "has no effect without admin"
    ]


def test_admin_endpoint_is_checked_by_the_injected_function() -> None:
    found = problems(
        "[ajpbalancer]\nadmin = bogus:1\n" + FRONT,
        check_endpoint=lambda d: "unknown endpoint type 'bogus'" if d.startswith("bogus") else None,
    )
    assert found == ["lb.ini:2: admin: unknown endpoint type 'bogus'"]


# -- [frontend] ---------------------------------------------------------------------------------


def test_listen_takes_one_endpoint_per_line() -> None:
    listen = ok("[frontend]\nlisten = tcp:8080\n  ssl:8443:privateKey=k.pem\n").frontends[0].listen
    assert [(x.description, x.where.line) for x in listen] == [
        ("tcp:8080", 2),
        ("ssl:8443:privateKey=k.pem", 3),
    ]


def test_listen_with_two_endpoints_on_one_line_is_an_error() -> None:
    assert messages("[frontend]\nlisten = tcp:1 tcp:2\n") == [
        "expected one value (ENDPOINT[:backlog=N]), got 2 words; write one per line"
    ]


def test_every_listen_line_is_checked_by_the_injected_function() -> None:
    seen: list[str] = []

    def check(description: str) -> str | None:
        seen.append(description)
        return "no such port" if description == "tcp:2" else None

    found = problems("[frontend]\nlisten = tcp:1\n  tcp:2\n", check_endpoint=check)
    assert (seen, found) == (["tcp:1", "tcp:2"], ["lb.ini:3: listen: no such port"])


def test_same_endpoint_twice_is_an_error() -> None:
    assert problems(FRONT + "[frontend:b]\nlisten = tcp:8080\n") == [
        "lb.ini:4: listen: duplicate endpoint 'tcp:8080' (first at line 2)"
    ]


def test_proxy_pass_prefix_rule_to_a_url() -> None:
    rule = ok(FRONT + "ProxyPass = /app http://Backend:8080/app\n").frontends[0].rules[0]
    assert (rule.kind, rule.pattern, rule.target, rule.where.line) == (
        RuleKind.PREFIX,
        "/app",
        URL(Scheme.HTTP, "backend", 8080, "/app"),
        3,
    )


def test_proxy_pass_exclusion_has_no_target() -> None:
    rule = ok(FRONT + "ProxyPass = /static !\n").frontends[0].rules[0]
    assert (rule.pattern, rule.target) == ("/static", None)


def test_proxy_pass_exclusion_takes_no_parameters() -> None:
    assert messages(FRONT + "ProxyPass = /static ! timeout=1\n") == [
        "an exclusion (PATH !) takes no parameters"
    ]


def test_proxy_pass_path_must_start_with_a_slash() -> None:
    assert messages(FRONT + "ProxyPass = app http://h/\n") == [
        "path must be a path starting with '/', got 'app'"
    ]


def test_proxy_pass_needs_a_target() -> None:
    assert messages(FRONT + "ProxyPass = /app\n") == ["expected PATH URL [key=value ...] or PATH !"]


def test_member_parameters_on_a_direct_target_are_kept_on_the_rule() -> None:
    rule = ok(FRONT + "ProxyPass = /a https://h/ timeout=5 connectiontimeout=250ms verify=off\n")
    params = rule.frontends[0].rules[0].params
    assert (params.timeout, params.connectiontimeout, params.verify) == (5.0, 0.25, False)


def test_parameters_on_a_balancer_target_are_an_error() -> None:
    assert messages(FRONT + "ProxyPass = / balancer://c/ stickysession=JSESSIONID\n" + CLUSTER) == [
        "parameters on a balancer:// target are not allowed; set balancer parameters with "
        "ProxySet in [balancer://c]"
    ]


@pytest.mark.parametrize("name", ["route", "redirect", "loadfactor", "lbset"])
def test_balancer_member_only_parameters_are_refused_on_a_rule(name: str) -> None:
    example = _directives.MEMBER_PARAMS[name].example
    assert messages(FRONT + f"ProxyPass = / http://h/ {name}={example}\n") == [
        f"{name} only applies to a BalancerMember"
    ]


def test_rules_follow_key_order_then_line_order() -> None:
    rules = (
        ok(
            FRONT + "ProxyPassMatch = ^/m1 http://h/\n  ^/m2 http://h/\nProxyPass = /p1 http://h/\n"
            "  /p2 !\n"
        )
        .frontends[0]
        .rules
    )
    assert [r.pattern for r in rules] == ["^/m1", "^/m2", "/p1", "/p2"]


def test_proxy_pass_match_compiles_the_regex() -> None:
    rule = ok(FRONT + "ProxyPassMatch = ^/(.*)\\.jsp$ http://h/$1.jsp\n").frontends[0].rules[0]
    assert rule.regex is not None and rule.regex.pattern == "^/(.*)\\.jsp$"
    assert rule.target is not None and rule.target.path == "/$1.jsp"


def test_proxy_pass_match_bad_regex_quotes_the_engine_message() -> None:
    assert messages(FRONT + "ProxyPassMatch = ^/(a http://h/\n") == [
        "invalid regular expression '^/(a': missing ) at position 4"
    ]


def test_proxy_pass_match_takes_pcre_syntax_that_re2_refuses() -> None:
    """Look-ahead, back-references, possessive quantifiers: Apache's PCRE has them."""
    for pattern in (r"^/(?!static/)(.*)$", r"^/(a)\1$", r"^/a++$", r"^/(?>ab|a)c$"):
        rule = ok(FRONT + f"ProxyPassMatch = {pattern} http://h/\n").frontends[0].rules[0]
        assert rule.regex is not None and rule.regex.engine is Engine.BACKTRACKING, pattern


def test_proxy_pass_match_exclusion() -> None:
    rule = ok(FRONT + "ProxyPassMatch = \\.png$ !\n").frontends[0].rules[0]
    assert (rule.kind, rule.target, rule.regex is not None) == (RuleKind.REGEX, None, True)


def test_back_reference_zero_is_the_whole_match_as_in_apache() -> None:
    rule = ok(FRONT + "ProxyPassMatch = ^/x/.*$ http://h/y$0\n").frontends[0].rules[0]
    assert rule.target is not None and rule.target.path == "/y$0"


def test_back_reference_beyond_the_groups_is_an_error() -> None:
    assert messages(FRONT + "ProxyPassMatch = ^/(a)/(b) http://h/$1/$3\n") == [
        "back-reference $3 but '^/(a)/(b)' has 2 groups"
    ]


def test_back_reference_right_after_the_authority_begins_the_path() -> None:
    rule = ok(FRONT + "ProxyPassMatch = ^(/.*)$ balancer://c$1\n" + CLUSTER).frontends[0].rules[0]
    assert rule.target == URL(Scheme.BALANCER, "c", None, "$1")


def test_back_reference_after_a_port_begins_the_path() -> None:
    rule = ok(FRONT + "ProxyPassMatch = ^(/.*)$ http://h:81$1\n").frontends[0].rules[0]
    assert rule.target == URL(Scheme.HTTP, "h", 81, "$1")


@pytest.mark.parametrize(
    "target",
    [
        "http://h$1.example/",
        "http://h$1:80/",
        "http://h:$1/",
        "http://$1/",
        "$1://h/",
        "http$1://h/",
        "http://[::1]$1x/",
        "$1",
    ],
)
def test_back_reference_in_scheme_host_or_port_is_refused(target: str) -> None:
    found = messages(FRONT + f"ProxyPassMatch = ^/(.*)$ {target}\n")
    assert len(found) == 1 and "a client-controlled capture must not choose the backend" in found[0]


def test_dollar_in_a_proxy_pass_host_is_just_an_invalid_host() -> None:
    assert messages(FRONT + "ProxyPass = / http://h$1/\n") == [
        "invalid URL 'http://h$1/': 'h$1' is not a host name or address"
    ]


def test_undefined_balancer_is_an_error_with_suggestion() -> None:
    assert messages(FRONT + "ProxyPass = / balancer://cc/\n" + CLUSTER) == [
        "undefined balancer 'cc' (did you mean 'c'?)"
    ]


def test_balancer_may_be_defined_after_the_frontend_using_it() -> None:
    assert ok(FRONT + "ProxyPass = / balancer://c/\n" + CLUSTER).balancers[0].name == "c"


def test_flags_default_to_apaches_defaults() -> None:
    frontend = ok(FRONT).frontends[0]
    assert (frontend.preserve_host, frontend.add_headers) == (False, True)


def test_flags_take_on_and_off_in_any_case() -> None:
    frontend = ok(FRONT + "ProxyPreserveHost = ON\nProxyAddHeaders = Off\n").frontends[0]
    assert (frontend.preserve_host, frontend.add_headers) == (True, False)


@pytest.mark.parametrize("value", ["yes", "true", "1", "no"])
def test_flags_accept_only_on_and_off(value: str) -> None:
    assert messages(FRONT + f"ProxyPreserveHost = {value}\n") == [
        f"ProxyPreserveHost must be On or Off, got {value!r}"
    ]


def test_reverse_rules() -> None:
    frontend = ok(
        FRONT + "ProxyPassReverse = / balancer://c/\nProxyPassReverseCookieDomain = a b\n"
        "ProxyPassReverseCookiePath = /app /\n" + CLUSTER
    ).frontends[0]
    assert frontend.reverse[0].url == URL(Scheme.BALANCER, "c", None, "/")
    assert (frontend.cookie_domain[0].internal, frontend.cookie_domain[0].public) == ("a", "b")
    assert (frontend.cookie_path[0].internal, frontend.cookie_path[0].public) == ("/app", "/")


def test_reverse_rule_to_an_undefined_balancer_is_an_error() -> None:
    assert messages(FRONT + "ProxyPassReverse = / balancer://nope/\n") == [
        "undefined balancer 'nope'"
    ]


def test_cookie_rules_take_exactly_two_words() -> None:
    assert messages(FRONT + "ProxyPassReverseCookiePath = /app\n") == [
        "expected INTERNAL PUBLIC, got 1 words"
    ]


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("http://h", URL(Scheme.HTTP, "h", None, "")),
        ("HTTP://Host.Example:8080/a/b", URL(Scheme.HTTP, "host.example", 8080, "/a/b")),
        ("https://[::1]:8443/", URL(Scheme.HTTPS, "::1", 8443, "/")),
        ("https://[2001:DB8::1]", URL(Scheme.HTTPS, "2001:db8::1", None, "")),
        ("http://10.0.0.1:65535/%20x", URL(Scheme.HTTP, "10.0.0.1", 65535, "/%20x")),
        ("http://a_b-c:1/", URL(Scheme.HTTP, "a_b-c", 1, "/")),
    ],
)
def test_valid_rule_target_urls(text: str, url: URL) -> None:
    assert ok(FRONT + f"ProxyPass = / {text}\n").frontends[0].rules[0].target == url


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ftp://h/", "scheme 'ftp' is not one of http, https, ajp, balancer"),
        ("h:80", "expected scheme://host[:port][/path]"),
        ("http://", "the host is missing"),
        ("http://:80/", "the host is missing"),
        ("http://h:0/", "port must be from 1 to 65535, got '0'"),
        ("http://h:65536/", "port must be from 1 to 65535, got '65536'"),
        ("http://h:/", "port must be from 1 to 65535, got ''"),
        ("http://h:x/", "port must be from 1 to 65535, got 'x'"),
        ("http://u@h/", "user information (user@) is not allowed"),
        ("http://u:p@h/", "user information (user@) is not allowed"),
        ("http://h/?q", "a query (?…) is not allowed"),
        ("http://h/#f", "a fragment (#…) is not allowed"),
        ("http://::1/", "an IPv6 address must be written in brackets, [::1]"),
        ("http://[::g]/", "'::g' is not an IPv6 address"),
        ("http://[::1/", "missing ']' after the IPv6 address"),
        ("http://[::1]x/", "expected ':port' after the IPv6 address"),
        ("http://h!/", "'h!' is not a host name or address"),
        ("balancer://c:80/", "a balancer:// URL has no port"),
    ],
)
def test_invalid_urls_say_why(text: str, reason: str) -> None:
    assert messages(FRONT + f"ProxyPass = / {text}\n" + CLUSTER) == [
        f"invalid URL {text!r}: {reason}"
    ]


def test_rule_target_ajp_is_accepted() -> None:
    rule = ok(FRONT + "ProxyPass = / ajp://h:8009/ secret=s\n").frontends[0].rules[0]
    assert rule.target is not None
    assert (str(rule.target), rule.params.secret) == ("ajp://h:8009/", "s")


# -- [balancer://NAME] --------------------------------------------------------------------------


def test_balancer_members_in_order_with_their_lines() -> None:
    balancer = ok(
        FRONT + "[balancer://c]\nBalancerMember = http://a:1 route=n1\n  https://b:2 route=n2\n"
    ).balancers[0]
    assert [(m.name, m.params.route, m.where.line) for m in balancer.members] == [
        ("http://a:1", "n1", 4),
        ("https://b:2", "n2", 5),
    ]
    assert balancer.where == Location("lb.ini", 3)


def test_member_url_must_not_be_a_balancer() -> None:
    assert messages(with_member("balancer://c")) == [
        "a member URL must be http://, https:// or ajp://, got 'balancer://c'"
    ]


def test_ajp_member_is_accepted_with_its_parameters() -> None:
    member = ok(with_member("ajp://h:8009 secret=s packetsize=16384 ping=500ms")).balancers[0]
    params = member.members[0].params
    assert (params.secret, params.packetsize, params.ping) == ("s", 16384, 0.5)


def test_ajp_member() -> None:
    member = ok(with_member("ajp://h route=a secret=s packetsize=65536")).balancers[0].members[0]
    assert (member.url.effective_port, member.params.secret, member.params.packetsize) == (
        8009,
        "s",
        65536,
    )


def test_duplicate_member_url_is_an_error_counting_default_ports() -> None:
    assert problems(with_member("http://a:80/\n  http://a")) == [
        "lb.ini:6: BalancerMember: duplicate member 'http://a' (first at line 5)"
    ]


def test_same_host_on_another_scheme_is_not_a_duplicate() -> None:
    assert len(ok(with_member("http://a:443\n  https://a")).balancers[0].members) == 2


def test_duplicate_route_in_a_balancer_is_an_error() -> None:
    assert problems(with_member("http://a route=n1\n  http://b route=n1")) == [
        "lb.ini:6: BalancerMember: duplicate route 'n1' in this balancer (first at line 5)"
    ]


def test_same_route_in_two_balancers_is_fine() -> None:
    text = with_member("http://a route=n1") + "[balancer://d]\nBalancerMember = http://b route=n1\n"
    assert len(ok(text).balancers) == 2


def test_parameter_given_twice_on_one_line_is_an_error() -> None:
    assert messages(with_member("http://a route=x Route=y")) == [
        "parameter 'route' given twice, first at line 5"
    ]


def test_parameter_without_value_is_an_error() -> None:
    assert messages(with_member("http://a route=")) == [
        "parameter 'route' needs a value (route=VALUE)"
    ]


def test_word_that_is_not_key_value_is_an_error() -> None:
    assert messages(with_member("http://a nocanon")) == ["expected key=value, got 'nocanon'"]


def test_parameter_names_are_case_insensitive() -> None:
    member = ok(with_member("http://a ROUTE=n1 LoadFactor=2.5")).balancers[0].members[0]
    assert (member.params.route, member.params.loadfactor) == ("n1", 2.5)


def test_balancer_parameter_on_a_member_points_to_proxyset() -> None:
    assert messages(with_member("http://a lbmethod=byrequests")) == [
        "'lbmethod' is a balancer parameter: set it with ProxySet in [balancer://NAME]"
    ]


def test_apache_form_with_the_balancer_url_first_is_accepted() -> None:
    text = FRONT + "[balancer://c]\nBalancerMember = balancer://c http://a route=x\n"
    assert ok(text).balancers[0].members[0].params.route == "x"


def test_apache_form_naming_another_balancer_is_an_error() -> None:
    text = FRONT + "[balancer://c]\nBalancerMember = balancer://d http://a\n"
    assert messages(text) == ["'balancer://d' is not this section's balancer://c"]


MEMBER_CASES: list[tuple[str, str, object]] = [
    ("route", "node-1.a", "node-1.a"),
    ("loadfactor", "1", 1.0),
    ("loadfactor", "100", 100.0),
    ("loadfactor", "2.5", 2.5),
    ("timeout", "30", 30.0),
    ("timeout", "500ms", 0.5),
    ("timeout", "2s", 2.0),
    ("connectiontimeout", "250ms", 0.25),
    ("ttl", "1", 1.0),
    ("max", "1", 1),
    ("keepalive", "On", True),
    ("disablereuse", "on", True),
    ("verify", "off", False),
]


@pytest.mark.parametrize(("name", "text", "value"), MEMBER_CASES)
def test_supported_member_parameter_values(name: str, text: str, value: object) -> None:
    scheme = "https" if name == "verify" else "http"
    member = ok(with_member(f"{scheme}://a {name}={text}")).balancers[0].members[0]
    assert getattr(member.params, name) == value


AJP_MEMBER_CASES: list[tuple[str, str, object]] = [
    ("redirect", "n2", "n2"),
    ("lbset", "0", 0),
    ("lbset", "99", 99),
    ("status", "+H", frozenset("H")),
    ("status", "D", frozenset("D")),
    ("status", "S-E", frozenset("S")),
    ("status", "+h+i", frozenset("HI")),
    ("status", "-E", frozenset()),
    ("retry", "0", 0.0),
    ("ping", "0", 0.0),
    ("ping", "100ms", 0.1),
    ("secret", "s3cret", "s3cret"),
    ("packetsize", "8192", 8192),
    ("hcmethod", "head", "HEAD"),
    ("hcmethod", "cping", "CPING"),
    ("hcuri", "/up", "/up"),
    ("hcinterval", "1", 1.0),
    ("hcpasses", "1", 1),
    ("hcfails", "3", 3),
]


@pytest.mark.parametrize(("name", "text", "value"), AJP_MEMBER_CASES)
def test_member_parameter_values_on_an_ajp_member(name: str, text: str, value: object) -> None:
    member = ok(with_member(f"ajp://a {name}={text}")).balancers[0].members[0]
    assert getattr(member.params, name) == value


BAD_MEMBER_CASES: list[tuple[str, str, str]] = [
    ("route", "a;b", "route must be a token"),
    ("loadfactor", "0", "loadfactor must be a number from 1 to 100, got '0'"),
    ("loadfactor", "0.5", "loadfactor must be a number from 1 to 100, got '0.5'"),
    ("loadfactor", "101", "loadfactor must be a number from 1 to 100, got '101'"),
    ("loadfactor", "1e2", "loadfactor must be a number from 1 to 100, got '1e2'"),
    ("loadfactor", "nan", "loadfactor must be a number from 1 to 100, got 'nan'"),
    ("lbset", "100", "lbset must be an integer from 0 to 99, got '100'"),
    ("lbset", "-1", "lbset must be an integer from 0 to 99, got '-1'"),
    ("status", "+X", "status letter 'X' in '+X' is not one of H D S N E I"),
    ("status", "H+", "status 'H+' ends without a letter (e.g. +H, D, S-E)"),
    ("retry", "-1", "retry must be a number of seconds 0 seconds or more, got '-1'"),
    ("timeout", "0", "timeout must be more than 0 seconds, got '0'"),
    ("timeout", "0ms", "timeout must be more than 0 seconds, got '0ms'"),
    ("timeout", "x", "timeout must be a number of seconds (or milliseconds with 'ms') more than"),
    ("connectiontimeout", "0", "connectiontimeout must be more than 0 seconds, got '0'"),
    ("ttl", "0", "ttl must be at least 1 second, got '0'"),
    ("ttl", "500ms", "ttl must be a number of seconds at least 1 second, got '500ms'"),
    ("max", "0", "max must be an integer from 1 to 65535, got '0'"),
    ("keepalive", "yes", "keepalive must be On or Off, got 'yes'"),
    ("disablereuse", "1", "disablereuse must be On or Off, got '1'"),
    ("ping", "-1", "ping must be a number of seconds (or milliseconds with 'ms') 0 seconds"),
    ("packetsize", "8191", "packetsize must be an integer from 8192 to 65536, got '8191'"),
    ("packetsize", "65537", "packetsize must be an integer from 8192 to 65536, got '65537'"),
    ("hcmethod", "POST", "hcmethod 'POST' is not one of GET, HEAD, OPTIONS, CPING, TCP"),
    ("hcuri", "up", "hcuri must be a path starting with '/', got 'up'"),
    ("hcinterval", "0", "hcinterval must be at least 1 second, got '0'"),
    ("hcpasses", "0", "hcpasses must be an integer from 1 to 1000, got '0'"),
    ("hcfails", "0", "hcfails must be an integer from 1 to 1000, got '0'"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_MEMBER_CASES)
def test_invalid_member_parameter_values_say_what_is_allowed(
    name: str, text: str, message: str
) -> None:
    """An invalid value is reported alone, saying what is allowed."""
    found = messages(with_member(f"ajp://a {name}={text}"))
    assert len(found) == 1 and found[0].startswith(message), found


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http://a secret=s", "secret is only for ajp:// URLs, not http://"),
        ("https://a packetsize=8192", "packetsize is only for ajp:// URLs, not https://"),
        ("http://a verify=off", "verify is only for https:// URLs, not http://"),
        ("http://a hcmethod=CPING", "hcmethod CPING is only for ajp:// members, not http://"),
    ],
)
def test_scheme_specific_member_parameters(line: str, message: str) -> None:
    assert messages(with_member(line)) == [message]


# -- ProxySet -----------------------------------------------------------------------------------


def test_proxyset_lbmethod_byrequests() -> None:
    assert ok(with_proxyset("lbmethod=ByRequests")).balancers[0].params.lbmethod == "byrequests"


def test_balancer_params_default_to_apaches() -> None:
    params = ok(FRONT + CLUSTER).balancers[0].params
    assert (params.lbmethod, params.stickysessionsep, params.forcerecovery) == (
        "byrequests",
        ".",
        True,
    )


def test_unknown_lbmethod_lists_the_methods() -> None:
    assert problems(with_proxyset("lbmethod=byrequest")) == [
        "lb.ini:5: ProxySet: lbmethod 'byrequest' is not one of byrequests, bytraffic, bybusyness"
    ]


@pytest.mark.parametrize("method", ["bytraffic", "bybusyness"])
def test_other_lbmethods_are_accepted(method: str) -> None:
    assert ok(with_proxyset(f"lbmethod={method}")).balancers[0].params.lbmethod == method


def test_proxyset_spans_lines() -> None:
    params = (
        ok(with_proxyset("lbmethod=bytraffic\n  stickysession=JSESSIONID|jsessionid"))
        .balancers[0]
        .params
    )
    assert (params.lbmethod, params.stickysession) == ("bytraffic", ("JSESSIONID", "jsessionid"))


def test_proxyset_parameter_set_twice_across_lines_is_an_error() -> None:
    assert problems(with_proxyset("nofailover=on\n  NoFailover=off")) == [
        "lb.ini:6: ProxySet: parameter 'nofailover' already set at line 5"
    ]


def test_member_parameter_in_proxyset_points_to_the_member_line() -> None:
    assert messages(with_proxyset("route=a")) == [
        "'route' is a member parameter: write it on the BalancerMember line"
    ]


def test_unknown_proxyset_parameter_suggests() -> None:
    assert messages(with_proxyset("lbmetod=byrequests")) == [
        "unknown parameter 'lbmetod' (did you mean 'lbmethod'?)"
    ]


def test_proxyset_may_name_its_own_balancer_first() -> None:
    assert ok(with_proxyset("balancer://c lbmethod=byrequests")).balancers[0].name == "c"


BALANCER_CASES: list[tuple[str, str, object]] = [
    ("stickysession", "JSESSIONID", ("JSESSIONID",)),
    ("stickysessionsep", "!", "!"),
    ("stickysessionsep", "OFF", None),
    ("scolonpathdelim", "on", True),
    ("nofailover", "On", True),
    ("maxattempts", "0", 0),
    ("failonstatus", "500,503,500", frozenset({500, 503})),
    ("failontimeout", "on", True),
    ("forcerecovery", "off", False),
    ("timeout", "1", 1.0),
    ("timeout", "1500ms", 1.5),
]


@pytest.mark.parametrize(("name", "text", "value"), BALANCER_CASES)
def test_balancer_parameter_values(name: str, text: str, value: object) -> None:
    params = ok(with_proxyset(f"{name}={text}")).balancers[0].params
    assert getattr(params, name) == value


BAD_BALANCER_CASES: list[tuple[str, str, str]] = [
    ("stickysession", "A||B", "stickysession must be tokens separated by '|', got 'A||B'"),
    ("stickysession", "a;b", "stickysession must be tokens separated by '|', got 'a;b'"),
    ("stickysessionsep", "ab", "stickysessionsep must be a single character or Off, got 'ab'"),
    ("maxattempts", "-1", "maxattempts must be an integer from 0 to 100, got '-1'"),
    ("failonstatus", "500,", "failonstatus must be status codes from 100 to 599"),
    ("failonstatus", "99", "failonstatus must be status codes from 100 to 599"),
    ("failonstatus", "600", "failonstatus must be status codes from 100 to 599"),
    ("timeout", "0.5", "timeout must be at least 1 second, got '0.5'"),
    ("timeout", "999ms", "timeout must be at least 1 second, got '999ms'"),
    ("nofailover", "true", "nofailover must be On or Off, got 'true'"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_BALANCER_CASES)
def test_invalid_balancer_parameter_values_are_reported_alone(
    name: str, text: str, message: str
) -> None:
    found = messages(with_proxyset(f"{name}={text}"))
    assert len(found) == 1 and found[0].startswith(message)


@pytest.mark.parametrize("name", sorted(_directives.MEMBER_PARAMS))
def test_every_member_parameter_is_accepted(name: str) -> None:
    param = _directives.MEMBER_PARAMS[name]
    schemes = sorted(s.value for s in param.schemes)
    scheme = "http" if "http" in schemes else schemes[0]
    needed = "".join(f" {n}={_directives.MEMBER_PARAMS[n].example}" for n in param.needs)
    ok(with_member(f"{scheme}://h {name}={param.example}{needed}"))


def test_design_example_parses() -> None:
    config = parse(DESIGN_EXAMPLE, "etc/lb.ini")
    assert summary(config).splitlines()[-1] == "OK: 1 frontend, 3 rules, 1 balancer, 3 members"
    members = config.balancer("mycluster").members
    assert [m.params.route for m in members] == ["node1", "node2", "spare"]
    assert members[2].params.status == frozenset("H")
    assert config.balancer("mycluster").params.stickysession == ("JSESSIONID", "jsessionid")


DESIGN_EXAMPLE = """\
[ajpbalancer]
# process-wide settings
workers = 1                      ; worker processes sharing the listeners; "auto" = cores
admin = tcp:8081:interface=127.0.0.1   ; balancer-manager, status JSON, /metrics; omit = off
admin_users = etc/admin.htpasswd ; required when admin listens beyond loopback
access_log = -                   ; "-" = stdout, a path, or "off"; Apache combined format
ProxyTimeout = 300               ; seconds, default for member timeout

[frontend:www]                   ; one per virtual host; "[frontend]" alone is fine
listen = tcp:8080:interface=127.0.0.1
         ssl:8443:privateKey=etc/key.pem:certKey=etc/cert.pem
ProxyPass = /static !
            /app balancer://mycluster/app
ProxyPassMatch = ^(/.*)$ balancer://mycluster$1
ProxyPassReverse = / balancer://mycluster/
ProxyPassReverseCookieDomain = 127.0.0.1 localhost
ProxyPassReverseCookiePath = /app /
ProxyPreserveHost = off
ProxyAddHeaders = on

[balancer://mycluster]
BalancerMember = ajp://127.0.0.2:8009 route=node1 secret=s3cret
                 ajp://127.0.0.3:8009 route=node2 loadfactor=2
                 http://127.0.0.4:8080 route=spare status=+H
ProxySet = lbmethod=byrequests stickysession=JSESSIONID|jsessionid nofailover=off
"""


# -- did you mean: every name, misspelt ---------------------------------------------------------


def misspellings(name: str) -> list[str]:
    """One letter dropped, one doubled, two neighbours swapped."""
    middle = len(name) // 2
    swapped = name[: middle - 1] + name[middle] + name[middle - 1] + name[middle + 1 :]
    return sorted({name[:-1], name[:middle] + name[middle] + name[middle:], swapped} - {name})


@pytest.mark.parametrize("name", sorted(_directives.MEMBER_PARAMS))
def test_every_member_parameter_misspelt_gets_a_suggestion(name: str) -> None:
    for typo in misspellings(name):
        assert messages(with_member(f"http://h {typo}=1")) == [
            f"unknown parameter {typo!r} (did you mean {name!r}?)"
        ]


@pytest.mark.parametrize("name", sorted(_directives.BALANCER_PARAMS))
def test_every_proxyset_parameter_misspelt_gets_a_suggestion(name: str) -> None:
    for typo in misspellings(name):
        assert messages(with_proxyset(f"{typo}=1")) == [
            f"unknown parameter {typo!r} (did you mean {name!r}?)"
        ]


@pytest.mark.parametrize("directive", _directives.DIRECTIVES, ids=str)
def test_every_directive_misspelt_gets_a_suggestion(
    directive: _directives.Directive,
) -> None:
    kinds = _directives.SectionKind
    header = {kinds.SETTINGS: "[ajpbalancer]\n", kinds.FRONTEND: FRONT, kinds.BALANCER: CLUSTER}
    for typo in misspellings(directive.name):
        text = header[directive.section] + f"{typo} = {directive.example}\n"
        if directive.section is not kinds.FRONTEND:
            text += FRONT
        found = messages(text)
        assert found == [
            f"unknown directive {typo!r} in {header[directive.section].splitlines()[0]}"
            f" (did you mean {directive.name!r}?)"
        ]


# -- load ---------------------------------------------------------------------------------------


def test_load_reads_the_file_and_names_it_in_problems(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "lb.ini"
    path.write_text(FRONT + "ProxyPass = x http://h/\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert str(info.value).startswith(f"{path}:3: ProxyPass: ")


def test_load_returns_the_config_with_its_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "lb.ini"
    path.write_text("\ufeff" + FRONT, encoding="utf-8")
    assert load(str(path)).path == str(path)


def test_unreadable_file_is_one_config_problem(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "missing.ini")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.problems == (
        Problem(None, "config", f"cannot read {path!r}: No such file or directory"),
    )


def test_file_that_is_not_utf8_is_one_config_problem_with_its_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "lb.ini"
    path.write_bytes(FRONT.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: config: not UTF-8 text (byte 0xe9)"
    ]


def test_load_passes_check_endpoint_on(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "lb.ini"
    path.write_text(FRONT)
    with pytest.raises(ConfigError) as info:
        load(str(path), check_endpoint=lambda d: "nope")
    assert str(info.value) == f"{path}:2: listen: nope"


# -- summary ------------------------------------------------------------------------------------


def test_summary_lists_frontends_balancers_members_and_totals() -> None:
    config = ok(
        "[frontend:www]\nlisten = tcp:8080\n  tcp:8081\nProxyPass = /static !\n"
        "  / balancer://c/\n[frontend]\nlisten = tcp:9\n[balancer://c]\n"
        "BalancerMember = http://a:1 route=n1\n  http://b:2 loadfactor=2.5\n"
    )
    assert summary(config) == (
        "[frontend:www] listen tcp:8080, tcp:8081; 2 rules\n"
        "[frontend] listen tcp:9; 0 rules\n"
        "[balancer://c] lbmethod byrequests; 2 members\n"
        "  member http://a:1 route n1 loadfactor 1\n"
        "  member http://b:2 route - loadfactor 2.5\n"
        "OK: 2 frontends, 2 rules, 1 balancer, 2 members"
    )


def test_summary_uses_singular_for_one() -> None:
    config = ok(FRONT + "ProxyPass = / balancer://c/\n" + CLUSTER)
    assert summary(config).splitlines()[-1] == "OK: 1 frontend, 1 rule, 1 balancer, 1 member"


# -- the package --------------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert sorted(ajpbalancer.config.__all__) == sorted(
        [
            "ClientLimits",
            "ReadTimeout",
            "TLSOptions",
            "StateStore",
            "DemoBackend",
            "HC_METHODS",
            "LBMETHODS",
            "STATUS_FLAGS",
            "URL",
            "Balancer",
            "BalancerParams",
            "CheckEndpoint",
            "CheckFile",
            "Config",
            "DEFAULT_BACKLOG",
            "EndpointSpec",
            "endpoint_spec",
            "ConfigError",
            "CookieRule",
            "Frontend",
            "Listen",
            "Location",
            "Member",
            "MemberParams",
            "Problem",
            "ProxyRule",
            "ReverseRule",
            "RuleKind",
            "Scheme",
            "Settings",
            "load",
            "parse",
            "summary",
        ]
    )


def test_config_package_never_imports_twisted_internet() -> None:
    package = pathlib.Path(ajpbalancer.config.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("twisted.internet") for n in names), source


def test_default_member_params_are_apaches() -> None:
    params = MemberParams()
    assert (params.loadfactor, params.retry, params.packetsize, params.verify) == (
        1.0,
        60.0,
        8192,
        True,
    )


_INI_ALPHABET = st.sampled_from(
    [
        "[",
        "]",
        "=",
        ";",
        "#",
        " ",
        "\n",
        "\t",
        "frontend",
        "balancer://c",
        "listen",
        "ProxyPass",
        "BalancerMember",
        "ProxySet",
        "tcp:1",
        "http://h",
        "/",
        "!",
        "$1",
        "(",
        "route",
        "=x",
        ":",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_INI_ALPHABET, max_size=40).map("".join))
def test_parse_returns_a_config_or_raises_config_error_only(text: str) -> None:
    try:
        config = parse(text, "f.ini")
    except ConfigError as e:
        assert e.problems
        assert all(re.match(r"f\.ini:\d+: \S", str(p)) for p in e.problems)
    else:
        assert config.frontends


# -- demo backends ------------------------------------------------------------------------------


def test_demo_lines_become_demo_backends_with_routes() -> None:
    config = ok(
        "[ajpbalancer]\ndemo = http://127.0.0.1:18081 route=demo1\n"
        "       http://127.0.0.2:18082 route=demo2\n" + FRONT
    )
    demo = config.settings.demo
    assert [(str(d.url), d.route, d.where.line) for d in demo] == [
        ("http://127.0.0.1:18081", "demo1", 2),
        ("http://127.0.0.2:18082", "demo2", 3),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http://127.0.0.1:18081", "a demo backend needs route=NAME"),
        ("http://127.0.0.1 route=a", "a demo backend URL needs a port"),
        ("http://10.0.0.1:80 route=a", "a demo backend listens on loopback only"),
        ("https://127.0.0.1:443 route=a", "a demo backend URL must be http:// or ajp://"),
        ("http://127.0.0.1:1 rout=a", "unknown demo parameter 'rout=a'"),
    ],
)
def test_bad_demo_lines_are_reported_with_their_line(line: str, message: str) -> None:
    found = problems("[ajpbalancer]\ndemo = " + line + "\n" + FRONT)
    assert any(p.startswith("lb.ini:2: demo: " + message) for p in found), found


def test_proxypassreverse_takes_a_path_alone_as_apache_does() -> None:
    rule = ok(FRONT + "ProxyPassReverse = /pub/ /app/\n").frontends[0].reverse[0]
    assert (rule.path, rule.url, rule.internal_path) == ("/pub/", None, "/app/")
