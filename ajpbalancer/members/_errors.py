"""What can go wrong with a member, and what the client gets for it.

A :class:`MemberError` says whether anything of the request reached the member and
whether the response had begun: the basis of every retry and failover decision.
"""

from __future__ import annotations

from enum import Enum

from ajpbalancer.errors import AJPBalancerError


class FailureKind(Enum):
    """Kinds of member failure, each with the status a client gets before a response began.

    Values are distinct on purpose (an Enum merges members of equal value); the status is
    :attr:`status`.
    """

    REFUSED = "refused"  # could not connect: refused, unreachable, no free connection
    CONNECT_TIMEOUT = "connect timeout"  # connectiontimeout elapsed
    TIMEOUT = "timeout"  # no answer within timeout
    BROKEN = "broken"  # closed or reset before the response was complete
    PROTOCOL = "protocol"  # the member's answer was malformed
    REJECTED = "rejected"  # the request cannot be expressed to this member (AJP overflow)

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS = {
    FailureKind.REFUSED: 503,
    FailureKind.CONNECT_TIMEOUT: 504,
    FailureKind.TIMEOUT: 504,
    FailureKind.BROKEN: 502,
    FailureKind.PROTOCOL: 502,
    FailureKind.REJECTED: 400,
}


class MemberError(AJPBalancerError):
    """A member failed; ``request_sent``/``response_started`` say how far the exchange got."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        request_sent: bool = False,
        response_started: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.request_sent = request_sent
        self.response_started = response_started
        self.status = kind.status if status is None else status
