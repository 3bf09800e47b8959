"""A sans-I/O AJP13 codec: events in, bytes out, and back; no networking at all.

Modelled on h11 (and hyper-h2): frozen, validated event values; the state machine as a
table of data (``_state.py``); ``send(event) -> bytes`` and ``receive_data(bytes) ->
list[Event]``; errors that say who broke the protocol (`LocalProtocolError`: we did,
`RemoteProtocolError`: the peer did) with the HTTP status a client should get; any error
poisons the connection. `ClientConnection` is the web server's end, written to behave on
the wire exactly as httpd's mod_proxy_ajp; `ServerConnection` is the container's end,
behaving as Tomcat's AJP connector. The Twisted glue lives elsewhere and only moves bytes.
"""

from __future__ import annotations

from ajpbalancer.ajp._connection import ClientConnection, ServerConnection
from ajpbalancer.ajp._constants import (
    DEFAULT_MAX_PACKET_SIZE,
    MAX_MAX_PACKET_SIZE,
    MIN_MAX_PACKET_SIZE,
)
from ajpbalancer.ajp._errors import AJPProtocolError, LocalProtocolError, RemoteProtocolError
from ajpbalancer.ajp._events import (
    ConnectionClosed,
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    Headers,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
)
from ajpbalancer.ajp._state import TRANSITIONS, State

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "MAX_MAX_PACKET_SIZE",
    "MIN_MAX_PACKET_SIZE",
    "TRANSITIONS",
    "AJPProtocolError",
    "CPing",
    "CPong",
    "ClientConnection",
    "ConnectionClosed",
    "EndResponse",
    "Event",
    "ForwardRequest",
    "GetBodyChunk",
    "Headers",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RequestBody",
    "SendBodyChunk",
    "SendHeaders",
    "ServerConnection",
    "State",
]
