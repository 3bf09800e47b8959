"""One read of the running proxy's balancers and members, for the page and ``/status.json``.

:func:`snapshot` copies what balancer-manager shows (per balancer: lbmethod, stickysession,
nofailover, maxattempts, timeout; per member: URL, route, redirect, factor, set, status,
elected, busy, load, bytes to and from, errors, pool and health check, and in the JSON
the member's tunnels) out of the live state into frozen views, so that the HTML page and
the JSON document show the same data.
The JSON document is :func:`as_json` of the snapshot; its schema is in the README.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ajpbalancer import __version__
from ajpbalancer.admin._running import (
    RunningBalancer,
    RunningHealthCheck,
    RunningMember,
    RunningProxy,
    RuntimeValues,
)
from ajpbalancer.balancer import BALANCER_KEYS, MEMBER_KEYS, MemberState, Status

STATUS_WORDS: tuple[tuple[Status, str], ...] = (
    (Status.IGNORE_ERRORS, "Ign"),
    (Status.DRAIN, "Drn"),
    (Status.IN_SHUTDOWN, "Shut"),
    (Status.DISABLED, "Dis"),
    (Status.STOPPED, "Stop"),
    (Status.IN_ERROR, "Err"),
    (Status.HOT_STANDBY, "Stby"),
    (Status.HOT_SPARE, "Spar"),
    (Status.HC_FAIL, "HcFl"),
)
"""httpd's ``proxy_wstat_tbl`` words for the flags we have, in its order."""


def status_words(state: MemberState) -> str:
    """The Status column as httpd's ``ap_proxy_parse_wstatus`` writes it (``Init Dis``)."""
    words = ["Init", *(word for flag, word in STATUS_WORDS if state.has(flag))]
    if state.usable:
        words.append("Ok")
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class HealthView:
    """A member's health check: its parameters and whether it passes (no ``C`` flag)."""

    method: str
    uri: str
    interval: float
    passes: int
    fails: int
    passing: bool
    pcount: int | None
    fcount: int | None


@dataclass(frozen=True, slots=True)
class PoolView:
    """Connections to the member: ``open`` in all, of which ``idle`` wait for a request."""

    open: int
    idle: int


@dataclass(frozen=True, slots=True)
class RuntimeView:
    """A value set at run time: it, the file's value it holds over (``file``), when, by
    whom, and its number in the store's order (None until the store has it)."""

    value: Any
    file: Any
    time: float
    by: str
    seq: int | None


@dataclass(frozen=True, slots=True)
class StateView:
    """The runtime state: whether it is kept (``persist``) and how its store is."""

    persist: bool
    store: str | None = None
    kind: str | None = None
    connected: bool | None = None
    last_sync: float | None = None
    error: str | None = None
    pending: int = 0
    reconnects: int = 0


def _sources(keys: tuple[str, ...], runtime: dict[str, RuntimeView]) -> dict[str, str]:
    return {key: "runtime" if key in runtime else "file" for key in keys}


@dataclass(frozen=True, slots=True)
class TunnelView:
    """A member's tunnels (requests that switched protocols): ``open`` now, ``opened``
    in all, and the bytes through them to the member (``sent``) and from it
    (``received``), summed over the worker processes."""

    open: int = 0
    opened: int = 0
    sent: int = 0
    received: int = 0


NO_TUNNELS = TunnelView()

Tunnels = Mapping[tuple[str, str], TunnelView]
"""Tunnel counts by (balancer name, ``""`` for a direct target; member name)."""


@dataclass(frozen=True, slots=True)
class MemberView:
    """One member as balancer-manager shows it (``transferred`` is To, ``read`` From)."""

    name: str
    scheme: str
    route: str | None
    redirect: str | None
    loadfactor: float
    lbset: int
    status: str
    flags: str
    usable: bool
    elected: int
    busy: int
    lbstatus: int
    transferred: int
    read: int
    errors: int
    retries: int
    error_time: float | None
    retry: float
    pool: PoolView
    health_check: HealthView | None
    sources: dict[str, str]
    runtime: dict[str, RuntimeView]
    tunnels: TunnelView = NO_TUNNELS


@dataclass(frozen=True, slots=True)
class BalancerView:
    """One balancer: its runtime parameters, its nonce and its members."""

    name: str
    nonce: str
    lbmethod: str
    stickysession: tuple[str, ...]
    stickysessionsep: str | None
    nofailover: bool
    maxattempts: int
    timeout: float
    failonstatus: tuple[int, ...]
    failontimeout: bool
    forcerecovery: bool
    members: tuple[MemberView, ...]
    sources: dict[str, str]
    runtime: dict[str, RuntimeView]

    def member(self, name: str) -> MemberView | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole proxy: balancers, then the direct ``ProxyPass`` members (``workers``, the
    key status.json has always had: mod_proxy calls members workers)."""

    version: str
    time: float
    balancers: tuple[BalancerView, ...]
    workers: tuple[MemberView, ...]
    state: StateView = StateView(persist=False)

    def balancer(self, name: str) -> BalancerView | None:
        return next((b for b in self.balancers if b.name == name), None)


def _runtime(
    values: RuntimeValues | None, balancer: str, member: str | None
) -> dict[str, RuntimeView]:
    if values is None:
        return {}
    return {
        key: RuntimeView(e.value, e.base, e.time, e.by, e.seq)
        for key, e in values.entries(balancer, member).items()
    }


def member_view(
    member: RunningMember,
    checker: RunningHealthCheck | None = None,
    runtime: dict[str, RuntimeView] | None = None,
    tunnels: TunnelView = NO_TUNNELS,
) -> MemberView:
    """``member`` as balancer-manager shows it; ``checker`` is its health checker if any,
    ``runtime`` its values set at run time, ``tunnels`` its tunnels' counts."""
    runtime = runtime or {}
    state = member.lb
    params = member.params
    health = None
    if params.hcmethod is not None:
        health = HealthView(
            method=params.hcmethod,
            uri=params.hcuri,
            interval=params.hcinterval,
            passes=params.hcpasses,
            fails=params.hcfails,
            passing=not state.has(Status.HC_FAIL),
            pcount=None if checker is None else checker.count.pcount,
            fcount=None if checker is None else checker.count.fcount,
        )
    return MemberView(
        name=member.name,
        scheme=member.url.scheme.value,
        route=state.route,
        redirect=state.redirect,
        loadfactor=state.lbfactor / 100,
        lbset=state.lbset,
        status=status_words(state),
        flags=state.letters,
        usable=state.usable,
        elected=state.elected,
        busy=state.busy,
        lbstatus=state.lbstatus,
        transferred=state.transferred,
        read=state.read,
        errors=state.errors,
        retries=state.retries,
        error_time=state.error_time if state.errors or state.error_time else None,
        retry=state.retry,
        pool=PoolView(open=member.pool.open, idle=len(member.pool.idle)),
        health_check=health,
        sources=_sources(MEMBER_KEYS, runtime),
        runtime=runtime,
        tunnels=tunnels,
    )


def balancer_view(
    balancer: RunningBalancer,
    checker: Callable[[RunningMember], RunningHealthCheck | None],
    values: RuntimeValues | None = None,
    tunnels: Tunnels | None = None,
) -> BalancerView:
    params = balancer.params
    runtime = _runtime(values, balancer.name, None)
    counts = {} if tunnels is None else tunnels
    return BalancerView(
        name=balancer.name,
        nonce=balancer.nonce,
        lbmethod=params.lbmethod,
        stickysession=params.stickysession,
        stickysessionsep=params.stickysessionsep,
        nofailover=params.nofailover,
        maxattempts=balancer.max_attempts,
        timeout=params.timeout,
        failonstatus=tuple(sorted(params.failonstatus)),
        failontimeout=params.failontimeout,
        forcerecovery=params.forcerecovery,
        members=tuple(
            member_view(
                m,
                checker(m),
                _runtime(values, balancer.name, m.name),
                counts.get((balancer.name, m.name), NO_TUNNELS),
            )
            for m in balancer.members
        ),
        sources=_sources(BALANCER_KEYS, runtime),
        runtime=runtime,
    )


def state_view(values: RuntimeValues | None) -> StateView:
    """Whether runtime state is kept, and its store's health."""
    if values is None:
        return StateView(persist=False)
    health = values.health()
    if health is None:
        return StateView(persist=values.persist)
    return StateView(
        persist=values.persist,
        store=health.store,
        kind=health.kind,
        connected=health.connected,
        last_sync=health.last_sync,
        error=health.error,
        pending=health.pending,
        reconnects=health.reconnects,
    )


def snapshot(
    runtime: RunningProxy | None,
    now: float,
    values: RuntimeValues | None = None,
    tunnels: Tunnels | None = None,
) -> Snapshot:
    """Everything balancer-manager shows, as of ``now``; empty before the proxy started.
    ``values``: the runtime state, which says which values were set at run time;
    ``tunnels``: the members' tunnel counts (from the metrics), if known."""
    if runtime is None:
        return Snapshot(__version__, now, (), (), state_view(values))
    by_member = {id(c.member): c for c in runtime.health_checkers}

    def checker(member: RunningMember) -> RunningHealthCheck | None:
        return by_member.get(id(member))

    return Snapshot(
        version=__version__,
        time=now,
        balancers=tuple(
            balancer_view(b, checker, values, tunnels) for b in runtime.balancers.values()
        ),
        workers=tuple(
            member_view(m, checker(m), None, (tunnels or {}).get(("", m.name), NO_TUNNELS))
            for m in runtime.direct_members
        ),
        state=state_view(values),
    )


def as_json(snap: Snapshot) -> dict[str, Any]:
    """The ``/status.json`` document (tuples become lists)."""
    return asdict(snap)
