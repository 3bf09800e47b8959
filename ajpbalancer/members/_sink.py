"""The interface between a member connection (HTTP or AJP) and what it serves: an exchange,
or a health check's probe."""

from __future__ import annotations

from typing import Protocol

from ajpbalancer.ajp import ForwardRequest
from ajpbalancer.h1 import BodyMode, Headers
from ajpbalancer.members._errors import MemberError

MemberRequest = bytes | ForwardRequest
"""What a member connection sends for a request: an HTTP/1.1 head (``bytes``) to an HTTP
member, a FORWARD_REQUEST to an AJP member (see :mod:`ajpbalancer.members._request`)."""


class ResponseSink(Protocol):
    """Receives one response from a member connection.

    Calls come in this order: ``member_response`` once, ``member_body`` any number of
    times, then exactly one of ``member_done`` or ``member_failed`` (which may also come
    first, when nothing was received).
    """

    def member_response(
        self, status: int, reason: bytes, headers: Headers, length: int | None
    ) -> None: ...

    def member_body(self, data: bytes) -> None: ...

    def member_done(self) -> None: ...

    def member_failed(self, error: MemberError) -> None: ...

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
