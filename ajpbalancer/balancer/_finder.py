"""Choosing a member for a request without a usable route, as httpd's finder does.

:func:`find_best` is ``proxy_balancer_get_best_worker`` (proxy_util.c) driving an
lbmethod: lbset tiers from 0 upwards until one yields a member; within a tier, in
configuration order, draining (``N``) members are skipped (and count as unusable when
neither spare nor standby), unusable members get a retry (``ap_proxy_retry_worker``), the
usable regular members are candidates, then one usable spare (``R``) per unusable regular
member; hot standbys (``H``) are the candidates only when that leaves none.

:func:`force_recovery` and :func:`charge_sticky_hit` are the bookkeeping that
mod_proxy_balancer's ``pre_request`` does around the finder.
"""

from __future__ import annotations

from collections.abc import Sequence

from ajpbalancer.balancer._lbmethods import LBMETHODS, LBMethod
from ajpbalancer.balancer._state import MemberState, Status


def tier_candidates(members: Sequence[MemberState], lbset: int, now: float) -> list[MemberState]:
    """The members of ``lbset`` an lbmethod chooses among, in the order httpd asks ``is_best``.

    Retries members in error as httpd's finder does (a side effect on their status).
    """
    regular: list[MemberState] = []
    spares: list[MemberState] = []
    standbys: list[MemberState] = []
    unusable = 0
    for member in members:
        if member.lbset != lbset:
            continue
        if member.draining:
            if not member.spare and not member.standby:
                unusable += 1
            continue
        if not member.usable:
            member.retry_member(now)
        if member.spare:
            if member.usable:
                spares.append(member)
        elif member.standby:
            if member.usable:
                standbys.append(member)
        elif member.usable:
            regular.append(member)
        else:
            unusable += 1
    candidates = regular + spares[:unusable]
    return candidates if candidates else standbys


def find_best(
    members: Sequence[MemberState], method: str | LBMethod, now: float
) -> MemberState | None:
    """The member the lbmethod (a name in :data:`LBMETHODS` or the function) elects, or None.

    The elected member has ``elected`` counted (by the lbmethod); ``busy`` is the caller's.
    """
    lbmethod = LBMETHODS[method] if isinstance(method, str) else method
    top = max((m.lbset for m in members), default=-1)
    for lbset in range(top + 1):
        candidates = tier_candidates(members, lbset, now)
        if candidates:
            return lbmethod(candidates)
    return None


def force_recovery(members: Sequence[MemberState], now: float, enabled: bool = True) -> bool:
    """httpd's ``force_recovery``: when every member is in error, clear ``E`` on all of them.

    Members in error are first given their ordinary retry; only if none leaves the error
    state (and ``enabled``, the balancer's ``forcerecovery``) is the error cleared on every
    member, ``retry`` notwithstanding. True if recovery was forced.
    """
    for member in members:
        if not member.in_error:
            return False
        member.retry_member(now)
        if not member.in_error:
            return False
    if not enabled:
        return False
    for member in members:
        member.retries += 1
        member.status &= ~Status.IN_ERROR
    return bool(members)


def charge_sticky_hit(members: Sequence[MemberState], chosen: MemberState) -> None:
    """Count a request routed by its session route against ``chosen``'s share.

    mod_proxy_balancer's ``pre_request`` for lbmethods without ``updatelbstatus`` (all of
    httpd's): every usable member of the balancer adds its lbfactor to its lbstatus, the
    chosen one has the total subtracted, and its ``elected`` is counted.
    """
    total = 0
    for member in members:
        if member.usable:
            member.lbstatus += member.lbfactor
            total += member.lbfactor
    chosen.lbstatus -= total
    chosen.elected += 1
