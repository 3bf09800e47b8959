"""The AJP13 connection state machine, as data: every legal (state, event) -> new state.

Rule 1 (from h11): everything that decides whether an event is allowed lives in this
file's table or in the few guards the connection classes document next to it; nothing
else moves the state. Rule 2: the table does not know which side it serves. An event
moves both ends the same way; what differs is only which events a side may *send*
(`WEB_SERVER_SENDS`, `CONTAINER_SENDS`), the rest it receives. Any pair missing from
`TRANSITIONS` is a protocol error and leaves the connection in `State.ERROR` for good.

States name what is on the wire, as the web server sees it, so the same names serve the
container side (`REQUEST_SENT` there means "a request has arrived, no SEND_HEADERS yet").
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from ajpbalancer.ajp._events import (
    ConnectionClosed,
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
)


class State(Enum):
    """Where a connection is in its request/response cycle."""

    # Members compare by identity, so an identity hash is consistent with equality, and
    # it is C-level: `Enum.__hash__` is Python code, and every packet looks up
    # `TRANSITIONS` by (state, event type).
    __hash__ = object.__hash__

    IDLE = "idle"
    """No exchange in progress: a FORWARD_REQUEST or a CPING may go."""
    CPING_SENT = "cping sent"
    """A CPING is on the wire; only its CPONG may come back."""
    REQUEST_SENT = "request sent"
    """A FORWARD_REQUEST is on the wire, its SEND_HEADERS is not; body packets may flow."""
    RESPONSE = "response"
    """SEND_HEADERS came: body chunks, GET_BODY_CHUNK and request body packets may flow."""
    DONE = "done"
    """END_RESPONSE came; ``start_next_cycle()`` goes back to IDLE if it said reuse."""
    ERROR = "error"
    """A protocol error happened: the connection must be closed, never reused."""
    CLOSED = "closed"
    """The peer closed the connection cleanly (between exchanges)."""


TRANSITIONS: Final[dict[tuple[State, type[Event]], State]] = {
    (State.IDLE, ForwardRequest): State.REQUEST_SENT,
    (State.IDLE, CPing): State.CPING_SENT,
    (State.IDLE, ConnectionClosed): State.CLOSED,
    (State.CPING_SENT, CPong): State.IDLE,
    # Guards (see the connection classes): a request body packet only when one is owed
    # and within what is owed; GET_BODY_CHUNK only while no packet is owed and before the
    # end-of-body packet; before SEND_HEADERS only an empty SEND_BODY_CHUNK (a flush,
    # ignored as httpd ignores it).
    (State.REQUEST_SENT, RequestBody): State.REQUEST_SENT,
    (State.REQUEST_SENT, GetBodyChunk): State.REQUEST_SENT,
    (State.REQUEST_SENT, SendBodyChunk): State.REQUEST_SENT,
    (State.REQUEST_SENT, SendHeaders): State.RESPONSE,
    # The servlet may answer before it has read the body: body packets still flow.
    (State.RESPONSE, RequestBody): State.RESPONSE,
    (State.RESPONSE, GetBodyChunk): State.RESPONSE,
    (State.RESPONSE, SendBodyChunk): State.RESPONSE,
    (State.RESPONSE, EndResponse): State.DONE,
    (State.DONE, ConnectionClosed): State.CLOSED,
}
"""Every legal (state, event type) pair and the state it leads to."""

NEXT_CYCLE: Final[dict[State, State]] = {State.DONE: State.IDLE}
"""``start_next_cycle()``: from DONE (if END_RESPONSE said reuse) back to IDLE."""

WEB_SERVER_SENDS: Final[frozenset[type[Event]]] = frozenset({ForwardRequest, RequestBody, CPing})
CONTAINER_SENDS: Final[frozenset[type[Event]]] = frozenset(
    {SendHeaders, SendBodyChunk, GetBodyChunk, EndResponse, CPong}
)

NO_BODY_STATUSES: Final = frozenset({204, 205, 304})
"""Statuses whose response has no body (Tomcat's list; with HEAD requests and, since
SEND_HEADERS cannot carry them, 1xx). Body chunks of such a response are dropped."""
