"""Sticky sessions: the route a request carries and the member it names, as httpd finds them.

Ported from mod_proxy_balancer.c, quirks included, because users rely on Apache's
behaviour and not on its documentation:

- ``stickysession=COOKIE|urlparam``: the cookie name is the part before the first ``|``,
  the URL parameter name the rest (the same name for both without ``|``).
- The URL is looked at first (``get_path_param``): the parameter name is searched anywhere
  in the path and query with no left boundary (``xjsessionid=`` matches ``jsessionid``);
  the value runs to the next ``?`` or ``&`` (and ``;`` with ``scolonpathdelim``), leading
  delimiters skipped, as ``apr_strtok`` does.
- Otherwise the ``Cookie`` header (``get_cookie_param``; several ``Cookie`` fields are one
  value joined by ``", "``, as httpd merges them): the name must start the header or follow
  ``;``, ``,`` or white space; white space may precede ``=``; the value ends at the first
  ``;`` or ``,``; the first match wins; no quotes are stripped.
- The route is what follows the first ``stickysessionsep`` (no separator in the value: no
  route); with ``stickysessionsep=Off`` the whole value is the route.
- :func:`find_route_member` is ``find_route_worker``: non-standby members first, then hot
  standbys; an unusable member is retried, then its ``redirect`` followed, at most as many
  hops as there are members.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ajpbalancer.balancer._state import MemberState

_C_SPACE = frozenset(b" \t\n\v\f\r")


def sticky_names(stickysession: Sequence[str]) -> tuple[str, str] | None:
    """(cookie name, URL parameter name) of ``stickysession`` split on ``|``, or None if unset.

    httpd splits at the first ``|`` only: ``A|B|C`` is cookie ``A`` and parameter ``B|C``.
    """
    if not stickysession:
        return None
    cookie = stickysession[0]
    path = "|".join(stickysession[1:]) if len(stickysession) > 1 else cookie
    return cookie, path


def get_path_param(url: bytes, name: bytes, scolonpathdelim: bool) -> bytes | None:
    """The value of ``name=`` anywhere in ``url`` (path and query), as httpd finds it."""
    delims = b";?&" if scolonpathdelim else b"?&"
    end = len(url)
    pos = url.find(name)
    while pos != -1:
        p = pos + len(name)
        if p < end and url[p] == ord("="):
            p += 1
            if p < end:
                while p < end and url[p] in delims:
                    p += 1
                if p == end:
                    return None
                q = p
                while q < end and url[q] not in delims:
                    q += 1
                return url[p:q]
        pos = url.find(name, p + 1)
    return None


def get_cookie_param(cookies: bytes, name: bytes) -> bytes | None:
    """The value of cookie ``name`` in a (merged) ``Cookie`` header, as httpd finds it."""
    end = len(cookies)
    pos = cookies.find(name)
    while pos != -1:
        if pos == 0 or cookies[pos - 1] in b";," or cookies[pos - 1] in _C_SPACE:
            p = pos + len(name)
            while p < end and cookies[p] in _C_SPACE:
                p += 1
            if p < end and cookies[p] == ord("=") and p + 1 < end:
                value = cookies[p + 1 :]
                value = value.split(b";", 1)[0]
                return value.split(b",", 1)[0]
            # httpd steps past the byte it compared with '=' before searching on.
            pos = cookies.find(name, p + 2)
        else:
            pos = cookies.find(name, pos + 1)
    return None


def find_session_route(
    stickysession: Sequence[str],
    path_with_query: bytes,
    cookie_headers: Sequence[bytes],
    sep: str | None,
    scolonpathdelim: bool,
) -> tuple[str, str] | None:
    """(route, stickysession name used) of a request, or None if it carries no route.

    ``path_with_query`` is the request-target as received; ``cookie_headers`` the values of
    its ``Cookie`` fields. The route is decoded as Latin-1 (bytes preserved) and may be
    empty (``JSESSIONID=ABC.``): httpd still passes it on (AJP ``jvm_route``) but routes
    such a request by the lbmethod.
    """
    keys = _sticky_keys(tuple(stickysession), sep)
    if keys is None:
        return None
    cookie_name, path_name, cookie_key, path_key, sep_key = keys
    used = path_name
    value = get_path_param(path_with_query, path_key, scolonpathdelim)
    if value is None:
        used = cookie_name
        if not cookie_headers:
            return None
        merged = cookie_headers[0] if len(cookie_headers) == 1 else b", ".join(cookie_headers)
        value = get_cookie_param(merged, cookie_key)
        if value is None:
            return None
    if sep_key is not None:
        _, found, value = value.partition(sep_key)
        if not found:
            return None
    return value.decode("latin-1"), used


@functools.lru_cache(maxsize=64)
def _sticky_keys(
    stickysession: tuple[str, ...], sep: str | None
) -> tuple[str, str, bytes, bytes, bytes | None] | None:
    """:func:`sticky_names` and their bytes, and the separator's, worked out once per
    balancer configuration rather than per request."""
    names = sticky_names(stickysession)
    if names is None:
        return None
    cookie, path = names
    sep_key = None if sep is None else sep.encode("latin-1")
    return cookie, path, cookie.encode("latin-1"), path.encode("latin-1"), sep_key


def find_route_member(
    members: Sequence[MemberState], route: str, now: float, _hops: int = 1
) -> MemberState | None:
    """The usable member whose ``route`` is ``route`` (``find_route_worker``), or None.

    Non-standby members are looked at before hot standbys, each in configuration order. A
    matching member that is unusable is retried (``retry`` elapsed or ``+I``); if it is
    still unusable its ``redirect`` route is followed, at most ``len(members) - 1`` hops.
    Draining members are found: drain means "only requests routed to it".
    """
    for want_standby in (False, True):
        for member in members:
            if member.standby != want_standby:
                continue
            if not member.route or member.route != route:
                continue
            if member.usable:
                return member
            member.retry_member(now)
            if member.usable:
                return member
            if member.redirect and _hops < len(members):
                other = find_route_member(members, member.redirect, now, _hops + 1)
                if other is not None and not other.usable:
                    other.retry_member(now)
                if other is not None and other.usable:
                    return other
    return None


class StickyOutcome(enum.Enum):
    """What a request's route decides."""

    ROUTED = "routed"
    """The member with the request's route."""
    ROUTE_CHANGED = "route changed"
    """A member reached through ``redirect``: its route differs from the request's."""
    UNAVAILABLE = "unavailable"
    """``nofailover=On`` and the route names a member of this balancer that is unusable: 503."""
    BALANCE = "balance"
    """No route, an unknown route, or its member is unusable: the lbmethod decides."""


@dataclass(slots=True, init=False, unsafe_hash=True)
class StickyDecision:
    """The outcome and, for ``ROUTED``/``ROUTE_CHANGED``, the member."""

    outcome: Final[StickyOutcome]
    member: Final[MemberState | None]

    def __init__(self, outcome: StickyOutcome, member: MemberState | None = None) -> None:
        self.outcome = outcome
        self.member = member

    @property
    def status(self) -> int | None:
        """The status the client gets when the outcome is final without a member."""
        return 503 if self.outcome is StickyOutcome.UNAVAILABLE else None


def route_decision(
    members: Sequence[MemberState], route: str | None, now: float, nofailover: bool
) -> StickyDecision:
    """What mod_proxy_balancer's ``pre_request`` does with a request's route.

    ``route`` is the first element of :func:`find_session_route`'s result (None without
    one). The 503 needs a member of this balancer whose route is ``route`` (whatever its
    state): a route naming no member is balanced normally even with ``nofailover``.
    """
    if route:
        member = find_route_member(members, route, now)
        if member is not None:
            if member.route != route:
                return StickyDecision(StickyOutcome.ROUTE_CHANGED, member)
            return StickyDecision(StickyOutcome.ROUTED, member)
    if route is not None and nofailover and any(m.route and m.route == route for m in members):
        return StickyDecision(StickyOutcome.UNAVAILABLE)
    return StickyDecision(StickyOutcome.BALANCE)
