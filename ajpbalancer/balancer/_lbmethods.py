"""Load-balancing methods, sans-I/O: pick one member among the usable ones.

``byrequests`` is Apache's weighted request counting (mod_lbmethod_byrequests): every
candidate adds its lbfactor to its lbstatus, the highest lbstatus wins (ties go to the
first in configuration order) and has the sum of the candidates' lbfactors subtracted.
Loadfactors 1:3 therefore give exactly 1:3, smoothly interleaved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class LBState:
    """A member's balancing counters (what balancer-manager shows as Factor, Load, Elected…)."""

    lbfactor: int
    lbstatus: int = 0
    elected: int = 0
    busy: int = 0
    transferred: int = 0
    read: int = 0


def byrequests(candidates: Sequence[LBState]) -> LBState | None:
    total = 0
    best: LBState | None = None
    for state in candidates:
        state.lbstatus += state.lbfactor
        total += state.lbfactor
        if best is None or state.lbstatus > best.lbstatus:
            best = state
    if best is not None:
        best.lbstatus -= total
        best.elected += 1
    return best


LBMethod = Callable[[Sequence[LBState]], LBState | None]

LBMETHODS: dict[str, LBMethod] = {
    "byrequests": byrequests,
}


def lbfactor(loadfactor: float) -> int:
    """Apache keeps loadfactor 1-100 as an integer 100-10000."""
    return int(loadfactor * 100)
