"""The client side: the HTTP/1.1 server protocol that streams requests into exchanges,
its listeners' TLS policy and connection limit."""

from __future__ import annotations

from ajpbalancer.frontend._gate import ConnectionGate
from ajpbalancer.frontend._protocol import FrontendProtocol
from ajpbalancer.frontend._tls import frontend_endpoint

__all__ = [
    "ConnectionGate",
    "FrontendProtocol",
    "frontend_endpoint",
]
