"""Live reload: take over a new configuration without dropping a connection.

On ``SIGHUP`` the configuration file is read again. An invalid one is logged, problem by
problem, and changes nothing. A valid one gets a new :class:`ProxyRuntime`; members whose
URL is unchanged keep their state (error state and its time, health-check failure,
counters, lbstatus), so a member in error stays in error and byrequests' ratios go on
smoothly. Listeners that stay the same keep their sockets and get the new routing for new
requests; requests in flight finish on the routing they started with; new ``listen``
lines are opened (all of them, or the reload is refused) and removed ones closed. The old
runtime's idle member connections are closed; busy ones close when their request ends.
"""

from __future__ import annotations

from ajpbalancer.balancer import MemberState, Status
from ajpbalancer.members import MemberRuntime

# Flags the running proxy sets by itself, as opposed to those the configuration sets.
RUNTIME_FLAGS = Status.IN_ERROR | Status.HC_FAIL


def _carry_state(old: MemberState, new: MemberState) -> None:
    new.lbstatus = old.lbstatus
    new.elected = old.elected
    new.transferred = old.transferred
    new.read = old.read
    new.error_time = old.error_time
    new.retries = old.retries
    new.errors = old.errors
    new.status = (new.status & ~RUNTIME_FLAGS) | (old.status & RUNTIME_FLAGS)


def carry_over(old: list[MemberRuntime], new: list[MemberRuntime]) -> int:
    """Copy runtime state from ``old`` to ``new`` members with the same URL; how many."""
    by_name: dict[str, MemberRuntime] = {}
    for member in old:
        by_name.setdefault(member.name, member)
    carried = 0
    for member in new:
        previous = by_name.get(member.name)
        if previous is not None:
            _carry_state(previous.lb, member.lb)
            carried += 1
    return carried
