"""The seam between a client connection and the request path.

A frontend (today the HTTP/1.1 one, an HTTP/2 stream later) turns what a client sends
into a request and an :class:`Exchange` per request, which it drives as the body
arrives; the exchange answers through the :class:`Channel` the frontend gives it. Both
sides see only these interfaces: the exchange knows nothing of HTTP/1.1 framing,
keep-alive or sockets, the frontend nothing of members.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Protocol

from ajpbalancer._transport import PushProducer
from ajpbalancer.connection import ClientInfo
from ajpbalancer.h1 import Request, RequestHead
from ajpbalancer.tunnel import TunnelEnd


class PauseReason(Enum):
    """Why reading from a client is paused. Reasons are independent: reading resumes
    only when every reason given to ``pause_reading`` was resumed."""

    __hash__ = object.__hash__

    MEMBER = "member"
    """No member connection is ready for the body yet (or the balancer waits for one)."""
    BACKPRESSURE = "backpressure"
    """The member takes the body slower than the client sends it."""
    PIPELINE = "pipeline"
    """The connection's own: the next request waits for the current response to end, and
    as much of it as may be held is held."""


class Channel(Protocol):
    """What an exchange uses of the client side for one request.

    Calls on the response side come in this order: ``start_response`` once, then
    ``write_body`` any number of times and ``finish_response``; or ``send_error`` before
    a response began; or ``switch_protocols`` to a request that asked for it, once its
    body ended; or ``abort`` at any time. Writes made while one input event is
    handled leave as one send (see :class:`ajpbalancer._transport.Outbox`).
    """

    is_ssl: bool

    def client_info(self) -> ClientInfo:
        """The client connection's addresses and TLS parameters."""
        ...

    def send_continue(self) -> None:
        """Tell a client that waits for it to send its body (``100 Continue``), if it
        does and nothing was answered yet; otherwise nothing."""
        ...

    def start_response(
        self, status: int, reason: bytes, headers: Sequence[tuple[bytes, bytes]], length: int | None
    ) -> None:
        """The response head; ``length`` None: the body's length is not known."""
        ...

    def write_body(self, data: bytes) -> None: ...

    def finish_response(self) -> None:
        """The response is complete."""
        ...

    def send_error(
        self, status: int, message: str, *, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer with a short error page (or cut the connection if a response began)."""
        ...

    def abort(self) -> None:
        """The response cannot be completed: the client must not take it for whole."""
        ...

    def switch_protocols(
        self, reason: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> TunnelEnd | None:
        """Answer ``101 Switching Protocols`` with ``headers``: the connection leaves
        HTTP and is returned as a tunnel end (None when the client is gone)."""
        ...

    def pause_reading(self, reason: PauseReason) -> None: ...

    def resume_reading(self, reason: PauseReason) -> None: ...

    def register_producer(self, producer: PushProducer) -> None:
        """``producer`` is paused while the client does not take the response fast enough."""
        ...

    def unregister_producer(self) -> None: ...


class Exchange(Protocol):
    """What the client side drives for one request."""

    def body_data(self, data: bytes) -> None:
        """A piece of the request body."""
        ...

    def body_end(self) -> None:
        """The request body ended (not called for a request without one)."""
        ...

    def client_gone(self) -> None:
        """The client went away or broke the protocol before the response ended."""
        ...


class ExchangeFactory(Protocol):
    def __call__(self, channel: Channel, request: Request) -> Exchange: ...


class Answered(Protocol):
    """Told of every answer the client side gives by itself, with no exchange: a request
    refused for what the client sent (``head`` None when no head could be parsed), a
    head that did not arrive in time, ``OPTIONS *``. ``size``: the body bytes sent."""

    def __call__(
        self, client: ClientInfo, head: RequestHead | None, status: int, size: int
    ) -> None: ...
