"""Balancer logic without I/O: member state, lbmethods, sticky routes and the finder."""

from __future__ import annotations

from ajpbalancer.balancer._finder import (
    charge_sticky_hit,
    find_best,
    force_recovery,
    tier_candidates,
)
from ajpbalancer.balancer._lbmethods import (
    LBMETHODS,
    LBMethod,
    LBState,
    bybusyness,
    byrequests,
    bytraffic,
    lbfactor,
)
from ajpbalancer.balancer._select import Selection, max_attempts, post_request, select_member
from ajpbalancer.balancer._state import (
    NOT_USABLE,
    STATUS_LETTERS,
    MemberState,
    Status,
    status_from_letters,
)
from ajpbalancer.balancer._sticky import (
    StickyDecision,
    StickyOutcome,
    find_route_member,
    find_session_route,
    get_cookie_param,
    get_path_param,
    route_decision,
    sticky_names,
)

__all__ = [
    "LBMETHODS",
    "NOT_USABLE",
    "STATUS_LETTERS",
    "LBMethod",
    "LBState",
    "MemberState",
    "Selection",
    "Status",
    "StickyDecision",
    "StickyOutcome",
    "bybusyness",
    "byrequests",
    "bytraffic",
    "charge_sticky_hit",
    "find_best",
    "find_route_member",
    "find_session_route",
    "force_recovery",
    "get_cookie_param",
    "get_path_param",
    "lbfactor",
    "max_attempts",
    "post_request",
    "route_decision",
    "select_member",
    "status_from_letters",
    "sticky_names",
    "tier_candidates",
]
