"""balancer-manager's changes: read a form into an edit, check all of it, then apply it.

Field names and ranges are httpd's (``balancer_process_balancer_worker``): for a member
``w_lf`` loadfactor (1-100), ``w_ls`` lbset (0-99), ``w_wr`` route and ``w_rr`` redirect
(empty clears them), ``w_status_X`` = ``1``/``0`` sets or clears flag ``X`` (``I`` ignore
errors, ``N`` drain, ``D`` disabled, ``H`` hot standby, ``R`` hot spare, ``S`` stopped,
``C`` health check failed); for the balancer ``b_lbm`` lbmethod, ``b_tmo`` timeout
(seconds, 0-7200), ``b_max`` maxattempts (0-99), ``b_sforce`` nofailover (``1``/``0``),
``b_ss`` stickysession (``NAME|name``; ``-`` removes it, empty leaves it).

Where httpd skips a value it does not like and applies the rest, an edit with any invalid
value is refused whole here (:class:`EditError`, answered 400) and changes nothing.
Applying follows httpd: a new loadfactor recalculates every member's lbstatus
(``recalc_factors``); a member made usable again, or a new lbmethod, resets the
balancer's lbstatus counts (``need_reset``, byrequests' ``reset``). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ajpbalancer.admin._running import RunningBalancer, RunningMember
from ajpbalancer.balancer import (
    EDITABLE_FLAGS,
    Value,
    apply_member_values,
    lbfactor,
    set_balancer_values,
)
from ajpbalancer.balancer._settable import MAX_TIMEOUT
from ajpbalancer.config import LBMETHODS
from ajpbalancer.config._values import (
    InvalidValueError,
    decimal,
    integer,
    one_of,
    sticky_names,
    token,
)
from ajpbalancer.errors import AJPBalancerError

MEMBER_FIELDS: Mapping[str, str] = {
    "w_lf": "loadfactor",
    "w_ls": "lbset",
    "w_wr": "route",
    "w_rr": "redirect",
    **{f"w_status_{letter}": f"status {letter}" for letter in EDITABLE_FLAGS},
}
"""Member form fields and what each sets."""

BALANCER_FIELDS: Mapping[str, str] = {
    "b_lbm": "lbmethod",
    "b_tmo": "timeout",
    "b_max": "maxattempts",
    "b_sforce": "nofailover",
    "b_ss": "stickysession",
}
"""Balancer form fields and what each sets."""

NOT_SUPPORTED: Mapping[str, str] = {
    "w_hm": "health check method",
    "w_hi": "health check interval",
    "w_hp": "health check passes",
    "w_hf": "health check fails",
    "w_hu": "health check URI",
    "w_he": "health check expression",
    "b_nwrkr": "adding a member",
    "b_wyes": "adding a member",
}
"""httpd fields that we refuse rather than ignore."""


class EditError(AJPBalancerError):
    """A balancer-manager form cannot be applied; the client gets 400 and this message."""


@dataclass(frozen=True, slots=True)
class MemberEdit:
    """Changes to one member; None leaves a value as it is, ``""`` clears a route."""

    lbfactor: int | None = None
    lbset: int | None = None
    route: str | None = None
    redirect: str | None = None
    status: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class BalancerEdit:
    """Changes to a balancer's parameters; None leaves one as it is."""

    lbmethod: str | None = None
    timeout: float | None = None
    maxattempts: int | None = None
    nofailover: bool | None = None
    stickysession: tuple[str, ...] | None = None


def _flag(field: str, text: str) -> bool:
    if text not in ("0", "1"):
        raise InvalidValueError(f"{field} must be 1 (on) or 0 (off), got {text!r}")
    return text == "1"


def _route(field: str, text: str) -> str:
    return "" if text == "" else token(field, text)


def _sticky(field: str, text: str) -> tuple[str, ...] | None:
    text = text.strip()
    if not text:
        return None
    if text == "-":
        return ()
    # The page shows "NAME | name", as httpd's does; the spaces are not part of the names.
    return sticky_names(field, "|".join(part.strip() for part in text.split("|")))


def check_fields(fields: Mapping[str, str], *, member: bool) -> None:
    """Refuse unknown or unsupported ``w_``/``b_`` fields, and member fields without ``w``."""
    for key in fields:
        if key in NOT_SUPPORTED:
            raise EditError(f"{key}: {NOT_SUPPORTED[key]} is not supported")
        if key.startswith("w_"):
            if key not in MEMBER_FIELDS:
                raise EditError(f"{key}: unknown member field")
            if not member:
                raise EditError(f"{key}: a member field needs w (the member's URL)")
        elif key.startswith("b_") and key not in BALANCER_FIELDS:
            raise EditError(f"{key}: unknown balancer field")


def parse_member_edit(fields: Mapping[str, str]) -> MemberEdit:
    """The member changes in ``fields`` (httpd's ``w_*``), all checked, or :class:`EditError`."""
    try:
        lf = fields.get("w_lf")
        ls = fields.get("w_ls")
        wr = fields.get("w_wr")
        rr = fields.get("w_rr")
        status = tuple(
            (letter, _flag(f"w_status_{letter}", fields[f"w_status_{letter}"]))
            for letter in EDITABLE_FLAGS
            if f"w_status_{letter}" in fields
        )
        return MemberEdit(
            lbfactor=None if lf is None else lbfactor(decimal("w_lf", lf, low=1, high=100)),
            lbset=None if ls is None else integer("w_ls", ls, low=0, high=99),
            route=None if wr is None else _route("w_wr", wr),
            redirect=None if rr is None else _route("w_rr", rr),
            status=status,
        )
    except InvalidValueError as e:
        raise EditError(str(e)) from None


def parse_balancer_edit(fields: Mapping[str, str]) -> BalancerEdit:
    """The balancer changes in ``fields`` (httpd's ``b_*``), checked, or :class:`EditError`."""
    try:
        lbm = fields.get("b_lbm")
        tmo = fields.get("b_tmo")
        mx = fields.get("b_max")
        sforce = fields.get("b_sforce")
        ss = fields.get("b_ss")
        return BalancerEdit(
            lbmethod=None if lbm is None else one_of("b_lbm", lbm, LBMETHODS),
            timeout=None if tmo is None else float(integer("b_tmo", tmo, low=0, high=MAX_TIMEOUT)),
            maxattempts=None if mx is None else integer("b_max", mx, low=0, high=99),
            nofailover=None if sforce is None else _flag("b_sforce", sforce),
            stickysession=None if ss is None else _sticky("b_ss", ss),
        )
    except InvalidValueError as e:
        raise EditError(str(e)) from None


def member_values(edit: MemberEdit) -> dict[str, Value]:
    """The keys ``edit`` sets (see :mod:`ajpbalancer.balancer._settable`)."""
    values: dict[str, Value] = {}
    if edit.lbfactor is not None:
        values["loadfactor"] = edit.lbfactor / 100
    if edit.lbset is not None:
        values["lbset"] = edit.lbset
    if edit.route is not None:
        values["route"] = edit.route or None
    if edit.redirect is not None:
        values["redirect"] = edit.redirect or None
    for letter, on in edit.status:
        values[f"status_{letter}"] = on
    return values


def balancer_values(edit: BalancerEdit) -> dict[str, Value]:
    """The keys ``edit`` sets."""
    return {
        key: getattr(edit, key)
        for key in ("lbmethod", "timeout", "maxattempts", "nofailover", "stickysession")
        if getattr(edit, key) is not None
    }


def describe_member_change(key: str, value: Value) -> str:
    """How the log writes one changed member key (``loadfactor 2``, ``+D``, ``route 'x'``)."""
    if key.startswith("status_"):
        return f"{'+' if value else '-'}{key[-1]}"
    if key == "loadfactor":
        assert isinstance(value, int | float)
        return f"loadfactor {value:g}"
    if key in ("route", "redirect"):
        return f"{key} {value or ''!r}"
    return f"{key} {value}"


def apply_member_edit(
    balancer: RunningBalancer, member: RunningMember, edit: MemberEdit
) -> list[str]:
    """Apply ``edit`` to ``member`` of ``balancer``; what changed, for the log."""
    changed = apply_member_values(balancer.states, member.lb, member_values(edit))
    member.route = member.lb.route
    return [describe_member_change(key, value) for key, value in changed]


def apply_balancer_edit(balancer: RunningBalancer, edit: BalancerEdit) -> list[str]:
    """Apply ``edit`` to ``balancer``'s runtime parameters; what changed, for the log."""
    old = balancer.params
    changed = set_balancer_values(balancer, balancer_values(edit))
    return [f"{key} {getattr(old, key)!r} -> {value!r}" for key, value in changed]
