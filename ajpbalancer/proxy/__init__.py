"""The request path: exchanges between clients and members, balancers, the access log.

A :class:`FrontendContext` holds what a frontend's exchanges share (routing, balancers,
direct members, logging); a :class:`ProxyExchange` carries one request from the client
to a member chosen by its :class:`BalancerRuntime` and the answer back; an
:class:`UpgradeExchange` does so for a request that asks to switch protocols and, after a
``101 Switching Protocols``, joins the two connections in a :class:`Tunnel`.
"""

from __future__ import annotations

from ajpbalancer.proxy._accesslog import AccessLog
from ajpbalancer.proxy._balancers import BalancerRuntime
from ajpbalancer.proxy._context import FrontendContext
from ajpbalancer.proxy._exchange import ProxyExchange
from ajpbalancer.proxy._observer import ExchangeObserver, TunnelMeter
from ajpbalancer.proxy._tunnel import Tunnel
from ajpbalancer.proxy._upgrade import UpgradeExchange

__all__ = [
    "AccessLog",
    "BalancerRuntime",
    "ExchangeObserver",
    "FrontendContext",
    "ProxyExchange",
    "Tunnel",
    "TunnelMeter",
    "UpgradeExchange",
]
