"""The request path: exchanges between clients and members, balancers, the access log.

A :class:`FrontendContext` holds what a frontend's exchanges share (routing, balancers,
direct members, logging); a :class:`ProxyExchange` carries one request from the client
to a member chosen by its :class:`BalancerRuntime` and the answer back, or, after a
``101 Switching Protocols``, joins the two connections in a :class:`Tunnel`.
"""

from __future__ import annotations

from ajpbalancer.proxy._accesslog import AccessLog
from ajpbalancer.proxy._balancers import BalancerRuntime
from ajpbalancer.proxy._exchange import FrontendContext, ProxyExchange
from ajpbalancer.proxy._observer import ExchangeObserver, TunnelMeter
from ajpbalancer.proxy._tunnel import Tunnel

__all__ = [
    "AccessLog",
    "BalancerRuntime",
    "ExchangeObserver",
    "FrontendContext",
    "ProxyExchange",
    "Tunnel",
    "TunnelMeter",
]
