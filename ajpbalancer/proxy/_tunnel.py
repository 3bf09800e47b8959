"""A tunnel: the bytes of a switched protocol, both ways between a client and a member.

After a member's ``101 Switching Protocols`` went to the client, the exchange joins the
two connections, each a :class:`~ajpbalancer.tunnel.TunnelEnd`, in a :class:`Tunnel`.
Each direction is a :class:`_Flow`: what arrives on one end is written to the other at
once, and the flow is registered as the producer of the end it writes to, so an end
that does not take its bytes fast enough (a client that reads slowly) stops the other
end from being read. A tunnel thus holds at most what the transports buffer (Twisted's
buffer of each connection, one read and the outbox's hold), whatever is sent through it.

Endings pass through as they come: a half-close (FIN) of one end half-closes the other
where its transport can (else both close); an end closed cleanly closes the other after
what was written to it went out, an end reset or failed aborts the other. A tunnel that
moves nothing either way for ``idle_timeout`` seconds is closed (Apache's
``ProxyWebsocketIdleTimeout``); once closing, an end that has not gone after ``linger``
seconds more is aborted. When both ends are gone the ``closed`` callback runs, once.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IPushProducer, IReactorTime
from zope.interface import implementer

from ajpbalancer.members import IdleTimer
from ajpbalancer.proxy._observer import TunnelMeter
from ajpbalancer.tunnel import TunnelEnd


@implementer(IPushProducer)
class _Flow:
    """One direction of a tunnel: the peer ``src`` reports to, the producer of ``dst``."""

    __slots__ = ("_tunnel", "back", "dst", "eof", "gone", "src", "to_member")

    def __init__(self, tunnel: Tunnel, src: TunnelEnd, dst: TunnelEnd, *, to_member: bool):
        self._tunnel = tunnel
        self.src = src
        self.dst = dst
        self.to_member = to_member
        self.back: _Flow = self  # the other direction, set by the tunnel
        self.eof = False  # src half-closed
        self.gone = False  # src's connection is gone

    # -- TunnelPeer of src -------------------------------------------------------------

    def received(self, data: bytes) -> None:
        if self.back.gone:  # dst is gone: nothing to deliver to
            return
        self.dst.write(data)
        self._tunnel.moved(len(data), self.to_member)

    def read_closed(self) -> None:
        self.eof = True
        self._tunnel.half_closed(self)

    def lost(self, clean: bool) -> None:
        if not self.gone:
            self.gone = True
            self._tunnel.end_gone(self, clean)

    # -- IPushProducer of dst ----------------------------------------------------------

    def pauseProducing(self) -> None:
        self.src.pause_reading()

    def resumeProducing(self) -> None:
        self.src.resume_reading()

    def stopProducing(self) -> None:
        return None  # dst's connection is gone: its own ``lost`` says so


class Tunnel:
    """Two ends joined (see the module docstring). ``to_member`` and ``to_client`` count
    the bytes moved each way; ``seconds`` is how long the tunnel was (or has been) open.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        client: TunnelEnd,
        member: TunnelEnd,
        *,
        idle_timeout: float | None,
        linger: float,
        closed: Callable[[Tunnel], None],
        meter: TunnelMeter | None = None,
    ) -> None:
        self._reactor = reactor
        self._closed = closed
        self._meter = meter
        self._linger = linger
        self.started = reactor.seconds()
        self.ended: float | None = None
        self.to_member = 0
        self.to_client = 0
        self.idle_timeout = idle_timeout
        self.timed_out = False
        self.closing = False
        self._timer = IdleTimer(reactor, idle_timeout or linger, self._expired)
        if idle_timeout:
            self._timer.start()
        self.upstream = up = _Flow(self, client, member, to_member=True)
        self.downstream = down = _Flow(self, member, client, to_member=False)
        up.back, down.back = down, up
        member.register_producer(up)  # a member that takes no more pauses the client
        client.register_producer(down)  # and the other way round
        client.attach(up)  # the client's first bytes of the new protocol go out first
        member.attach(down)

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def seconds(self) -> float:
        end = self.ended if self.ended is not None else self._reactor.seconds()
        return end - self.started

    # -- from the flows --------------------------------------------------------------------

    def moved(self, count: int, to_member: bool) -> None:
        if to_member:
            self.to_member += count
        else:
            self.to_client += count
        self._timer.touch()
        meter = self._meter
        if meter is not None:
            if to_member:
                meter.traffic(count, 0)
            else:
                meter.traffic(0, count)

    def half_closed(self, flow: _Flow) -> None:
        """``flow``'s source sent its FIN: pass it on, or close both where it cannot be."""
        if flow.back.gone:
            return
        if not flow.dst.close_write() or flow.back.eof:
            self.close()

    def end_gone(self, flow: _Flow, clean: bool) -> None:
        """``flow``'s source is gone: the other end goes too, as the first one went."""
        other = flow.back
        if other.gone:
            self._finish()
            return
        self._start_closing()
        if clean:
            flow.dst.close()
        else:
            flow.dst.abort()

    # -- endings ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close both ends after what was written to them went out."""
        self._start_closing()
        for flow in (self.upstream, self.downstream):
            if not flow.gone:
                flow.src.close()

    def abort(self) -> None:
        """Close both ends at once."""
        self._start_closing()
        for flow in (self.upstream, self.downstream):
            if not flow.gone:
                flow.src.abort()

    def _start_closing(self) -> None:
        if not self.closing:
            self.closing = True
            self._timer.timeout = self._linger
            self._timer.start()

    def _expired(self) -> None:
        if self.closing:
            self.abort()  # an end that would not go (a client that never reads)
            return
        self.timed_out = True
        self.close()

    def _finish(self) -> None:
        if self.ended is not None:
            return
        self.ended = self._reactor.seconds()
        self._timer.cancel()
        if self._meter is not None:
            self._meter.closed()
        self._closed(self)
