r"""``ProxyPassMatch`` regular expressions, matched in bounded time.

Apache compiles these with PCRE. Python's ``re`` backtracks without limit: with
``^/api/(\w+)*/x$`` a path of 24 letters and a ``!`` takes over a second, and every other
request waits for it. So a pattern is compiled with **RE2** (google-re2), whose matching
time is linear in the length of the path whatever the pattern, whenever RE2 accepts it:
all of PCRE's syntax except look-around, back-references, atomic groups, possessive
quantifiers, conditionals, recursion and repeat counts over 1000. A pattern that needs
one of those is compiled with the ``regex`` package (a backtracking engine with PCRE's
extensions) and each match runs under a limit of CPU time (:data:`MATCH_BUDGET` for one
request, all such rules together); a match that exceeds it raises
:class:`MatchTimeoutError` (the client gets 500). A pattern that neither engine accepts
is a configuration error.

Both engines work on bytes, as PCRE does in Apache (no UTF mode): the pattern is the
UTF-8 of the configuration text and the subject is the decoded path, one character per
byte (Latin-1); ``.`` matches any byte, newline included (Apache compiles with DOTALL),
``\w``, ``\d``, ``\s``, ``\b`` are ASCII, and with RE2 ``$`` is the end of the path only
(Apache's DOLLAR_ENDONLY; the backtracking engine's ``$`` also matches before a final
newline, which only a ``%0A`` can put there).

:func:`warnings` is ``--check``'s advice: a nested quantifier (:func:`nested_quantifiers`
finds what makes backtracking engines blow up: a repeated group that itself repeats,
``(\w+)*``), a pattern on the backtracking engine, a percent-escape in a pattern (paths
are matched decoded).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import re2
import regex

from ajpbalancer.errors import AJPBalancerError

MATCH_BUDGET = 0.010
"""Seconds a request may spend in backtracking-engine patterns, all its rules together."""

Groups = Sequence[str | None]
"""A match: the whole match (index 0), then each group (None when it did not take part)."""


class Engine(Enum):
    """Which engine a pattern runs on."""

    RE2 = "RE2"
    BACKTRACKING = "regex"


class PatternError(AJPBalancerError):
    """Neither engine accepts the pattern (the message says why)."""


class MatchTimeoutError(AJPBalancerError):
    """A backtracking-engine match took longer than its time limit."""


def _re2_options() -> Any:
    # Any: google-re2 ships no type information; RulePattern is the typed face of it.
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.dot_nl = True  # Apache's AP_REG_DOTALL
    options.log_errors = False  # refusals are reported as config problems, not on stderr
    return options


# google-re2's Python layer (re2.compile(...).search) costs 2-8 µs a call, building a
# generator and a match object; its binding of RE2 itself (re2._re2.RE2, which that layer
# wraps) answers in well under 1 µs with the spans of every group. It is not public API:
# pyproject.toml bounds the version and tests/unit/test_patterns.py pins what is used here.
_RE2 = re2._re2.RE2
_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
_RE2_OPTIONS = _re2_options()
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_REGEX_FLAGS = regex.DOTALL | regex.VERSION0


class RulePattern:
    """One compiled ``ProxyPassMatch`` pattern: ``search`` gives its groups or None."""

    __slots__ = ("_compiled", "engine", "groups", "pattern", "refusal")

    pattern: str
    """The pattern as written in the configuration."""
    engine: Engine
    groups: int
    """The number of capturing groups (``$1``…``$n`` may name them)."""
    refusal: str | None
    """Why RE2 refused the pattern (``engine`` is then BACKTRACKING), else None."""

    def __init__(self, pattern: str) -> None:
        """Compile ``pattern``; raise :class:`PatternError` if neither engine accepts it."""
        source = pattern.encode("utf-8")
        compiled: Any = _RE2(source, _RE2_OPTIONS)
        if compiled.ok():
            self.engine, self.refusal = Engine.RE2, None
            self.groups = int(compiled.NumberOfCapturingGroups())
        else:
            refusal = _text(compiled.error())
            try:
                compiled = regex.compile(source, _REGEX_FLAGS)
            except (regex.error, ValueError, OverflowError) as e:
                raise PatternError(f"invalid regular expression {pattern!r}: {e}") from None
            self.engine, self.refusal = Engine.BACKTRACKING, refusal
            self.groups = int(compiled.groups)
        self._compiled = compiled
        self.pattern = pattern

    def search(self, subject: bytes, timeout: float = MATCH_BUDGET) -> Groups | None:
        """The first match in ``subject`` (the Latin-1 bytes of a decoded path), or None.

        ``timeout`` (seconds) bounds a backtracking-engine match: past it,
        :class:`MatchTimeoutError`. RE2 needs no bound.
        """
        if self.engine is Engine.RE2:
            spans: list[tuple[int, int]] = self._compiled.Match(
                _UNANCHORED, subject, 0, len(subject)
            )
            if spans[0][0] < 0:
                return None
            return [None if a < 0 else subject[a:b].decode("latin-1") for a, b in spans]
        try:
            m = self._compiled.search(subject, timeout=timeout)
        except TimeoutError:
            raise MatchTimeoutError(f"the match took over {timeout * 1000:g} ms") from None
        if m is None:
            return None
        return [_latin1(m.group(0)), *map(_latin1, m.groups())]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RulePattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"RulePattern({self.pattern!r}, engine={self.engine.value})"


def _latin1(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _text(message: bytes | str) -> str:
    """RE2's error message (bytes) as text."""
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


def warnings(compiled: RulePattern) -> list[str]:
    """What ``--check`` says about a pattern that works but deserves a look (may be empty)."""
    found: list[str] = []
    nested = nested_quantifiers(compiled.pattern)
    if nested:
        risk = (
            "matched here by RE2 in linear time, but it backtracks exponentially in PCRE and "
            "Python's re"
            if compiled.engine is Engine.RE2
            else f"matched here by a backtracking engine: a request that takes over "
            f"{MATCH_BUDGET * 1000:g} ms to match gets 500"
        )
        found.append(
            f"nested quantifier {', '.join(_quoted(n) for n in nested)} in "
            f"{_quoted(compiled.pattern)}: {risk}"
        )
    elif compiled.engine is Engine.BACKTRACKING:
        found.append(
            f"{_quoted(compiled.pattern)} needs a backtracking engine (RE2: {compiled.refusal}): "
            f"a request that takes over {MATCH_BUDGET * 1000:g} ms to match gets 500"
        )
    escape = _PERCENT_ESCAPE.search(compiled.pattern)
    if escape is not None:
        found.append(
            f"{_quoted(compiled.pattern)} contains '{escape.group()}': paths are matched "
            f"percent-decoded, as in Apache, so write the character itself"
        )
    return found


def _quoted(text: str) -> str:
    """``text`` between single quotes, as written (no repr escaping of backslashes)."""
    return f"'{text}'"


# -- the nested-quantifier scan ---------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    start: int
    repeats: bool = False  # something inside repeats


@dataclass(frozen=True, slots=True)
class _Atom:
    start: int
    group: bool
    repeats: bool  # a group with something repeating inside


_NAMED_ESCAPE = frozenset("xpPkgoNu")
"""Escapes that may take a ``{…}`` argument (``\\x{41}``, ``\\p{L}``, ``\\g{1}``...)."""


def nested_quantifiers(pattern: str) -> list[str]:
    """Each repeated group that has a repeat inside it, as written (``(\\w+)*``).

    A light scan of PCRE syntax: escapes, ``\\Q…\\E``, character classes (with POSIX
    classes), groups of every kind; a quantifier repeats when its maximum is over one and
    it is not possessive. The pattern is known to compile.
    """
    found: list[str] = []
    stack = [_Group(0)]
    previous: _Atom | None = None
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            start = i
            i = _skip_escape(pattern, i)
            previous = _Atom(start, group=False, repeats=False)
            continue
        if c == "[":
            start = i
            i = _skip_class(pattern, i)
            previous = _Atom(start, group=False, repeats=False)
            continue
        if c == "(":
            if pattern.startswith("(?#", i):
                end = pattern.find(")", i)
                i = n if end < 0 else end + 1
                continue
            stack.append(_Group(i))
            previous = None
            i += 2 if pattern.startswith("(?", i) else 1
            continue
        if c == ")":
            i += 1
            if len(stack) > 1:
                group = stack.pop()
                stack[-1].repeats |= group.repeats
                previous = _Atom(group.start, group=True, repeats=group.repeats)
            continue
        if c == "|":
            previous = None
            i += 1
            continue
        quantifier = _quantifier(pattern, i)
        if quantifier is None:
            previous = _Atom(i, group=False, repeats=False)
            i += 1
            continue
        end, repeats = quantifier
        if previous is not None and repeats:
            if previous.group and previous.repeats:
                found.append(pattern[previous.start : end])
            stack[-1].repeats = True
        previous = None
        i = end
    return found


def _skip_escape(pattern: str, i: int) -> int:
    """The index after the escape at ``i`` (``\\Q…\\E`` included)."""
    if pattern.startswith("\\Q", i):
        end = pattern.find("\\E", i + 2)
        return len(pattern) if end < 0 else end + 2
    j = i + 2
    if pattern[i + 1 : i + 2] in _NAMED_ESCAPE and j < len(pattern) and pattern[j] in "{<'":
        close = {"{": "}", "<": ">", "'": "'"}[pattern[j]]
        end = pattern.find(close, j + 1)
        return len(pattern) if end < 0 else end + 1
    return j


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i``."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":  # a "]" first is a member
        j += 1
    while j < len(pattern):
        c = pattern[j]
        if c == "\\":
            j += 2
        elif c == "[" and pattern[j + 1 : j + 2] in (":", ".", "="):
            end = pattern.find(pattern[j + 1] + "]", j + 2)
            j = len(pattern) if end < 0 else end + 2
        elif c == "]":
            return j + 1
        else:
            j += 1
    return j


def _quantifier(pattern: str, i: int) -> tuple[int, bool] | None:
    """(end, whether it repeats) for a quantifier at ``i``; None if there is none."""
    c = pattern[i]
    if c in "*+":
        high: int | None = None
        end = i + 1
    elif c == "?":
        high, end = 1, i + 1
    elif c == "{":
        close = pattern.find("}", i)
        if close < 0:
            return None
        low_text, comma, high_text = pattern[i + 1 : close].partition(",")
        if not (low_text.isdigit() or (comma and high_text.isdigit())) or not all(
            part.isdigit() or part == "" for part in (low_text, high_text)
        ):
            return None
        high = (int(high_text) if high_text else None) if comma else int(low_text)
        end = close + 1
    else:
        return None
    possessive = pattern[end : end + 1] == "+"
    if pattern[end : end + 1] in ("?", "+"):
        end += 1
    return end, (high is None or high > 1) and not possessive
