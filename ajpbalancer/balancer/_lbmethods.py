"""Load-balancing methods, sans-I/O: pick one member among the candidates of one lbset tier.

Each lbmethod is the ``is_best`` callback of httpd's ``proxy_balancer_get_best_worker``
folded over the candidate list (the finder in :mod:`._finder` builds that list: usable
regular members, then the spares that replace unusable ones, or else the hot standbys).
Calling ``is_best`` on every candidate in order is exactly what httpd does, so the side
effects on lbstatus are the same.

``byrequests`` is Apache's weighted request counting (mod_lbmethod_byrequests): every
candidate adds its lbfactor to its lbstatus, the highest lbstatus wins (ties go to the
first in configuration order) and has the sum of the candidates' lbfactors subtracted.
Loadfactors 1:3 therefore give exactly 1:3, smoothly interleaved.

``bytraffic`` (mod_lbmethod_bytraffic) picks the least ``transferred/lbfactor +
read/lbfactor``, each quotient truncated as C's integer division does; it leaves lbstatus
alone. ``bybusyness`` (mod_lbmethod_bybusyness) picks the fewest requests in flight
(``busy``) and breaks ties with byrequests' counting, which it keeps up to date.

In httpd the caller (``find_best_worker``) counts the election; here each lbmethod does,
so an lbmethod called on its own keeps ``elected`` right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(slots=True)
class LBState:
    """A member's balancing counters (what balancer-manager shows as Factor, Load, Elected…).

    ``lbfactor`` is the loadfactor in hundredths (100-10000) as httpd keeps it;
    ``transferred`` is bytes sent to the member, ``read`` bytes received from it.
    """

    lbfactor: int
    lbstatus: int = 0
    elected: int = 0
    busy: int = 0
    transferred: int = 0
    read: int = 0


S = TypeVar("S", bound=LBState)


class LBMethod(Protocol):
    """An lbmethod: the best of ``candidates`` (in configuration order), or None if empty."""

    def __call__(self, candidates: Sequence[S], /) -> S | None: ...


def byrequests(candidates: Sequence[S]) -> S | None:
    """Weighted request counting; ties go to the first candidate."""
    total = 0
    best: S | None = None
    for state in candidates:
        state.lbstatus += state.lbfactor
        total += state.lbfactor
        if best is None or state.lbstatus > best.lbstatus:
            best = state
    if best is not None:
        best.lbstatus -= total
        best.elected += 1
    return best


def bytraffic(candidates: Sequence[S]) -> S | None:
    """Least bytes to and from the member per lbfactor; ties go to the first candidate."""
    best: S | None = None
    least = 0
    for state in candidates:
        traffic = state.transferred // state.lbfactor + state.read // state.lbfactor
        if best is None or traffic < least:
            best, least = state, traffic
    if best is not None:
        best.elected += 1
    return best


def bybusyness(candidates: Sequence[S]) -> S | None:
    """Fewest requests in flight; ties broken by byrequests' lbstatus, then configuration order."""
    total = 0
    best: S | None = None
    for state in candidates:
        state.lbstatus += state.lbfactor
        total += state.lbfactor
        if (
            best is None
            or state.busy < best.busy
            or (state.busy == best.busy and state.lbstatus > best.lbstatus)
        ):
            best = state
    if best is not None:
        best.lbstatus -= total
        best.elected += 1
    return best


LBMETHODS: dict[str, LBMethod] = {
    "byrequests": byrequests,
    "bytraffic": bytraffic,
    "bybusyness": bybusyness,
}
"""The lbmethod registry, by Apache's names (``ProxySet lbmethod=…``)."""


def lbfactor(loadfactor: float) -> int:
    """Apache keeps loadfactor 1-100 as an integer 100-10000."""
    return int(loadfactor * 100)
