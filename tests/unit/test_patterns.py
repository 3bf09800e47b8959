"""ProxyPassMatch patterns: which engine runs them, what they match, the ``--check`` advice."""

from __future__ import annotations

import pytest
import re2

from ajpbalancer.patterns import (
    MATCH_BUDGET,
    Engine,
    MatchTimeoutError,
    PatternError,
    RulePattern,
    nested_quantifiers,
    warnings,
)


def test_the_re2_binding_patterns_uses_behaves_as_expected() -> None:
    """``re2._re2.RE2`` is google-re2's binding, not its public API (pyproject.toml bounds
    the version): what ajpbalancer.patterns calls, and the shapes it relies on."""
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.log_errors = False
    compiled = re2._re2.RE2(b"^/(a)(b)?(\\xe9)?", options)
    assert compiled.ok() is True
    assert compiled.NumberOfCapturingGroups() == 3
    anchor = re2._re2.RE2.Anchor.UNANCHORED
    assert compiled.Match(anchor, b"/a\xe9", 0, 3) == [(0, 3), (1, 2), (-1, -1), (2, 3)]
    assert compiled.Match(anchor, b"/x", 0, 2)[0] == (-1, -1)
    refused = re2._re2.RE2(b"(?!x)", options)
    assert refused.ok() is False
    assert isinstance(refused.error(), bytes) and refused.error()


@pytest.mark.parametrize(
    "pattern",
    [
        r"^/app/(.*)$",
        r"\.jsp$",
        r"^/api/(\w+)*/x$",
        r"^/(?i)admin",
        r"^/(?P<name>[^/]+)/(?<other>\d{2,4})",
        r"^/\Q.*\E",
        r"^/[[:alpha:]]+$",
        r"^/\x{41}\pL",
    ],
)
def test_patterns_re2_accepts_run_on_re2(pattern: str) -> None:
    assert RulePattern(pattern).engine is Engine.RE2


@pytest.mark.parametrize(
    ("pattern", "refusal"),
    [
        (r"^/(?!static/)(.*)$", "invalid perl operator: (?!"),
        (r"^/(?<=/)x", "invalid perl operator: (?<"),
        (r"^/(a)\1$", "invalid escape sequence: \\1"),
        (r"^/a*+$", "bad repetition operator: *+"),
        (r"^/(?>a|ab)c", "invalid perl operator: (?>"),
    ],
)
def test_patterns_re2_refuses_run_on_the_backtracking_engine(pattern: str, refusal: str) -> None:
    compiled = RulePattern(pattern)
    assert compiled.engine is Engine.BACKTRACKING
    assert compiled.refusal is not None and compiled.refusal.startswith(refusal)


@pytest.mark.parametrize("pattern", ["^/(a", "^/[a", "*x", "^/a{2,1}"])
def test_a_pattern_neither_engine_accepts_is_an_error(pattern: str) -> None:
    with pytest.raises(PatternError, match="invalid regular expression"):
        RulePattern(pattern)


@pytest.mark.parametrize("pattern", [r"^/(a)(b)?$", r"^/(?!z)(a)(b)?$"])
def test_search_gives_the_whole_match_then_every_group(pattern: str) -> None:
    compiled = RulePattern(pattern)
    assert compiled.groups == 2
    assert compiled.search(b"/a") == ["/a", "a", None]
    assert compiled.search(b"/ab") == ["/ab", "a", "b"]
    assert compiled.search(b"/c") is None


def test_search_gives_groups_as_latin1_text_one_character_per_byte() -> None:
    compiled = RulePattern("^/(.)(.)$")
    assert compiled.search("/\u00e9".encode()) == ["/\xc3\xa9", "\xc3", "\xa9"]


def test_backtracking_match_over_its_time_limit_raises() -> None:
    compiled = RulePattern(r"^/(?!z)(a|aa)+$")
    with pytest.raises(MatchTimeoutError, match="the match took over 5 ms"):
        compiled.search(b"/" + b"a" * 60 + b"!", timeout=0.005)


def test_re2_needs_no_time_limit_on_the_pathological_pattern() -> None:
    compiled = RulePattern(r"^/api/(\w+)*/x$")
    assert compiled.search(b"/api/" + b"a" * 8000 + b"!", timeout=0.0) is None


def test_patterns_compare_by_their_text() -> None:
    assert RulePattern("^/a") == RulePattern("^/a")
    assert RulePattern("^/a") != RulePattern("^/b")
    assert len({RulePattern("^/a"), RulePattern("^/a")}) == 1


# -- nested quantifiers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "found"),
    [
        (r"^/api/(\w+)*/x$", [r"(\w+)*"]),
        (r"^/(a+)+$", ["(a+)+"]),
        (r"^/(?:a|b+){2,}$", ["(?:a|b+){2,}"]),
        (r"^/((ab)*c)+$", ["((ab)*c)+"]),
        (r"^/(x(a{1,3})y)*?$", ["(x(a{1,3})y)*?"]),
        (r"^/(\w+)*/(\d+)+", [r"(\w+)*", r"(\d+)+"]),
        (
            r"^/((a)+)*",
            [
                "((a)+)*",
            ],
        ),
    ],
)
def test_nested_quantifiers_are_found(pattern: str, found: list[str]) -> None:
    assert nested_quantifiers(pattern) == found


@pytest.mark.parametrize(
    "pattern",
    [
        r"^/app/(.*)$",
        r"^/(a+)?$",  # the group repeats at most once
        r"^/(a+){1}$",
        r"^/(ab)*$",  # nothing repeats inside
        r"^/(a++)*$",  # possessive inside: no backtracking into it
        r"^/(a+)*+$",  # possessive outside
        r"^/[(a+)]*$",  # a class, not a group
        r"^/\(a+\)*$",  # escaped parentheses
        r"^/\Q(a+)\E*$",  # quoted
        r"^/(?#(a+)*)x",  # a comment
        r"^/\x{41}+(b)*",  # \x{..} is not a quantifier
        r"^/[]a+]*(b)*",  # "]" first in a class is a member
        r"^/a{,}(b)*",  # not a quantifier in PCRE
    ],
)
def test_patterns_without_nested_quantifiers(pattern: str) -> None:
    assert nested_quantifiers(pattern) == []


def test_warning_for_nested_quantifier_on_re2_says_it_is_linear_here() -> None:
    [message] = warnings(RulePattern(r"^/api/(\w+)*/x$"))
    assert message == (
        r"nested quantifier '(\w+)*' in '^/api/(\w+)*/x$': matched here by RE2 in linear "
        "time, but it backtracks exponentially in PCRE and Python's re"
    )


def test_warning_for_nested_quantifier_on_the_backtracking_engine_names_the_limit() -> None:
    [message] = warnings(RulePattern(r"^/(?!z)(a+)+$"))
    assert message == (
        "nested quantifier '(a+)+' in '^/(?!z)(a+)+$': matched here by a backtracking "
        f"engine: a request that takes over {MATCH_BUDGET * 1000:g} ms to match gets 500"
    )


def test_warning_for_a_pattern_re2_refuses() -> None:
    [message] = warnings(RulePattern(r"^/(?!static/)(.*)$"))
    assert message == (
        "'^/(?!static/)(.*)$' needs a backtracking engine (RE2: invalid perl operator: (?!): "
        f"a request that takes over {MATCH_BUDGET * 1000:g} ms to match gets 500"
    )


def test_no_warning_for_an_ordinary_pattern() -> None:
    assert warnings(RulePattern(r"^/app/(.*)\.jsp$")) == []


def test_warning_for_a_percent_escape_in_a_pattern() -> None:
    """Paths are matched decoded: ``%20`` in a pattern never matches a space."""
    [message] = warnings(RulePattern(r"^/a%20b/(.*)$"))
    assert message == (
        "'^/a%20b/(.*)$' contains '%20': paths are matched percent-decoded, as in Apache, so "
        "write the character itself"
    )
