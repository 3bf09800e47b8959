"""Turn configuration text into a valid :class:`Config`, or a ConfigError listing every problem.

The INI reader (:mod:`._ini`) yields sections, keys and value lines with their line
numbers; this module sorts the sections out and hands each to its parser
(:mod:`._parse_settings`, :mod:`._parse_frontend`, :mod:`._parse_balancer`), which looks
each key up in the directive table (:mod:`._directives`), parses each instance with the
value parsers (:mod:`._values`), checks what spans sections (balancers named by rules,
duplicate members, routes and listeners) and builds the frozen model. Problems are
collected, never raised one at a time, and reported in file order.
"""

from __future__ import annotations

import re

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import SectionKind
from ajpbalancer.config._errors import ConfigError, Problem
from ajpbalancer.config._ini import Section, read
from ajpbalancer.config._model import Balancer, Config, Frontend, Location, Settings
from ajpbalancer.config._parse_balancer import BalancerParser
from ajpbalancer.config._parse_frontend import FrontendParser
from ajpbalancer.config._parse_settings import SettingsParser
from ajpbalancer.config._parse_state import CheckEndpoint, CheckFile, did_you_mean

SECTION_NAMES = ("ajpbalancer", "frontend")


def parse(
    text: str,
    filename: str,
    *,
    check_endpoint: CheckEndpoint | None = None,
    check_admin_users: CheckFile | None = None,
) -> Config:
    """Parse configuration ``text`` read from ``filename`` (used in messages and ``Config.path``).

    ``check_endpoint`` validates each ``listen`` and ``admin`` endpoint description;
    ``check_admin_users`` reads the ``admin_users`` file and says what keeps it from
    being used. Raises :class:`ConfigError` listing every problem in file order.
    """
    return _Parser(text, filename, check_endpoint, check_admin_users).run()


def load(
    path: str,
    *,
    check_endpoint: CheckEndpoint | None = None,
    check_admin_users: CheckFile | None = None,
) -> Config:
    """Read the file at ``path`` (UTF-8) and :func:`parse` it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        reason = e.strerror or str(e)
        raise ConfigError([Problem(None, "config", f"cannot read {path!r}: {reason}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        message = f"not UTF-8 text (byte 0x{data[e.start]:02x})"
        raise ConfigError([Problem(Location(path, line), "config", message)]) from None
    return parse(text, path, check_endpoint=check_endpoint, check_admin_users=check_admin_users)


class _Parser(SettingsParser, FrontendParser, BalancerParser):
    """One parse of a whole file: its sections, each by its own parser."""

    def run(self) -> Config:
        document = read(self.text)
        for syntax in document.problems:
            self.problem(syntax.line, syntax.directive, syntax.message)
        sections = self.classify(document.sections)
        for kind, name, section in sections:
            if kind is SectionKind.BALANCER:
                self.balancer_names.setdefault(name.lower(), section.line)

        settings = Settings()
        frontends: list[Frontend] = []
        balancers: list[Balancer] = []
        for kind, name, section in sections:
            if kind is SectionKind.SETTINGS:
                settings = self.settings(section)
            elif kind is SectionKind.FRONTEND:
                frontends.append(self.frontend(name, section))
            else:
                balancers.append(self.balancer(name, section))
        if not any(kind is SectionKind.FRONTEND for kind, _, _ in sections):
            self.problem(
                1, "section", "at least one [frontend] or [frontend:NAME] section is required"
            )

        if self.problems:
            ordered = sorted(self.problems, key=lambda p: p.where.line if p.where else 0)
            raise ConfigError(ordered)
        return Config(self.filename, settings, tuple(frontends), tuple(balancers))

    def classify(self, sections: list[Section]) -> list[tuple[SectionKind, str, Section]]:
        """Each section's kind and name; unknown, misnamed or repeated sections are reported."""
        result: list[tuple[SectionKind, str, Section]] = []
        seen: dict[tuple[SectionKind, str], int] = {}
        for section in sections:
            header = section.header
            folded = header.lower()
            if folded == "ajpbalancer":
                kind, name = SectionKind.SETTINGS, ""
            elif folded == "frontend":
                kind, name = SectionKind.FRONTEND, ""
            elif folded.startswith("frontend:"):
                kind, name = SectionKind.FRONTEND, header[len("frontend:") :]
            elif folded.startswith("balancer://"):
                kind, name = SectionKind.BALANCER, header[len("balancer://") :]
            else:
                hint = did_you_mean(header, _section_candidates(header))
                self.problem(section.line, "section", f"unknown section {header!r}{hint}")
                continue
            if kind is SectionKind.FRONTEND and folded.startswith("frontend:") and not name:
                self.problem(
                    section.line, "section", "[frontend:] needs a name, or write [frontend]"
                )
            elif kind is not SectionKind.SETTINGS and (name or kind is SectionKind.BALANCER):
                try:
                    v.name(kind.name.lower(), name)
                except v.InvalidValueError as e:
                    self.problem(section.line, "section", str(e))
            if kind is SectionKind.BALANCER:
                name = name.lower()
            key = (kind, name.lower())
            if key in seen:
                self.problem(
                    section.line,
                    "section",
                    f"duplicate section [{header}] (first at line {seen[key]})",
                )
                continue
            seen[key] = section.line
            result.append((kind, name, section))
        return result


def _section_candidates(header: str) -> list[str]:
    """Section headers the user may have meant by ``header``."""
    candidates = list(SECTION_NAMES)
    tail = re.sub(r"^\s*[A-Za-z]*[\s:/]*", "", header)
    if "://" in header:
        tail = header.rsplit("://", 1)[1]
    if tail:
        candidates += [f"frontend:{tail}", f"balancer://{tail}"]
    return candidates
