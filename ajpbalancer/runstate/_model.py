"""Runtime values as data: what was set, over which value of the file, when, by whom, and
its place in the store's order. Nothing here does I/O.

A runtime value is an :class:`Entry` under a *field*: a key of
:mod:`ajpbalancer.balancer._settable` (``loadfactor``, ``status_D``, ``lbmethod``…) of a
member (by its URL) or of the balancer itself, within a balancer (by its name). An entry
keeps the file's value it was set over (``base``): it holds while the file still says
that, and is dropped once the file says something else for that key (:func:`verdict`).
:func:`overlay` makes the configuration the proxy runs: the file's, with the runtime
values in place of the values they hold over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ajpbalancer.balancer import (
    SCOPE_OF,
    BadValueError,
    Scope,
    Value,
    balancer_configured,
    check_value,
    member_configured,
    overlay_balancer,
    overlay_member,
)
from ajpbalancer.config import Balancer, Config

FieldKey = tuple[str, str | None, str]
"""(balancer name, member URL or None for the balancer itself, key)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A value set at run time (see the module docstring); ``seq`` is None until the store
    has given it its place in the order of changes."""

    value: Value
    base: Value
    time: float
    by: str
    seq: int | None = None

    def to_json(self) -> str:
        """The entry without its ``seq`` (the store adds that), as compact JSON."""
        return json.dumps(
            {
                "value": _plain(self.value),
                "base": _plain(self.base),
                "time": self.time,
                "by": self.by,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_data(cls, key: str, data: Any, seq: int | None) -> Entry:
        """An entry of ``key`` from decoded JSON, every value checked (BadValueError)."""
        if not isinstance(data, dict):
            raise BadValueError(f"an entry must be an object, got {type(data).__name__}")
        when = data.get("time", 0.0)
        by = data.get("by", "")
        if isinstance(when, bool) or not isinstance(when, int | float) or not isinstance(by, str):
            raise BadValueError("an entry's time must be a number and by a string")
        if "value" not in data or "base" not in data:
            raise BadValueError("an entry needs value and base")
        return cls(
            check_value(key, data["value"]), check_value(key, data["base"]), float(when), by, seq
        )

    @classmethod
    def from_json(cls, key: str, text: str | bytes, seq: int | None) -> Entry:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadValueError(f"not JSON: {e}") from None
        return cls.from_data(key, data, seq)


def _plain(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


# -- fields ----------------------------------------------------------------------------------


def field_name(member: str | None, key: str) -> str:
    """A field's name within its balancer: ``KEY`` for the balancer, ``KEY MEMBER_URL``."""
    return key if member is None else f"{key} {member}"


def parse_field(name: str) -> tuple[str | None, str]:
    """(member or None, key) of a field name (BadValueError for an unknown key)."""
    key, _, member = name.partition(" ")
    scope = SCOPE_OF.get(key)
    if scope is None:
        raise BadValueError(f"unknown key {key!r}")
    if (scope is Scope.MEMBER) != bool(member):
        raise BadValueError(f"{key!r} is a {scope.value} key")
    return (member or None), key


def describe(field: FieldKey) -> str:
    """``balancer://NAME [member URL] KEY`` for the log."""
    balancer, member, key = field
    where = f"balancer://{balancer}" + ("" if member is None else f" member {member}")
    return f"{where} {key}"


# -- the file's values and runtime values --------------------------------------------------

MISSING = object()
"""What :func:`configured` returns for a balancer or member the file no longer has."""


def _balancer(config: Config, name: str) -> Balancer | None:
    return next((b for b in config.balancers if b.name == name), None)


def configured(config: Config, field: FieldKey) -> Value | object:
    """The file's value of ``field``, or :data:`MISSING`."""
    name, member, key = field
    balancer = _balancer(config, name)
    if balancer is None:
        return MISSING
    if member is None:
        return balancer_configured(balancer.params)[key]
    found = next((m for m in balancer.members if m.name == member), None)
    if found is None:
        return MISSING
    return member_configured(found.params)[key]


def verdict(config: Config, field: FieldKey, entry: Entry) -> str | None:
    """Why ``entry`` no longer holds under ``config``, or None: the file wins once it says
    something else for the key than the value the entry was set over."""
    base = configured(config, field)
    if base is MISSING:
        what = "balancer" if field[1] is None else "member"
        return f"the {what} is no longer in the configuration"
    if base != entry.base:
        return (
            f"the configuration file now says {_shown(base)}; the runtime value "
            f"{_shown(entry.value)} was set over {_shown(entry.base)}"
        )
    return None


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return "|".join(value) or "(none)"
    return json.dumps(value)


def overlay(config: Config, entries: Iterable[tuple[FieldKey, Entry]]) -> Config:
    """``config`` with the runtime values in place of the file's."""
    by_balancer: dict[str, dict[str | None, dict[str, Value]]] = {}
    for (balancer, member, key), entry in entries:
        by_balancer.setdefault(balancer, {}).setdefault(member, {})[key] = entry.value
    if not by_balancer:
        return config
    balancers = []
    for b in config.balancers:
        values = by_balancer.get(b.name)
        if values is None:
            balancers.append(b)
            continue
        members = tuple(
            replace(m, params=overlay_member(m.params, values[m.name])) if m.name in values else m
            for m in b.members
        )
        params = overlay_balancer(b.params, values.get(None, {}))
        balancers.append(replace(b, params=params, members=members))
    return replace(config, balancers=tuple(balancers))


def group(entries: Mapping[FieldKey, Entry], balancer: str, member: str | None) -> dict[str, Entry]:
    """The entries of one member (or of the balancer itself), by key."""
    return {key: entry for (b, m, key), entry in entries.items() if b == balancer and m == member}
