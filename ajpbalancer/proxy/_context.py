"""What a frontend's exchanges share, and the one place that makes an exchange.

A :class:`FrontendContext` holds a frontend's routing, balancers, direct members, logging
and metrics; :meth:`FrontendContext.exchange` makes a :class:`ProxyExchange` for a
request, or an :class:`UpgradeExchange` for one that asks to switch protocols, so that
the path every other request takes carries nothing of upgrades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime

from ajpbalancer._transport import Outbox
from ajpbalancer.channel import Channel
from ajpbalancer.config import Frontend
from ajpbalancer.connection import ClientInfo
from ajpbalancer.h1 import Request, RequestHead
from ajpbalancer.members import MemberRuntime
from ajpbalancer.proxy._accesslog import AccessLog
from ajpbalancer.proxy._balancers import BalancerRuntime
from ajpbalancer.proxy._exchange import ProxyExchange
from ajpbalancer.proxy._observer import ExchangeObserver
from ajpbalancer.proxy._upgrade import UpgradeExchange
from ajpbalancer.rewrite import ReverseMap
from ajpbalancer.routing import Router


@dataclass(slots=True)
class FrontendContext:
    """Everything a frontend's exchanges share: routing, members, logging."""

    reactor: IReactorTime
    frontend: Frontend
    router: Router
    balancers: dict[str, BalancerRuntime]
    direct_members: dict[int, MemberRuntime]
    server_name: bytes
    access_log: AccessLog | None = None
    reverse: ReverseMap | None = None
    in_flight: set[ProxyExchange] = field(default_factory=set)
    observer: ExchangeObserver | None = None
    outbox: Outbox = field(default_factory=Outbox)

    def exchange(self, channel: Channel, request: Request) -> ProxyExchange:
        if request.upgrade is None:
            return ProxyExchange(self, channel, request)
        return UpgradeExchange(self, channel, request)

    def answered(
        self, client: ClientInfo, head: RequestHead | None, status: int, size: int
    ) -> None:
        """An answer a client connection gave by itself (see ``channel.Answered``): in the
        access log (no member) and the metrics, as an exchange's would be."""
        if self.access_log is not None:
            self.access_log.log(client.ip, head, status, size, "-")
        if self.observer is not None:
            self.observer.request_done(
                self.frontend.name, None, None, status=status, seconds=0.0, member_seconds=None
            )
