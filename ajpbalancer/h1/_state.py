"""The HTTP/1.1 server connection's two state machines, as data.

As in h11, each side of the connection has its own state: what the client sends
(:class:`RecvState`) and what the server sends (:class:`SendState`). The tables give
every legal (state, event) -> new state; a pair missing from them is a protocol error
(the client's when received, ours when sent). Two moves are not caused by an event and
are listed apart: the end of a response starts the next cycle (:data:`NEXT_CYCLE`), and
a ``101`` switches both sides.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from ajpbalancer.h1._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)


class RecvState(Enum):
    """Where the client's side of the connection is."""

    __hash__ = object.__hash__

    IDLE = "idle"
    """Between requests: nothing of the next request has arrived."""
    HEAD = "head"
    """Part of a request head has arrived."""
    BODY = "body"
    """The head arrived; its body is arriving."""
    DONE = "done"
    """The request is complete. What arrives now (a pipelined request) is held, a bounded
    amount, until the response ends."""
    DISCARD = "discard"
    """The response ended before the request body: the rest of the body is read and
    dropped, then the next request may come."""
    SWITCHED = "switched"
    """A ``101`` was sent: the bytes belong to another protocol."""
    CLOSED = "closed"
    """The client closed the connection between requests."""
    ERROR = "error"
    """The client broke the protocol: the connection must close."""


class SendState(Enum):
    """Where the server's side of the connection is."""

    __hash__ = object.__hash__

    IDLE = "idle"
    """No request to answer."""
    WAIT = "wait"
    """A request is to be answered; no final response head was sent."""
    BODY = "body"
    """The response head was sent; its body goes on."""
    MUST_CLOSE = "must close"
    """The response ended and the connection must close (no keep-alive)."""
    SWITCHED = "switched"
    """A ``101`` was sent: the connection now carries another protocol."""
    ERROR = "error"
    """We broke the protocol (a bug): the connection must close."""


RECV_TRANSITIONS: Final[dict[tuple[RecvState, type], RecvState]] = {
    (RecvState.IDLE, Request): RecvState.BODY,
    (RecvState.HEAD, Request): RecvState.BODY,
    (RecvState.BODY, Data): RecvState.BODY,
    (RecvState.BODY, EndOfMessage): RecvState.DONE,
    (RecvState.DISCARD, EndOfMessage): RecvState.IDLE,  # the dropped body ended
    (RecvState.IDLE, ConnectionClosed): RecvState.CLOSED,
    (RecvState.HEAD, ConnectionClosed): RecvState.CLOSED,
    (RecvState.DONE, ConnectionClosed): RecvState.CLOSED,
}
"""What the client may send in each state. A request always goes through BODY (a request
without a body is its head followed at once by its end)."""

SEND_TRANSITIONS: Final[dict[tuple[SendState, type], SendState]] = {
    (SendState.WAIT, InformationalResponse): SendState.WAIT,
    (SendState.WAIT, Response): SendState.BODY,
    (SendState.BODY, Data): SendState.BODY,
    (SendState.BODY, EndOfMessage): SendState.IDLE,
}
"""What the server may send in each state. ``EndOfMessage`` leads to IDLE for a kept-alive
connection and to MUST_CLOSE otherwise; a ``101`` (an :class:`InformationalResponse`
the request asked for) to SWITCHED."""

ANSWER_WITHOUT_REQUEST: Final[frozenset[RecvState]] = frozenset(
    {RecvState.IDLE, RecvState.HEAD, RecvState.ERROR}
)
"""With our side IDLE, a :class:`Response` may still be sent while the client's side is in
one of these states: the answer to a request that could not be parsed or did not arrive
in time. It is framed as to an HTTP/1.1 client and the connection then closes."""

NEXT_CYCLE: Final[dict[RecvState, RecvState]] = {
    RecvState.DONE: RecvState.IDLE,
    RecvState.BODY: RecvState.DISCARD,
}
"""Where the client's side goes when a kept-alive response ends: the request was complete
(the next one may be parsed), or its body is still coming (it is dropped first)."""
