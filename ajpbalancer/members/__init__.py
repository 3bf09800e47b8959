"""Members at run time: connections (HTTP/1.1, AJP13), pools, requests, health checks.

A :class:`MemberRuntime` is one member's endpoint, pool and balancing state; its
connections speak HTTP/1.1 or AJP13 to the member, one request at a time, to a
:class:`ResponseSink`; :class:`OutgoingRequest` is what the proxy hands a member to send;
a :class:`HealthChecker` probes a member over connections of the same classes.
"""

from __future__ import annotations

from ajpbalancer.members._ajp import AJPMemberConnection
from ajpbalancer.members._errors import FailureKind, MemberError
from ajpbalancer.members._health import HealthChecker
from ajpbalancer.members._http import HTTPMemberConnection
from ajpbalancer.members._pool import Pool
from ajpbalancer.members._request import OutgoingRequest, UpgradeRequest
from ajpbalancer.members._runtime import MemberRuntime
from ajpbalancer.members._sink import MemberConnection, MemberRequest, ResponseSink
from ajpbalancer.members._timer import IdleTimer

__all__ = [
    "AJPMemberConnection",
    "FailureKind",
    "HTTPMemberConnection",
    "HealthChecker",
    "IdleTimer",
    "MemberConnection",
    "MemberError",
    "MemberRequest",
    "MemberRuntime",
    "OutgoingRequest",
    "Pool",
    "ResponseSink",
    "UpgradeRequest",
]
