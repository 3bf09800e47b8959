"""The seam of a byte tunnel: what each of its two ends offers and reports.

After a ``101 Switching Protocols`` the client connection and the member connection stop
speaking HTTP and carry bytes both ways for the new protocol (a WebSocket, say). Each of
them is then a :class:`TunnelEnd`: the frontend's connection once it sent the ``101``,
an HTTP member connection once it received one. The request path's tunnel joins two
ends and is, for each, the :class:`TunnelPeer` it reports to; neither end knows what is
at the other.

:class:`SwitchedConnection` is the one implementation of an end, over a Twisted stream
transport, which both sides use: the Twisted protocol that owns the connection hands it
what arrives (:meth:`~SwitchedConnection.received`, the end of input, the loss of the
connection) and it passes that on to its peer once one is attached, holding what came
before. Writes go through the shared :class:`~ajpbalancer._transport.Outbox`. Half-close
(a FIN passed through while the other way still flows) needs a transport that can shut
down its writing side alone, and a protocol that hears the peer's FIN without losing the
connection (``IHalfCloseableProtocol``): plain TCP can, TLS cannot.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, ITransport
from twisted.python.components import registerAdapter
from twisted.python.failure import Failure
from zope.interface import alsoProvides

from ajpbalancer._transport import ConnectionProtocol, Outbox, stream

EARLY_LIMIT = 64 * 1024
"""Bytes an end holds before a peer is attached; past this it stops reading."""


class TunnelPeer(Protocol):
    """What one end reports: bytes, the end of its input, the end of its connection."""

    def received(self, data: bytes) -> None:
        """Bytes arrived on this end's connection."""
        ...

    def read_closed(self) -> None:
        """The other side of this end's connection half-closed it (a FIN): nothing more
        comes from it, and this end may still be written to."""
        ...

    def lost(self, clean: bool) -> None:
        """This end's connection is gone, closed cleanly or not (a reset, a failure);
        nothing more comes from it or goes to it."""
        ...


class TunnelEnd(Protocol):
    """A connection whose protocol switched, as the tunnel uses it."""

    def attach(self, peer: TunnelPeer) -> None:
        """Report to ``peer`` from now on; what arrived since the switch is handed to it
        first (bytes, then the end of input or the loss, if they came)."""
        ...

    def write(self, data: bytes) -> None: ...

    def pause_reading(self) -> None:
        """Stop reading from this end (the other end cannot take more)."""
        ...

    def resume_reading(self) -> None: ...

    def register_producer(self, producer: IPushProducer) -> None:
        """``producer`` is paused while this end's connection does not take what is
        written to it fast enough, and resumed once it does."""
        ...

    def close_write(self) -> bool:
        """Half-close: nothing more will be written (a FIN after what is buffered).
        False when the connection cannot half-close (TLS); the caller then closes it."""
        ...

    def close(self) -> None:
        """Close after what is buffered was sent."""
        ...

    def abort(self) -> None:
        """Close at once, dropping what is buffered (a reset)."""
        ...


def can_half_close(transport: ITransport | None) -> bool:
    """Whether ``transport`` can shut down its writing side alone (plain TCP, UNIX)."""
    return callable(getattr(transport, "loseWriteConnection", None))


def _hear_half_close(protocol: object, transport: ITransport) -> None:
    """From now on the wrapper ``transport`` reports to, when there is one (a client
    endpoint's, which copied the interfaces of ``protocol`` when it connected), hears its
    peer's FIN as ``readConnectionLost`` and passes it on to ``protocol``."""
    outer = getattr(transport, "protocol", None)
    if (
        outer is not None
        and outer is not protocol
        and callable(getattr(outer, "readConnectionLost", None))
    ):
        alsoProvides(outer, IHalfCloseableProtocol)


class SwitchedConnection:
    """A :class:`TunnelEnd` over a Twisted stream transport (see the module docstring).

    ``early``: what arrived after the ``101`` before the switch was made (the client's
    bytes sent right after its request, or the member's right after its answer);
    ``half_close``: the transport can half-close and the owning protocol hears a FIN as
    :meth:`read_lost` (it provides ``IHalfCloseableProtocol``).
    """

    __slots__ = (
        "_early",
        "_early_size",
        "_gone",
        "_held",
        "_outbox",
        "_paused",
        "_peer",
        "_producer",
        "_read_closed",
        "_reading_paused",
        "_transport",
        "_write_closed",
        "half_close",
    )

    def __init__(
        self, transport: ITransport, outbox: Outbox, early: bytes = b"", *, half_close: bool
    ) -> None:
        self._transport = transport
        self._outbox = outbox
        self._early: list[bytes] = [early] if early else []
        self._early_size = len(early)
        self._peer: TunnelPeer | None = None
        self._producer: IPushProducer | None = None
        self._paused = False  # the tunnel's pause: the other end takes no more
        self._held = False  # holding EARLY_LIMIT bytes before a peer is attached
        self._reading_paused = False  # what the transport was last told
        self._read_closed = False
        self._write_closed = False
        self._gone: bool | None = None  # None while connected; then whether cleanly
        self.half_close = half_close

    # -- from the protocol that owns the connection --------------------------------------

    def received(self, data: bytes) -> None:
        peer = self._peer
        if peer is not None:
            peer.received(data)
            return
        self._early.append(data)
        self._early_size += len(data)
        if self._early_size > EARLY_LIMIT:
            self._held = True
            self._update_reading()

    def read_lost(self) -> None:
        """The other side sent a FIN (the protocol heard it as ``readConnectionLost``)."""
        self._read_closed = True
        if self._peer is not None:
            self._peer.read_closed()

    def connection_lost(self, clean: bool) -> None:
        """The connection is gone (the protocol's ``connectionLost``)."""
        if self._gone is not None:
            return
        self._gone = clean
        self._outbox.drop(self._transport)
        self._producer = None
        if self._peer is not None:
            self._peer.lost(clean)

    # -- TunnelEnd -------------------------------------------------------------------------

    def attach(self, peer: TunnelPeer) -> None:
        self._peer = peer
        early, self._early = self._early, []
        self._early_size = 0
        for data in early:
            peer.received(data)
        if self._held:
            self._held = False
            self._update_reading()
        if self._read_closed:
            peer.read_closed()
        if self._gone is not None:
            peer.lost(self._gone)

    def write(self, data: bytes) -> None:
        if self._gone is None and not self._write_closed:
            self._outbox.write(self._transport, data)

    def pause_reading(self) -> None:
        self._paused = True
        self._update_reading()

    def resume_reading(self) -> None:
        self._paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        """Tell the transport to pause or resume, as the reasons to pause say."""
        pause = self._paused or self._held
        if pause is self._reading_paused:
            return
        self._reading_paused = pause
        # Reading again after the FIN would read the end of input again.
        if self._gone is None and not self._read_closed:
            if pause:
                stream(self._transport).pauseProducing()
            else:
                stream(self._transport).resumeProducing()

    def register_producer(self, producer: IPushProducer) -> None:
        if self._gone is None and self._producer is None:
            self._producer = producer
            stream(self._transport).registerProducer(producer, True)

    def close_write(self) -> bool:
        if not self.half_close:
            return False
        if self._gone is None and not self._write_closed:
            self._write_closed = True
            # A paused producer would keep Twisted from ever sending the FIN.
            self._unregister()
            self._outbox.flush(self._transport)
            stream(self._transport).loseWriteConnection()
        return True

    def close(self) -> None:
        if self._gone is None:
            self._unregister()
            self._outbox.flush(self._transport)
            self._transport.loseConnection()

    def abort(self) -> None:
        if self._gone is None:
            self._unregister()
            self._outbox.drop(self._transport)
            stream(self._transport).abortConnection()

    def _unregister(self) -> None:
        if self._producer is not None:
            self._producer = None
            stream(self._transport).unregisterProducer()


class Switchable(ConnectionProtocol):
    """A connection's protocol that may switch protocols: it becomes a tunnel end
    (:meth:`become_tunnel_end`), to which it then hands what arrives (:attr:`switched`,
    :meth:`tunnel_lost`), and hears its peer's FIN as ``readConnectionLost`` where the
    transport can half-close.

    Twisted asks ``IHalfCloseableProtocol(protocol, None)`` when a FIN arrives; until the
    switch the answer must be None (an HTTP connection ends at the FIN), after it the
    protocol itself. The adapter registered below answers so, for both builds: a compiled
    class's instances cannot be given interfaces one by one (``alsoProvides``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.switched: SwitchedConnection | None = None

    def become_tunnel_end(
        self, transport: ITransport, outbox: Outbox, early: bytes
    ) -> SwitchedConnection:
        """This connection is now a tunnel end; ``early``: what arrived since the switch."""
        half_close = can_half_close(transport)
        if half_close:
            _hear_half_close(self, transport)
        self.switched = SwitchedConnection(transport, outbox, early, half_close=half_close)
        return self.switched

    def tunnel_lost(self, reason: Failure | None) -> bool:
        """Report the connection's loss to the tunnel end; False when there is none."""
        if self.switched is None:
            return False
        self.switched.connection_lost(reason is None or reason.check(ConnectionDone) is not None)
        return True

    def readConnectionLost(self) -> None:
        """The peer half-closed the switched connection (IHalfCloseableProtocol)."""
        if self.switched is not None:
            self.switched.read_lost()

    def writeConnectionLost(self) -> None:
        return None


def _half_closeable(protocol: Switchable) -> Switchable | None:
    """``protocol`` as an ``IHalfCloseableProtocol``: itself once it is a tunnel end over
    a transport that can half-close, otherwise None (no adaptation)."""
    switched = protocol.switched
    return protocol if switched is not None and switched.half_close else None


registerAdapter(_half_closeable, Switchable, IHalfCloseableProtocol)
