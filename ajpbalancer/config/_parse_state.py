"""One parse's state: the problems found so far, the facts that span sections, and the
lookups every section parser shares (the directive table, value shapes, endpoints).

:class:`ParseState` is the base of the section parsers (:mod:`._parse_settings`,
:mod:`._parse_frontend`, :mod:`._parse_balancer`); :mod:`._parser` runs them over a file.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import DIRECTIVE_BY_KEY, DIRECTIVES, Directive, SectionKind
from ajpbalancer.config._endpoints import endpoint_spec
from ajpbalancer.config._errors import Problem
from ajpbalancer.config._ini import Section, ValueLine
from ajpbalancer.config._model import Listen, Location

CheckEndpoint = Callable[[str], "str | None"]
"""Checks a Twisted server endpoint description: an error message, or None if valid."""

CheckFile = Callable[[str], "str | None"]
"""Checks a file a directive names (``admin_users``): an error message, or None if usable."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate (case-insensitively), or ``""``."""
    by_folded = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(by_folded), n=1)
    return f" (did you mean {by_folded[close[0]]!r}?)" if close else ""


def has_key(section: Section, name: str) -> bool:
    """Whether ``section`` has the directive ``name`` at all (valid or not)."""
    return any(e.key.lower() == name.lower() for e in section.entries)


class ParseState:
    """One parse: the text, the problems found so far and the cross-section facts."""

    def __init__(
        self,
        text: str,
        filename: str,
        check_endpoint: CheckEndpoint | None,
        check_admin_users: CheckFile | None = None,
    ) -> None:
        self.text = text
        self.filename = filename
        self.check_endpoint = check_endpoint
        self.check_admin_users = check_admin_users
        self.problems: list[Problem] = []
        self.balancer_names: dict[str, int] = {}
        self.endpoints: dict[object, int] = {}

    # -- problems ---------------------------------------------------------------------------

    def at(self, line: int) -> Location:
        return Location(self.filename, line)

    def problem(self, line: int, directive: str, message: str) -> None:
        self.problems.append(Problem(self.at(line), directive, message))

    # -- a section's entries ----------------------------------------------------------------

    def entries(
        self, section: Section, kind: SectionKind
    ) -> list[tuple[Directive, list[ValueLine]]]:
        """The section's entries looked up in the directive table, with their value lines.

        Unknown directives, directives of another section, missing values and extra lines
        for a one-value directive are reported; what remains is safe to interpret.
        """
        result: list[tuple[Directive, list[ValueLine]]] = []
        here = [d.name for d in DIRECTIVES if d.section is kind]
        for entry in section.entries:
            directive = DIRECTIVE_BY_KEY.get(entry.key.lower())
            if directive is None:
                hint = did_you_mean(entry.key, here)
                if not hint and re.search(r"[\s/:]", entry.key):
                    hint = " (a value continuing on the next line must be indented)"
                self.problem(
                    entry.line,
                    entry.key,
                    f"unknown directive {entry.key!r} in [{section.header}]{hint}",
                )
                continue
            if directive.section is not kind:
                self.problem(
                    entry.line,
                    directive.name,
                    f"belongs in {directive.section.value}, not in [{section.header}]",
                )
                continue
            if not entry.values:
                self.problem(entry.line, directive.name, f"needs a value: {directive.syntax}")
                continue
            values = entry.values
            if not directive.many and len(values) > 1:
                for extra in values[1:]:
                    self.problem(extra.line, directive.name, "takes one value, not one per line")
                values = values[:1]
            result.append((directive, values))
        return result

    # -- small shapes -------------------------------------------------------------------------

    def one_word(self, directive: Directive, value: ValueLine) -> str | None:
        try:
            return self.exactly_one(directive, v.split_words(value.text))
        except v.InvalidValueError as e:
            self.problem(value.line, directive.name, str(e))
            return None

    @staticmethod
    def exactly_one(directive: Directive, words: list[str]) -> str:
        if len(words) != 1:
            raise v.InvalidValueError(
                f"expected one value ({directive.syntax}), got {len(words)} words"
                + ("; write one per line" if directive.many else "")
            )
        return words[0]

    @staticmethod
    def exactly_two(directive: Directive, words: list[str]) -> tuple[str, str]:
        if len(words) != 2:
            raise v.InvalidValueError(f"expected {directive.syntax}, got {len(words)} words")
        return words[0], words[1]

    def endpoint(self, directive: Directive, line: int, description: str) -> Listen:
        """A server endpoint description: its port, backlog and socket path
        (:func:`endpoint_spec`; a ``unix:`` socket's directory must exist), then
        ``check_endpoint``; the same address may be given once (whatever the backlog)."""
        spec = endpoint_spec(description)
        if spec.kind == "unix":
            folder = os.path.dirname(spec.args[0]) or "."
            if not os.path.isdir(folder):
                raise v.InvalidValueError(
                    f"invalid endpoint {description!r}: no directory {folder!r} for the socket"
                )
        if self.check_endpoint is not None:
            message = self.check_endpoint(description)
            if message is not None:
                raise v.InvalidValueError(message)
        first = self.endpoints.setdefault(spec.address, line)
        if first != line:
            raise v.InvalidValueError(f"duplicate endpoint {description!r} (first at line {first})")
        return Listen(description, self.at(line))
