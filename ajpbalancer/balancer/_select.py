"""One balancing decision per attempt, as mod_proxy_balancer's pre/post_request hooks make it.

:func:`select_member` is ``proxy_balancer_pre_request``: force recovery, the session
route (charged to the member's share when it routes the request), else the lbmethod; the
member chosen gets ``busy`` counted until :meth:`MemberState.request_done`. A failover
attempt calls it again: the member that failed is in error by then, so the route or the
lbmethod moves on, exactly as httpd's ``proxy_handler`` loop re-runs ``pre_request``.

:func:`post_request` is ``proxy_balancer_post_request``: ``failonstatus`` and
``failontimeout`` put the member in error (the response still goes to the client).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ajpbalancer.balancer._finder import charge_sticky_hit, find_best, force_recovery
from ajpbalancer.balancer._state import MemberState
from ajpbalancer.balancer._sticky import StickyOutcome, find_session_route, route_decision
from ajpbalancer.config import BalancerParams


@dataclass(slots=True, init=False, unsafe_hash=True)
class Selection:
    """The outcome of one attempt to choose a member.

    ``member`` is None when the client gets ``status`` (503): no usable member, or the
    route's member is unusable with ``nofailover``. ``route`` and ``sticky`` are the
    session route and the stickysession name it was found under (httpd's notes
    ``session-route``/``session-sticky``, forwarded over AJP as ``jvm_route``), set even
    when the request was balanced elsewhere. ``route_changed`` is httpd's
    ``BALANCER_ROUTE_CHANGED``: the member's route is not the one the client sent.
    """

    member: Final[MemberState | None]
    route: Final[str | None]
    sticky: Final[str | None]
    route_changed: Final[bool]
    routed: Final[bool]

    def __init__(
        self,
        member: MemberState | None,
        route: str | None = None,
        sticky: str | None = None,
        route_changed: bool = False,
        routed: bool = False,
    ) -> None:
        self.member = member
        self.route = route
        self.sticky = sticky
        self.route_changed = route_changed
        self.routed = routed

    @property
    def status(self) -> int | None:
        return 503 if self.member is None else None


def select_member(
    members: Sequence[MemberState],
    params: BalancerParams,
    path_with_query: bytes,
    cookie_headers: Sequence[bytes],
    now: float,
) -> Selection:
    """Choose the member for one attempt of a request to the balancer of ``members``."""
    force_recovery(members, now, params.forcerecovery)
    found = find_session_route(
        params.stickysession,
        path_with_query,
        cookie_headers,
        params.stickysessionsep,
        params.scolonpathdelim,
    )
    route, sticky = found if found is not None else (None, None)
    decision = route_decision(members, route, now, params.nofailover)
    if decision.member is not None:
        charge_sticky_hit(members, decision.member)
        decision.member.busy += 1
        return Selection(
            decision.member,
            route,
            sticky,
            route_changed=decision.outcome is StickyOutcome.ROUTE_CHANGED,
            routed=True,
        )
    if decision.outcome is StickyOutcome.UNAVAILABLE:
        return Selection(None, route, sticky)
    member = find_best(members, params.lbmethod, now)
    if member is None:
        return Selection(None, route, sticky)
    member.busy += 1
    return Selection(member, route, sticky, route_changed=bool(params.stickysession))


def post_request(
    member: MemberState, params: BalancerParams, status: int, timed_out: bool, now: float
) -> bool:
    """Put ``member`` in error for a ``failonstatus`` status or, with ``failontimeout``, a
    timeout (never with ``+I``). True if it was put in error."""
    failed = status in params.failonstatus or (params.failontimeout and timed_out)
    return failed and member.put_in_error(now)


def max_attempts(params: BalancerParams, members: int) -> int:
    """Failover attempts after the first (``maxattempts``; unset: one per other member)."""
    if params.maxattempts is not None:
        return params.maxattempts
    return members - 1 if members > 1 else 0
