"""RESP2, the Redis protocol, without I/O: the runtime state's store speaks it."""

from __future__ import annotations

from ajpbalancer.resp._codec import (
    NEED_DATA,
    ErrorReply,
    Limits,
    Reply,
    ReplyParser,
    RESPProtocolError,
    encode_command,
)

__all__ = [
    "NEED_DATA",
    "ErrorReply",
    "Limits",
    "RESPProtocolError",
    "Reply",
    "ReplyParser",
    "encode_command",
]
