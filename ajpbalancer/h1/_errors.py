"""Errors of the HTTP/1.1 codec: who broke the protocol, and what the client gets for it."""

from __future__ import annotations

from ajpbalancer.errors import AJPBalancerError


class HTTPProtocolError(AJPBalancerError):
    """A message broke HTTP/1.1 framing or syntax.

    ``status`` is the answer the client gets: a 4xx when the client sent it, 502 when a
    member did. After any protocol error the connection is never reused.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
