"""The proxy: exchanges between clients and members, workers, balancers and the service."""

from __future__ import annotations

from ajpbalancer.proxy._accesslog import AccessLog
from ajpbalancer.proxy._exchange import FrontendContext, ProxyExchange
from ajpbalancer.proxy._service import FrontendFactory, ProxyRuntime, ProxyService
from ajpbalancer.proxy._workers import BalancerRuntime, Worker

__all__ = [
    "AccessLog",
    "BalancerRuntime",
    "FrontendContext",
    "FrontendFactory",
    "ProxyExchange",
    "ProxyRuntime",
    "ProxyService",
    "Worker",
]
