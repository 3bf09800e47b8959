"""The interface between a member connection (HTTP or AJP) and the exchange it serves."""

from __future__ import annotations

from typing import Protocol

from ajpbalancer.h1 import Headers
from ajpbalancer.members._errors import MemberError


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
