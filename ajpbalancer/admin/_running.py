"""What the admin reads and changes of the running proxy, as interfaces of its own.

The admin imports neither the request path nor the service: the composition root hands
it the running proxy (the current runtime, a new one after each reload) and these
protocols say exactly what the admin uses of it: the balancers and the direct
``ProxyPass`` members, a balancer's parameters, nonce, members and lock, a member's name,
URL, parameters, balancing state, route and pool, and each health check's counts; and
the runtime state (:class:`RuntimeValues`), which the page tells of each change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from ajpbalancer.balancer import MemberState, Value
from ajpbalancer.config import URL, BalancerParams, MemberParams


class RunningPool(Protocol):
    """A member's connection pool: ``open`` connections, of which ``idle`` wait."""

    @property
    def open(self) -> int: ...

    @property
    def idle(self) -> Collection[object]: ...


class RunningMember(Protocol):
    """One member: what balancer-manager shows and changes (``route`` is set with its
    state's route)."""

    route: str | None

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> URL: ...

    @property
    def params(self) -> MemberParams: ...

    @property
    def lb(self) -> MemberState: ...

    @property
    def pool(self) -> RunningPool: ...


class RunningBalancer(Protocol):
    """One balancer: its runtime parameters (which balancer-manager replaces), its nonce,
    its members in order with their states, and the lock a change holds."""

    params: BalancerParams
    max_attempts: int

    @property
    def name(self) -> str: ...

    @property
    def nonce(self) -> str: ...

    @property
    def members(self) -> Sequence[RunningMember]: ...

    @property
    def states(self) -> tuple[MemberState, ...]: ...

    @property
    def lock(self) -> AbstractContextManager[None]: ...


class HealthCounts(Protocol):
    """A health check's consecutive passes and failures so far."""

    @property
    def pcount(self) -> int: ...

    @property
    def fcount(self) -> int: ...


class RunningHealthCheck(Protocol):
    """The health check of one member."""

    @property
    def member(self) -> RunningMember: ...

    @property
    def count(self) -> HealthCounts: ...


class RunningProxy(Protocol):
    """The running proxy: balancers by name, direct members, health checks."""

    @property
    def balancers(self) -> Mapping[str, RunningBalancer]: ...

    @property
    def direct_members(self) -> Sequence[RunningMember]: ...

    @property
    def health_checkers(self) -> Sequence[RunningHealthCheck]: ...


RuntimeSource = Callable[[], RunningProxy | None]
"""Where the admin reads the running proxy (None before it started; new after a reload)."""


class RuntimeValue(Protocol):
    """A value set at run time that holds over the file's: what, over what, when, by whom,
    and its place in the store's order (None until the store has it)."""

    @property
    def value(self) -> Value: ...

    @property
    def base(self) -> Value: ...

    @property
    def time(self) -> float: ...

    @property
    def by(self) -> str: ...

    @property
    def seq(self) -> int | None: ...


class StoreHealth(Protocol):
    """The runtime-state store as the admin reports it."""

    @property
    def store(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def last_sync(self) -> float | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def pending(self) -> int: ...

    @property
    def reconnects(self) -> int: ...


class RuntimeValues(Protocol):
    """The runtime state: records what the page changed, says which values are the file's
    and which were set at run time, and how its store is."""

    @property
    def persist(self) -> bool: ...

    def record(
        self, balancer: str, member: str | None, values: Mapping[str, Value], by: str
    ) -> None: ...

    def entries(self, balancer: str, member: str | None) -> Mapping[str, RuntimeValue]: ...

    def health(self) -> StoreHealth | None: ...
