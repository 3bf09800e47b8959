"""Live reload: take over a new configuration without dropping a connection.

On ``SIGHUP`` the configuration file is read again. An invalid one is logged, problem by
problem, and changes nothing. A valid one gets a new :class:`ProxyRuntime`; members whose
URL is unchanged keep their state (error state and its time, health-check failure,
counters, lbstatus), so a member in error stays in error and byrequests' ratios go on
smoothly. Listeners that stay the same keep their sockets and get the new routing for new
requests; requests in flight finish on the routing they started with; new ``listen``
lines are opened (all of them, or the reload is refused) and removed ones closed; a line
that changes only its ``backlog=`` keeps its socket, which listens with the new backlog.
The old runtime's idle member connections are closed; busy ones close when their request
ends.

Some settings are the process's own and are not changed by a reload: a reload that
changes ``workers``, ``admin`` (but for its backlog), ``admin_users``, ``demo``,
``BalancerPersist``, ``state`` or ``state_prefix`` is refused, naming the key
(:func:`needs_restart`). ``access_log`` is applied (the new file is opened, or the
reload refused), and so are ``admin_hosts`` and the admin listener's backlog.
"""

from __future__ import annotations

from ajpbalancer.balancer import MemberState, Status
from ajpbalancer.config import Settings, endpoint_spec
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


# The runtime state's settings (directive, Settings field): opened at start.
_RUNTIME_STATE_KEYS = (
    ("BalancerPersist", "balancer_persist"),
    ("state", "state"),
    ("state_prefix", "state_prefix"),
)


def _shown(value: object) -> str:
    """A setting as a message shows it (a state store without its password)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "unset" if value is None else repr(str(value))


def _admin_address(settings: Settings) -> object:
    admin = settings.admin
    return None if admin is None else endpoint_spec(admin.description).address


def needs_restart(old: Settings, new: Settings) -> list[str]:
    """What a reload from ``old`` to ``new`` settings cannot apply: one message per key,
    ``key: what changed; ...`` (empty when the reload can go on)."""
    later = "takes a restart"
    problems: list[str] = []
    if old.workers != new.workers:
        problems.append(f"workers: changed from {old.workers} to {new.workers}; {later}")
    if _admin_address(old) != _admin_address(new):
        described = [s.admin.description if s.admin else "unset" for s in (old, new)]
        problems.append(
            f"admin: changed from {described[0]!r} to {described[1]!r}; {later} "
            "(a reload may change only its backlog)"
        )
    if old.admin_users != new.admin_users:
        problems.append(
            f"admin_users: changed from {old.admin_users!r} to {new.admin_users!r}; {later}"
        )
    for key, field in _RUNTIME_STATE_KEYS:
        was, now = getattr(old, field), getattr(new, field)
        if was != now:
            problems.append(f"{key}: changed from {_shown(was)} to {_shown(now)}; {later}")
    before = [(str(d.url), d.route) for d in old.demo]
    after = [(str(d.url), d.route) for d in new.demo]
    if before != after:
        problems.append(f"demo: the demo backends changed; {later}")
    return problems
