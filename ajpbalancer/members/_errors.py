"""What can go wrong with a member, and what the client gets for it.

A :class:`MemberError` says whether anything of the request reached the member and
whether the response had begun: the basis of every retry and failover decision.
"""

from __future__ import annotations

from enum import Enum

from ajpbalancer.errors import AJPBalancerError


class Failure(Enum):
    """Kinds of member failure, each with the status a client gets before a response began."""

    REFUSED = 503  # could not connect: refused, unreachable, no free connection
    CONNECT_TIMEOUT = 504  # connectiontimeout elapsed
    TIMEOUT = 504  # no answer within timeout
    BROKEN = 502  # closed or reset before the response was complete
    PROTOCOL = 502  # the member's answer was malformed
    REJECTED = 400  # the request cannot be expressed to this member (AJP header overflow)


class MemberError(AJPBalancerError):
    """A member failed; ``request_sent``/``response_started`` say how far the exchange got."""

    def __init__(
        self,
        kind: Failure,
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
        self.status = kind.value if status is None else status
