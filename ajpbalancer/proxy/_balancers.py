"""A balancer at run time: its members, their states, its parameters and its choice.

A :class:`BalancerRuntime` owns its members' runtimes (:class:`MemberRuntime`) in
configuration order and picks one per request with its lbmethod, under the lock that
makes the decision atomic across the processes of ``workers = N``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from ajpbalancer.balancer import Selection, max_attempts, select_member
from ajpbalancer.config import Balancer, BalancerParams
from ajpbalancer.members import MemberRuntime
from ajpbalancer.shm import SharedBalancer, SharedMemberState, SharedMemory


class BalancerRuntime:
    """A balancer's members in configuration order, their states, and its parameters.

    ``params`` starts as the configured ``ProxySet`` values and is replaced (never mutated:
    it is frozen) when balancer-manager changes them; ``nonce`` is the UUID that every
    balancer-manager change to this balancer must carry, made once per balancer as httpd
    makes it.

    With ``workers = N`` (``shared`` given, see :mod:`ajpbalancer.shm`),
    ``params``, ``max_attempts`` and ``nonce`` live in the balancer's shared slot and
    ``lock`` is the cross-process lock held around each decision.
    """

    def __init__(
        self,
        config: Balancer,
        members: Sequence[MemberRuntime],
        *,
        shared: SharedMemory | None = None,
        configure: bool = False,
    ) -> None:
        self.config = config
        self.name = config.name
        self._params = config.params
        self._nonce = str(uuid.uuid4())
        self.members = tuple(members)
        self.states = tuple(m.lb for m in self.members)
        self._by_state = {id(m.lb): m for m in self.members}
        self._max_attempts = max_attempts(config.params, len(self.members))
        self.lock: AbstractContextManager[None] = nullcontext()
        self._shared: SharedBalancer | None = None
        # The shared states whose pending traffic a selection publishes (see select).
        self._publish = tuple(s for s in self.states if isinstance(s, SharedMemberState))
        if shared is not None:
            self.lock = shared.lock
            self._shared = shared.balancer(
                self.name, config.params, self._max_attempts, self._nonce, configure=configure
            )
        if len(self.members) == 1:
            # Apache's recalc_factors: a lone member has lbfactor and lbstatus 100.
            self.members[0].lb.lbfactor = 100
            self.members[0].lb.lbstatus = 100
        # Otherwise lbstatus starts at 0, which reproduces the schedules that Apache's
        # documentation of the request counting algorithm tabulates.

    @property
    def params(self) -> BalancerParams:
        return self._params if self._shared is None else self._shared.params

    @params.setter
    def params(self, value: BalancerParams) -> None:
        if self._shared is None:
            self._params = value
        else:
            self._shared.params = value

    @property
    def max_attempts(self) -> int:
        return self._max_attempts if self._shared is None else self._shared.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        if self._shared is None:
            self._max_attempts = value
        else:
            self._shared.max_attempts = value

    @property
    def nonce(self) -> str:
        return self._nonce if self._shared is None else self._shared.nonce

    def select(
        self, path_with_query: bytes, cookies: Sequence[bytes], now: float
    ) -> tuple[MemberRuntime | None, Selection]:
        """One attempt's member (pre_request): the session route, else the lbmethod.

        The whole decision holds ``lock``, so with shared state it is one atomic
        read-modify-write across the processes. It also publishes this process's pending
        traffic of the members (see :mod:`ajpbalancer.shm`): the lock is held
        anyway, and ``bytraffic`` then counts every byte this process has moved."""
        with self.lock:
            for state in self._publish:
                state.publish_traffic()
            selection = select_member(self.states, self.params, path_with_query, cookies, now)
        member = selection.member
        return (None if member is None else self._by_state[id(member)]), selection
