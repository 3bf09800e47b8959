"""Read INI text into sections, keys and value lines, each with its line number.

The syntax is the standard library's ``configparser`` as ajpbalancer configures it
(``=`` delimiter only, ``;`` and ``#`` comments, inline comments after whitespace, strict
duplicates, no interpolation), re-implemented here because ``configparser`` forgets where
each line of a multi-line value came from. Every non-empty line of a value is one
instance of its directive and keeps its own line number, so problems can name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMMENT_PREFIXES = ("#", ";")
_NONSPACE = re.compile(r"\S")
_HEADER = re.compile(r"\[(?P<header>.+)\](?P<rest>.*)$")
_OPTION = re.compile(r"(?P<key>.*?)\s*=\s*(?P<value>.*)$")


@dataclass(frozen=True, slots=True)
class ValueLine:
    """One non-empty line of a value, comments removed and whitespace stripped."""

    line: int
    text: str


@dataclass(slots=True)
class Entry:
    """A ``key = value`` with its continuation lines; ``key`` as written (not lower-cased)."""

    key: str
    line: int
    values: list[ValueLine] = field(default_factory=list)


@dataclass(slots=True)
class Section:
    """A ``[header]`` and its entries in file order."""

    header: str
    line: int
    entries: list[Entry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """A line the reader cannot accept; ``directive`` names what it belongs to."""

    line: int
    directive: str
    message: str


@dataclass(slots=True)
class Document:
    """What :func:`read` produces: sections in file order and the syntax problems met."""

    sections: list[Section]
    problems: list[SyntaxProblem]


def split_lines(text: str) -> list[str]:
    """Lines as a file opened in text mode yields them (universal newlines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def strip_comment(line: str) -> str:
    """The line without its comment, stripped (configparser's rules).

    A line whose first non-blank character is a comment prefix is all comment; elsewhere a
    prefix starts a comment only at the start of the line or after whitespace.
    """
    stripped = line.strip()
    if stripped.startswith(COMMENT_PREFIXES):
        return ""
    cut = len(line)
    for prefix in COMMENT_PREFIXES:
        index = line.find(prefix)
        while index != -1:
            if index == 0 or line[index - 1].isspace():
                cut = min(cut, index)
                break
            index = line.find(prefix, index + 1)
    return line[:cut].strip()


def read(text: str) -> Document:
    """Split ``text`` into sections and entries, collecting problems instead of stopping.

    A value continues on lines indented deeper than its key line; blank and comment lines
    inside a value do not end it. A duplicate section or key is reported and its contents
    are read but dropped, so they cause no further problems.
    """
    sections: list[Section] = []
    problems: list[SyntaxProblem] = []
    seen_sections: dict[str, int] = {}
    current: Section | None = None
    entry: Entry | None = None
    seen_keys: dict[str, int] = {}
    key_indent = 0

    for number, raw in enumerate(split_lines(text), start=1):
        value = strip_comment(raw)
        if not value:
            continue
        match = _NONSPACE.search(raw)
        indent = match.start() if match is not None else 0
        if entry is not None and indent > key_indent:
            entry.values.append(ValueLine(number, value))
            continue
        key_indent = indent
        entry = None
        header = _HEADER.match(value)
        if header is not None:
            name = header.group("header")
            if header.group("rest").strip():
                problems.append(
                    SyntaxProblem(
                        number,
                        "section",
                        f"unexpected text after the section header [{name}]",
                    )
                )
            current = Section(name, number)
            seen_keys = {}
            if name in seen_sections:
                problems.append(
                    SyntaxProblem(
                        number,
                        "section",
                        f"duplicate section [{name}] (first at line {seen_sections[name]})",
                    )
                )
            else:
                seen_sections[name] = number
                sections.append(current)
            continue
        if current is None:
            problems.append(
                SyntaxProblem(number, "config", "a line before the first [section] header")
            )
            continue
        option = _OPTION.match(value)
        if option is None or not option.group("key"):
            problems.append(
                SyntaxProblem(
                    number,
                    "config",
                    f"expected 'directive = value', got {value!r}"
                    " (a value continuing on the next line must be indented)",
                )
            )
            continue
        key = option.group("key")
        entry = Entry(key, number)
        folded = key.lower()
        if folded in seen_keys:
            problems.append(
                SyntaxProblem(
                    number,
                    key,
                    f"duplicate directive in [{current.header}] (first at line "
                    f"{seen_keys[folded]}); write each instance on its own indented line"
                    " under one key",
                )
            )
        else:
            seen_keys[folded] = number
            current.entries.append(entry)
        if option.group("value"):
            entry.values.append(ValueLine(number, option.group("value")))
    return Document(sections, problems)
