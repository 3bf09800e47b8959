"""What may be changed at run time: the keys, their values in the file and live, applying them.

balancer-manager changes a member's ``loadfactor``, ``lbset``, ``route``, ``redirect``
and status flags ``I N D H R S C`` (each its own key, ``status_D``…), and a balancer's
``lbmethod``, ``timeout``, ``maxattempts``, ``nofailover`` and ``stickysession``. The
runtime state (``BalancerPersist``) keeps and shares exactly these keys. A value is plain
data (a number, a string, a boolean, None, a list of names for ``stickysession``), so it
can be written as JSON and checked again when it is read back (:func:`check_value`).

Applying follows httpd: a new loadfactor restarts every member's lbstatus from its
lbfactor (``recalc_factors``); a member made usable again, or a new lbmethod, resets the
balancer's lbstatus counts (``need_reset``, byrequests' ``reset``). Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Protocol

from ajpbalancer.balancer._lbmethods import lbfactor
from ajpbalancer.balancer._select import max_attempts
from ajpbalancer.balancer._state import STATUS_LETTERS, MemberState
from ajpbalancer.config import LBMETHODS, BalancerParams, MemberParams
from ajpbalancer.config._values import _TOKEN

Value = float | int | str | bool | None | tuple[str, ...]
"""A runtime value: what one key holds."""

EDITABLE_FLAGS = "INDHRSC"
"""The status letters balancer-manager sets and clears (httpd's, ``E`` excluded)."""

MAX_TIMEOUT = 7200
"""httpd's upper bound for a balancer's timeout ("2 hrs enuff?")."""


class Scope(enum.Enum):
    MEMBER = "member"
    BALANCER = "balancer"


MEMBER_KEYS: tuple[str, ...] = (
    "loadfactor",
    "lbset",
    "route",
    "redirect",
    *(f"status_{letter}" for letter in EDITABLE_FLAGS),
)
BALANCER_KEYS: tuple[str, ...] = (
    "lbmethod",
    "timeout",
    "maxattempts",
    "nofailover",
    "stickysession",
)
SCOPE_OF: Mapping[str, Scope] = MappingProxyType(
    {**{k: Scope.MEMBER for k in MEMBER_KEYS}, **{k: Scope.BALANCER for k in BALANCER_KEYS}}
)


class BadValueError(ValueError):
    """A value read back (from a file or a store) is not one its key may hold."""


def _token_or_none(key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
        raise BadValueError(f"{key} must be a token or null, got {value!r}")
    return value


def _number(key: str, value: object, low: float, high: float, *, whole: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValueError(f"{key} must be a number, got {value!r}")
    if whole and not float(value).is_integer():
        raise BadValueError(f"{key} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise BadValueError(f"{key} must be from {low:g} to {high:g}, got {value!r}")
    return int(value) if whole else float(value)


def check_value(key: str, value: object) -> Value:
    """``value`` as key ``key`` holds it, or :class:`BadValueError` (unknown key included)."""
    if key == "loadfactor":
        return _number(key, value, 1, 100, whole=False)
    if key == "lbset":
        return _number(key, value, 0, 99, whole=True)
    if key in ("route", "redirect"):
        return _token_or_none(key, value)
    if (key.startswith("status_") and key in SCOPE_OF) or key == "nofailover":
        if not isinstance(value, bool):
            raise BadValueError(f"{key} must be true or false, got {value!r}")
        return value
    if key == "lbmethod":
        if value not in LBMETHODS:
            raise BadValueError(f"lbmethod must be one of {', '.join(LBMETHODS)}, got {value!r}")
        return str(value)
    if key == "timeout":
        return _number(key, value, 0, MAX_TIMEOUT, whole=False)
    if key == "maxattempts":
        return None if value is None else _number(key, value, 0, 99, whole=True)
    if key == "stickysession":
        if not isinstance(value, list | tuple) or not all(
            isinstance(n, str) and _TOKEN.fullmatch(n) for n in value
        ):
            raise BadValueError(f"stickysession must be a list of names, got {value!r}")
        return tuple(value)
    raise BadValueError(f"unknown key {key!r}")


# -- values of the file and live values ---------------------------------------------------


def member_configured(params: MemberParams) -> dict[str, Value]:
    """The member keys' values as ``params`` (the configuration file) sets them."""
    values: dict[str, Value] = {
        "loadfactor": float(params.loadfactor),
        "lbset": params.lbset,
        "route": params.route,
        "redirect": params.redirect,
    }
    for letter in EDITABLE_FLAGS:
        values[f"status_{letter}"] = letter in params.status
    return values


def member_current(state: MemberState) -> dict[str, Value]:
    """The member keys' live values."""
    values: dict[str, Value] = {
        "loadfactor": state.lbfactor / 100,
        "lbset": state.lbset,
        "route": state.route,
        "redirect": state.redirect,
    }
    for letter in EDITABLE_FLAGS:
        values[f"status_{letter}"] = state.has(STATUS_LETTERS[letter])
    return values


def balancer_configured(params: BalancerParams) -> dict[str, Value]:
    """The balancer keys' values as ``params`` (live or from the file) hold them."""
    return {
        "lbmethod": params.lbmethod,
        "timeout": float(params.timeout),
        "maxattempts": params.maxattempts,
        "nofailover": params.nofailover,
        "stickysession": params.stickysession,
    }


def overlay_member(params: MemberParams, values: Mapping[str, Value]) -> MemberParams:
    """``params`` with the member keys of ``values`` in place of the file's."""
    status = set(params.status)
    for letter in EDITABLE_FLAGS:
        on = values.get(f"status_{letter}")
        if on is True:
            status.add(letter)
        elif on is False:
            status.discard(letter)
    changed: dict[str, object] = {"status": frozenset(status)}
    for key in ("loadfactor", "lbset", "route", "redirect"):
        if key in values:
            changed[key] = values[key]
    return replace(params, **changed)  # type: ignore[arg-type]  # keys of MemberParams


def overlay_balancer(params: BalancerParams, values: Mapping[str, Value]) -> BalancerParams:
    """``params`` with the balancer keys of ``values`` in place of the file's."""
    changed = {key: values[key] for key in BALANCER_KEYS if key in values}
    return replace(params, **changed)  # type: ignore[arg-type]  # keys of BalancerParams


# -- applying ----------------------------------------------------------------------------


def recalc_factors(states: tuple[MemberState, ...]) -> None:
    """httpd's ``recalc_factors``: lbstatus starts again from each member's lbfactor."""
    if len(states) == 1:
        states[0].lbfactor = states[0].lbstatus = 100
        return
    for state in states:
        state.lbstatus = state.lbfactor


def reset_lbstatus(states: tuple[MemberState, ...]) -> None:
    """byrequests' ``reset`` (httpd's ``need_reset``): every lbstatus back to 0."""
    for state in states:
        state.lbstatus = 0


def apply_member_values(
    states: tuple[MemberState, ...], state: MemberState, values: Mapping[str, Value]
) -> list[tuple[str, Value]]:
    """Set the member keys of ``values`` on ``state`` (one of ``states``, its balancer's);
    the keys that changed, in :data:`MEMBER_KEYS` order, with their new values."""
    was_usable = state.usable
    changed: list[tuple[str, Value]] = []
    current = member_current(state)
    for key in MEMBER_KEYS:
        if key not in values or values[key] == current[key]:
            continue
        value = values[key]
        if key == "loadfactor":
            assert isinstance(value, int | float)
            state.lbfactor = lbfactor(value)
            recalc_factors(states)
        elif key == "lbset":
            assert isinstance(value, int)
            state.lbset = value
        elif key == "route":
            state.route = value if isinstance(value, str) else None
        elif key == "redirect":
            state.redirect = value if isinstance(value, str) else None
        else:
            state.set_status(STATUS_LETTERS[key[-1]], bool(value))
        changed.append((key, value))
    if not was_usable and state.usable:
        reset_lbstatus(states)
    return changed


def apply_balancer_values(
    params: BalancerParams, values: Mapping[str, Value]
) -> tuple[BalancerParams, list[tuple[str, Value]]]:
    """``params`` with the balancer keys of ``values``, and the keys that changed."""
    current = balancer_configured(params)
    changed = [(k, values[k]) for k in BALANCER_KEYS if k in values and values[k] != current[k]]
    return overlay_balancer(params, dict(changed)), changed


class SettableBalancer(Protocol):
    """A running balancer whose keys are set: its parameters, attempts and member states."""

    params: BalancerParams
    max_attempts: int

    @property
    def states(self) -> tuple[MemberState, ...]: ...


def set_balancer_values(
    balancer: SettableBalancer, values: Mapping[str, Value]
) -> list[tuple[str, Value]]:
    """Set the balancer keys of ``values`` on ``balancer``; the keys that changed.

    A new ``maxattempts`` (None: back to members - 1) sets the attempts too; a new
    lbmethod resets lbstatus."""
    old = balancer.params
    new, changed = apply_balancer_values(old, values)
    if not changed:
        return changed
    balancer.params = new
    if any(key == "maxattempts" for key, _ in changed):
        balancer.max_attempts = max_attempts(new, len(balancer.states))
    if new.lbmethod != old.lbmethod:
        reset_lbstatus(balancer.states)
    return changed
