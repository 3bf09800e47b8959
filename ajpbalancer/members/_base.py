"""What HTTP and AJP member connections share: pool bookkeeping, pausing, closing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime

from ajpbalancer._transport import Outbox, no_delay, stream
from ajpbalancer.members._timer import IdleTimer
from ajpbalancer.tunnel import Switchable

if TYPE_CHECKING:
    from ajpbalancer.members._sink import MemberConnection, ResponseSink


class MemberProtocol(Switchable):
    """A pooled connection to a member; subclasses speak the protocol. An HTTP member's
    may switch protocols (a WebSocket, say); an AJP member's never does."""

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: float,
        release: Callable[[MemberConnection, bool], None],
        lost: Callable[[MemberConnection], None],
        outbox: Outbox,
    ) -> None:
        super().__init__()
        self._reactor = reactor
        self._release = release
        self._lost = lost
        self.sink: ResponseSink | None = None
        self.closed = False
        self.connected_at = 0.0
        self.idle_since = 0.0
        self.requests = 0
        self._paused = False
        self._hung_up = False
        self._timer = IdleTimer(reactor, timeout, self._timed_out)
        self._outbox = outbox

    def connectionMade(self) -> None:
        self.connected_at = self.idle_since = self._reactor.seconds()
        no_delay(self.transport)

    def dataReceived(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            self._unsolicited(data)
            return
        # What this read makes the exchange write (to the client, and to this or another
        # member) leaves as one send per connection (see Outbox).
        outbox = self._outbox
        outbox.hold()
        try:
            self._data_received(data)
        finally:
            outbox.release()

    def _unsolicited(self, data: bytes) -> None:
        """Bytes from a member with no request outstanding: it is out of step (unless
        the connection is closing after hang_up, whose caller wants no more)."""
        if not self._hung_up:
            self._discard()

    def _data_received(self, data: bytes) -> None:
        """Bytes from the member while a request is outstanding (the outbox is held)."""
        raise AssertionError(f"{type(self).__name__} defines _data_received")

    def _timed_out(self) -> None:
        """The member was silent for ``timeout``: fail the request as the protocol says."""
        raise AssertionError(f"{type(self).__name__} defines _timed_out")

    def pause_response(self) -> None:
        """The client reads slowly: stop reading from the member."""
        if not self._paused and self.transport is not None:
            self._paused = self._timer.paused = True
            stream(self.transport).pauseProducing()

    def resume_response(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = self._timer.paused = False
            self._timer.touch()
            stream(self.transport).resumeProducing()

    def abort(self) -> None:
        """The client went away: drop the member connection and say nothing more."""
        self.sink = None
        self._timer.stop()
        self._stop_extras()
        self._discard()

    def close(self) -> None:
        """Close an idle connection (pool shutdown, ttl expiry)."""
        if self.transport is not None and not self.closed:
            self._outbox.flush(self.transport)
            self.transport.loseConnection()

    def hang_up(self) -> None:
        """Say nothing more to the sink and close gently, ignoring what still arrives: the
        caller has heard enough (a health probe that passed before the answer ended)."""
        self.sink = None
        self._hung_up = True
        self._timer.stop()
        self._stop_extras()
        self.close()

    @property
    def local_host(self) -> bytes:
        """This end's address (the host part, ASCII), or ``b""`` when it has none."""
        host = getattr(self.transport.getHost(), "host", None) if self.transport else None
        return host.encode("ascii") if isinstance(host, str) else b""

    def _write(self, data: bytes) -> None:
        """Send at once, or with the rest of what this input event writes (see Outbox)."""
        assert self.transport is not None
        self._outbox.write(self.transport, data)

    def _stop_extras(self) -> None:
        """Stop what a subclass runs besides the idle timer (a producer, a CPING timer)."""

    def _discard(self) -> None:
        if self.transport is not None:
            self._outbox.drop(self.transport)  # an abort drops what Twisted had buffered, too
            if not self.closed:
                stream(self.transport).abortConnection()
