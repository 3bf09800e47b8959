"""The interface between a member connection (HTTP or AJP) and what it serves: an exchange,
or a health check's probe."""

from __future__ import annotations

from typing import Protocol

from ajpbalancer.ajp import ForwardRequest
from ajpbalancer.h1 import BodyMode, Headers
from ajpbalancer.members._errors import MemberError
from ajpbalancer.members._request import UpgradeRequest
from ajpbalancer.tunnel import TunnelEnd

MemberRequest = bytes | ForwardRequest | UpgradeRequest
"""What a member connection sends for a request: an HTTP/1.1 head (``bytes``) to an HTTP
member, a FORWARD_REQUEST to an AJP member, an HTTP/1.1 head that asks to switch
protocols to an HTTP member or an AJP member's ``upgradeurl`` (see
:mod:`ajpbalancer.members._request`)."""


class ResponseSink(Protocol):
    """Receives one response from a member connection.

    Calls come in this order: ``member_response`` once, ``member_body`` any number of
    times, then exactly one of ``member_done`` or ``member_failed`` (which may also come
    first, when nothing was received). To a request that asked to switch protocols the
    member may answer ``101`` instead: then ``member_switched`` is the one call.
    """

    def member_response(
        self, status: int, reason: bytes, headers: Headers, length: int | None
    ) -> None: ...

    def member_body(self, data: bytes) -> None: ...

    def member_done(self) -> None: ...

    def member_failed(self, error: MemberError) -> None: ...

    def member_switched(self, reason: bytes, headers: Headers, end: TunnelEnd) -> None:
        """The member answered ``101 Switching Protocols`` with ``headers`` (its
        ``Upgrade`` checked against the request's): the connection is now ``end``."""
        ...

    def pause_request_body(self) -> None:
        """The member reads the request body slower than the client sends it."""
        ...

    def resume_request_body(self) -> None: ...


class MemberConnection(Protocol):
    """What the exchange uses of a member connection, HTTP or AJP alike."""

    closed: bool
    idle_since: float

    def send_request(
        self, sink: ResponseSink, method: bytes, request: MemberRequest, body: BodyMode
    ) -> None:
        """Send one request; ``request`` is what the member runtime prepared for this
        connection's protocol (see :data:`MemberRequest`); ``body``: how its body follows."""
        ...

    def write_body(self, data: bytes) -> None: ...

    def end_body(self) -> None: ...

    @property
    def body_sent(self) -> bool: ...

    def pause_response(self) -> None: ...

    def resume_response(self) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...
