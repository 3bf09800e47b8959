"""Errors of the AJP13 codec: who broke the protocol, and what the client gets for it.

As in h11: `LocalProtocolError` means *we* asked the codec for something illegal (a bug in
the caller, or a request that cannot be expressed in AJP13); `RemoteProtocolError` means
the peer sent something that breaks the protocol. Both carry ``status_hint``, the HTTP
status a client should get because of it. Any error poisons the connection object that
raised it (its state becomes ``ERROR``), so it is never reused.
"""

from __future__ import annotations

from ajpbalancer.errors import AJPBalancerError


class AJPProtocolError(AJPBalancerError):
    """Base of the codec's two errors; never instantiated directly.

    ``status_hint`` is the HTTP status a client should get because of this error.
    """

    def __init__(self, message: str, status_hint: int) -> None:
        if type(self) is AJPProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError, not AJPProtocolError")
        super().__init__(message)
        self.message = message
        self.status_hint = status_hint


class LocalProtocolError(AJPProtocolError):
    """We asked for something illegal: an invalid event, or one not allowed in this state.

    The hint is 500 (our bug) unless said otherwise: a request whose headers and
    attributes do not fit in one packet gets 400, as mod_proxy_ajp answers.
    """

    def __init__(self, message: str, status_hint: int = 500) -> None:
        super().__init__(message, status_hint)


class RemoteProtocolError(AJPProtocolError):
    """The peer broke the protocol; the connection must be discarded.

    The hint is 502 (a member answered something malformed). The container side of the
    codec raises it with 400: there the peer is the web server, i.e. the request.
    """

    def __init__(self, message: str, status_hint: int = 502) -> None:
        super().__init__(message, status_hint)
