"""Connections to members: the lean HTTP/1.1 client protocol, the pool, and their errors."""

from __future__ import annotations

from ajpbalancer.members._ajp import AJPMemberConnection
from ajpbalancer.members._errors import FailureKind, MemberError
from ajpbalancer.members._http import (
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    HTTPMemberConnection,
)
from ajpbalancer.members._pool import Pool
from ajpbalancer.members._sink import MemberConnection, ResponseSink

__all__ = [
    "BODY_CHUNKED",
    "BODY_LENGTH",
    "BODY_NONE",
    "AJPMemberConnection",
    "FailureKind",
    "HTTPMemberConnection",
    "MemberConnection",
    "MemberError",
    "Pool",
    "ResponseSink",
]
