"""The mutable runtime status of one balancer member, as mod_proxy keeps it in shared memory.

A :class:`MemberState` is an :class:`~ajpbalancer.balancer.LBState` (the counters the
lbmethods work on) plus the status flags, the error bookkeeping and the routing parameters
(``route``, ``redirect``, ``lbset``, ``retry``). It is the one owner of that state; time
is never read here but passed in as ``now`` (seconds, a float, any monotonic origin).

Flags are mod_proxy's (``mod_proxy.h``), with their letters from ``status=``:
``D`` disabled, ``S`` stopped, ``I`` ignore errors, ``H`` hot standby, ``R`` hot spare,
``N`` drain, ``E`` in error, ``C`` health check failed, ``U`` in shutdown. A member is
*usable* when none of ``PROXY_WORKER_NOT_USABLE_BITMAP`` (``U D S E C``) is set; drain,
standby and spare do not make it unusable: the finder deals with them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ajpbalancer.balancer._lbmethods import LBState, lbfactor
from ajpbalancer.config import Member, MemberParams


class Status(enum.IntFlag):
    """mod_proxy's worker status bits (the values of ``mod_proxy.h``)."""

    IGNORE_ERRORS = 0x0002
    DRAIN = 0x0004
    IN_SHUTDOWN = 0x0010
    DISABLED = 0x0020
    STOPPED = 0x0040
    IN_ERROR = 0x0080
    HOT_STANDBY = 0x0100
    HC_FAIL = 0x0400
    HOT_SPARE = 0x0800


STATUS_LETTERS: dict[str, Status] = {
    "I": Status.IGNORE_ERRORS,
    "N": Status.DRAIN,
    "U": Status.IN_SHUTDOWN,
    "D": Status.DISABLED,
    "S": Status.STOPPED,
    "E": Status.IN_ERROR,
    "H": Status.HOT_STANDBY,
    "C": Status.HC_FAIL,
    "R": Status.HOT_SPARE,
}
"""``status=`` letters and balancer-manager flags, as mod_proxy spells them."""

NO_STATUS = Status(0)
"""No flag set: a member in service."""

NOT_USABLE = (
    Status.IN_SHUTDOWN | Status.DISABLED | Status.STOPPED | Status.IN_ERROR | Status.HC_FAIL
)
"""``PROXY_WORKER_NOT_USABLE_BITMAP``."""
_NOT_USABLE_BITS = int(NOT_USABLE)
# Flag arithmetic (`Status & Status`) runs Python code and builds a new member; the
# checks asked on every request test bits with int's own `&` instead.
_and = int.__and__


def status_from_letters(letters: Iterable[str]) -> Status:
    """The flags named by ``letters`` (``KeyError`` for an unknown letter)."""
    status = NO_STATUS
    for letter in letters:
        status |= STATUS_LETTERS[letter.upper()]
    return status


@dataclass(slots=True, eq=False, kw_only=True)
class MemberState(LBState):
    """One member's runtime status. Compared by identity: each is one member.

    ``error_time`` is the ``now`` of the last :meth:`put_in_error`; ``retries`` counts the
    times the error flag was cleared by :meth:`retry_member` or forced recovery; ``errors``
    counts the times :meth:`put_in_error` set it (balancer-manager's Errors column).
    """

    name: str = ""
    status: Status = NO_STATUS
    error_time: float = 0.0
    retries: int = 0
    errors: int = 0
    route: str | None = None
    redirect: str | None = None
    lbset: int = 0
    retry: float = 60.0

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @classmethod
    def from_params(cls, name: str, params: MemberParams) -> MemberState:
        """The initial state of a member configured with ``params`` (lbstatus 0, as httpd)."""
        return cls(
            lbfactor(params.loadfactor),
            name=name,
            status=status_from_letters(params.status),
            route=params.route,
            redirect=params.redirect,
            lbset=params.lbset,
            retry=params.retry,
        )

    @classmethod
    def from_member(cls, member: Member) -> MemberState:
        """The initial state of a ``BalancerMember``."""
        return cls.from_params(member.name, member.params)

    # -- flags -------------------------------------------------------------------------------

    def has(self, flag: Status) -> bool:
        """Whether ``flag`` (any of its bits) is set."""
        return bool(_and(self.status, flag))

    def set_status(self, flag: Status, on: bool) -> None:
        """Set or clear ``flag`` (``ap_proxy_set_wstatus``)."""
        if on:
            self.status |= flag
        else:
            self.status &= ~flag

    @property
    def letters(self) -> str:
        """The flags as balancer-manager shows them (in :data:`STATUS_LETTERS` order)."""
        return "".join(letter for letter, flag in STATUS_LETTERS.items() if self.status & flag)

    @property
    def usable(self) -> bool:
        """``PROXY_WORKER_IS_USABLE``: none of ``U D S E C`` set. Time plays no part here;
        an error that has outlived ``retry`` is cleared only by :meth:`retry_member`."""
        return not _and(self.status, _NOT_USABLE_BITS)

    @property
    def draining(self) -> bool:
        return self.has(Status.DRAIN)

    @property
    def standby(self) -> bool:
        return self.has(Status.HOT_STANDBY)

    @property
    def spare(self) -> bool:
        return self.has(Status.HOT_SPARE)

    @property
    def in_error(self) -> bool:
        return self.has(Status.IN_ERROR)

    # -- errors ------------------------------------------------------------------------------

    def retry_member(self, now: float) -> bool:
        """``ap_proxy_retry_worker``: clear ``E`` if ``retry`` has elapsed or with ``+I``.

        True (httpd's OK) when the member is not in error afterwards. A stopped member in
        error is never retried. Elapsed means strictly later than ``error_time + retry``.
        """
        if not self.has(Status.IN_ERROR):
            return True
        if self.has(Status.STOPPED):
            return False
        if self.has(Status.IGNORE_ERRORS) or now > self.error_time + self.retry:
            self.retries += 1
            self.status &= ~Status.IN_ERROR
            return True
        return False

    def put_in_error(self, now: float) -> bool:
        """Set ``E`` as of ``now``; a member with ``+I`` is never put in error (False)."""
        if self.has(Status.IGNORE_ERRORS):
            return False
        self.status |= Status.IN_ERROR
        self.error_time = now
        self.errors += 1
        return True

    # -- requests ----------------------------------------------------------------------------

    def request_started(self) -> None:
        """A request is charged to this member (``busy`` counts it until :meth:`request_done`)."""
        self.busy += 1

    def request_refused(self) -> None:
        """A request charged to this member could not be sent to it at all (it cannot be
        expressed in the member's protocol): neither ``busy`` nor ``elected`` counts it."""
        if self.busy:
            self.busy -= 1
        if self.elected:
            self.elected -= 1

    def request_done(self) -> None:
        """A request charged to this member ended (httpd's ``decrement_busy_count``)."""
        if self.busy:
            self.busy -= 1

    def add_traffic(self, sent: int = 0, received: int = 0) -> None:
        """Count bytes sent to (``transferred``) and received from (``read``) the member."""
        self.transferred += sent
        self.read += received
