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


class LocalProtocolError(AJPBalancerError):
    """We tried to send something HTTP/1.1 does not allow now (a bug of ours, never the
    client's): the connection is in error and must be closed."""
