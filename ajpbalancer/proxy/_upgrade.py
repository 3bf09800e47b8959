"""A proxied request that asks to switch protocols (a WebSocket handshake), and its tunnel.

An :class:`UpgradeExchange` is a :class:`ProxyExchange` for a request that asks to switch
(HTTP/1.1, ``Connection: Upgrade``; the frontend context makes one for such a request
only, so the path of every other request carries nothing of this). It is routed,
balanced, failed over and answered as any request, except that to a member whose
``upgrade=`` allows one of the protocols offered it goes with its ``Upgrade`` field, as
mod_proxy_http sends it, over the member's :attr:`~MemberRuntime.upgrade_pool` (an
``ajp://`` member's ``upgradeurl``). To any other member it goes as an ordinary request,
without ``Upgrade``.

Any answer but ``101`` is an ordinary response. A ``101`` goes to the client with the
member's fields, rewritten as a response's (``ProxyPassReverse``), plus
``Connection: Upgrade`` and the member's ``Upgrade`` (once the request's body has ended,
if it had one), and the two connections become a :class:`Tunnel`. The exchange lasts
as long as the tunnel: the member stays busy, and the access log line (status 101, the
bytes both ways, how long) is written when it closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ajpbalancer.channel import Channel, PauseReason
from ajpbalancer.errors import AJPBalancerError
from ajpbalancer.h1 import Headers, HTTPProtocolError, Request, header_values
from ajpbalancer.headers import response_fields
from ajpbalancer.members import MemberConnection, MemberRuntime, OutgoingRequest
from ajpbalancer.proxy._exchange import ProxyExchange
from ajpbalancer.proxy._observer import TunnelMeter
from ajpbalancer.proxy._tunnel import Tunnel
from ajpbalancer.tunnel import TunnelEnd

if TYPE_CHECKING:
    from ajpbalancer.proxy._context import FrontendContext


class UpgradeExchange(ProxyExchange):
    """See the module docstring."""

    def __init__(self, ctx: FrontendContext, channel: Channel, request: Request) -> None:
        assert request.upgrade is not None
        self._offer = request.upgrade  # the protocols the request asks to switch to
        self._upgrade: bytes | None = None  # the same, once the chosen member may switch
        self._pending_switch: tuple[bytes, Headers, TunnelEnd] | None = None
        self.tunnel: Tunnel | None = None
        super().__init__(ctx, channel, request)  # which sets out at once

    # -- setting out -------------------------------------------------------------------

    def _go(self, member: MemberRuntime, request: OutgoingRequest) -> None:
        offer = self._offer
        if not member.can_upgrade(offer):  # this member may not: an ordinary request
            self._upgrade = None
            super()._go(member, request)
            return
        self._upgrade = offer
        self._member = member
        self._member_started = self._ctx.reactor.seconds()
        try:
            self._payload = member.prepare_upgrade(
                request, self._ctx.frontend, self._ctx.server_name, offer
            )
        except HTTPProtocolError as e:
            self._refused(e.status, e.message)
            return
        except AJPBalancerError as e:
            self._refused(400, str(e))
            return
        self._acquire(fresh=False)

    def _acquire(self, *, fresh: bool) -> None:
        member = self._member
        assert member is not None
        if not self._body_done:
            self._channel.pause_reading(PauseReason.MEMBER)
        pool = member.pool if self._upgrade is None else member.upgrade_pool
        self._cancel = pool.acquire(self._connected, self._not_connected, fresh=fresh)

    def _release_unused(self, conn: MemberConnection) -> None:
        member = self._member
        assert member is not None
        (member.pool if self._upgrade is None else member.upgrade_pool).release(conn, True)

    # -- the client's side -------------------------------------------------------------

    def body_end(self) -> None:
        super().body_end()
        pending, self._pending_switch = self._pending_switch, None
        if pending is not None:
            self._switch(*pending)

    def client_gone(self) -> None:
        if self._pending_switch is not None:  # the 101 never reached the client
            self._pending_switch = None
            self._status = 0
        super().client_gone()

    # -- the member's 101 --------------------------------------------------------------

    def member_switched(self, reason: bytes, headers: Headers, end: TunnelEnd) -> None:
        """The member answered ``101`` (its ``Upgrade`` checked by the connection): its
        fields go to the client as a response's would, plus ``Connection: Upgrade`` and
        its ``Upgrade``; then the tunnel, at once or once the request's body has ended."""
        if self._upgrade is None:  # not asked of this member (its connection once was)
            super().member_switched(reason, headers, end)
            return
        self._status = 101
        out, _ = response_fields(headers)
        reverse = self._ctx.reverse
        if reverse is not None:
            out = reverse.headers(out, self._base)
        out += (
            (b"Connection", b"Upgrade"),
            (b"Upgrade", b", ".join(header_values(headers, b"upgrade"))),
        )
        if not self._body_done:
            end.pause_reading()
            self._pending_switch = (reason, out, end)
            return
        self._switch(reason, out, end)

    def _switch(self, reason: bytes, fields: Headers, end: TunnelEnd) -> None:
        member = self._member
        assert member is not None
        self._conn = None
        client = self._channel.switch_protocols(reason, fields)
        if client is None:
            end.abort()
            self._status = 0
            self._finish(499)
            return
        end.resume_reading()
        ctx = self._ctx
        idle = ctx.frontend.websocket_idle_timeout
        meter: TunnelMeter | None = None
        if ctx.observer is not None:
            self._observe(ctx.observer, 101)  # the request: answered 101 after this long
            balancer = self._balancer
            meter = ctx.observer.tunnel_opened(
                None if balancer is None else balancer.name, member.name
            )
        self.tunnel = Tunnel(
            ctx.reactor,
            client,
            end,
            idle_timeout=(member.timeout if idle is None else idle) or None,
            linger=member.timeout,
            closed=self._tunnel_closed,
            meter=meter,
        )

    def _tunnel_closed(self, tunnel: Tunnel) -> None:
        """Both ends are gone: the member is no longer busy; the access log line."""
        self._finished = True
        self._ctx.in_flight.discard(self)
        member = self._member
        assert member is not None
        member.lb.request_done()
        access_log = self._ctx.access_log
        if access_log is not None:
            access_log.log(
                self._channel.client_info().ip,
                self._head,
                101,
                tunnel.to_client,
                member.name,
                tunnel=(tunnel.to_member, tunnel.to_client, tunnel.seconds),
            )
