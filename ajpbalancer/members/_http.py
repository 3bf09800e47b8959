"""A lean HTTP/1.1 client protocol for one keep-alive connection to a member.

One request at a time. The request head is written at once, the body streamed as the
client sends it (chunked when the client's was), the response parsed with the strict
codec and streamed to a :class:`ResponseSink`. Flow control runs both ways: the member
transport pauses the client's body when it cannot keep up, and the exchange pauses this
connection when the client reads slowly. The connection goes back to its pool only when
the response ended cleanly, the whole request was sent, and nothing extra arrived;
any error discards it.

A request that asks to switch protocols (an :class:`UpgradeRequest`) may be answered
``101``: its ``Upgrade`` must name protocols the request offered (else 502, as Apache
answers), and the connection then leaves HTTP for good: it is handed to the sink as a
tunnel end (:class:`~ajpbalancer.tunnel.SwitchedConnection`), never to return to its pool.

A health check (:mod:`._health`) sends its probe over a connection of its own with
:meth:`HTTPMemberConnection.send_probe`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ajpbalancer._transport import Outbox, stream
from ajpbalancer.h1 import (
    DEFAULT_LIMITS,
    BodyMode,
    BodyReader,
    CloseDelimitedReader,
    Headers,
    HTTPProtocolError,
    find_head_end,
    header_values,
    parse_response_head,
    response_body_reader,
)
from ajpbalancer.members._base import MemberProtocol
from ajpbalancer.members._errors import FailureKind, MemberError
from ajpbalancer.members._request import UpgradeRequest

if TYPE_CHECKING:
    from ajpbalancer.members._sink import MemberConnection, MemberRequest, ResponseSink

# Enum members are looked up through their class's metaclass at every `Enum.MEMBER`
# (about 100 ns each in CPython 3.11); the hot path compares with these aliases.
_BODY_CHUNKED = BodyMode.CHUNKED
_BODY_NONE = BodyMode.NONE


class _RequestBodyProducer:
    """Registered with the member transport: its backpressure pauses the client's body."""

    def __init__(self, conn: HTTPMemberConnection) -> None:
        self._conn = conn

    def pauseProducing(self) -> None:
        sink = self._conn.sink
        if sink is not None:
            sink.pause_request_body()

    def resumeProducing(self) -> None:
        sink = self._conn.sink
        if sink is not None:
            sink.resume_request_body()

    def stopProducing(self) -> None:
        return None


class HTTPMemberConnection(MemberProtocol):
    """A pooled connection to an HTTP member (see the module docstring)."""

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: float,
        release: Callable[[MemberConnection, bool], None],
        lost: Callable[[MemberConnection], None],
        outbox: Outbox,
    ) -> None:
        super().__init__(reactor, timeout, release, lost, outbox)
        self._method = b""
        self._buf = b""
        self._reader: BodyReader | None = None
        self._head_seen = False
        self._keep_alive = False
        self._chunked = False
        self._request_done = True
        self._body_sent = False
        self._producer_registered = False
        self._probing = False  # a health probe's connection: it serves nothing else
        self._upgrade: bytes | None = None  # the protocols the request offers to switch to

    # -- Twisted callbacks -------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        self._timer.touch()
        try:
            # Read through a local: the compiled build checks a narrowed attribute's type
            # when it is read again, and _parse_head sets it meanwhile.
            reader = self._reader
            if reader is None and not self._head_seen:
                self._buf += data
                if not self._parse_head():
                    return
                data, self._buf = self._buf, b""
                reader = self._reader
                if reader is None:
                    self._response_complete(data)
                    return
            assert reader is not None
            pieces, rest = reader.feed(data)
        except HTTPProtocolError as e:
            self._fail(
                MemberError(
                    FailureKind.PROTOCOL,
                    e.message,
                    request_sent=True,
                    response_started=self._head_seen,
                )
            )
            return
        sink = self.sink
        assert sink is not None  # checked by dataReceived; _parse_head said it stayed
        for piece in pieces:
            sink.member_body(piece)
            if self.sink is None:  # the exchange aborted while handling the piece
                return
        if rest is not None:
            self._response_complete(rest)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed = True
        self._timer.cancel()
        if self.tunnel_lost(reason):  # a switched connection: the tunnel's
            self._lost(self)
            return
        sink = self.sink
        if sink is not None:
            if self._head_seen and isinstance(self._reader, CloseDelimitedReader):
                self.sink = None
                self._reader = None
                self._lost(self)
                sink.member_done()
                return
            message = "member closed the connection"
            if reason is not None and reason.value is not None and str(reason.value):
                message += f" ({reason.getErrorMessage()})"
            self._fail(
                MemberError(
                    FailureKind.BROKEN, message, request_sent=True, response_started=self._head_seen
                )
            )
        self._lost(self)

    # -- used by the exchange -----------------------------------------------------------

    def send_request(
        self, sink: ResponseSink, method: bytes, request: MemberRequest, body: BodyMode
    ) -> None:
        """Write a request head; then ``write_body``/``end_body`` unless ``body`` is NONE."""
        assert self.transport is not None
        if not isinstance(request, bytes):
            if not isinstance(request, UpgradeRequest):
                raise TypeError(f"an HTTP member is sent an HTTP/1.1 head, not {request!r}")
            # Left set after an answer other than 101 (nothing to reset on the common
            # path): a later 101 to a request that did not ask is refused by its exchange.
            self._upgrade, request = request.upgrade, request.head
        self.sink = sink
        self.requests += 1
        self._method = method
        self._head_seen = False
        self._reader = None
        self._buf = b""
        self._chunked = body is _BODY_CHUNKED
        self._body_sent = False
        self._request_done = body is _BODY_NONE
        if not self._request_done:
            stream(self.transport).registerProducer(_RequestBodyProducer(self), True)
            self._producer_registered = True
        self._write(request)
        self._timer.start()

    def write_body(self, data: bytes) -> None:
        assert self.transport is not None
        if not data or self.closed:
            return
        self._body_sent = True
        self._timer.touch()
        if self._chunked:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._write(data)

    def end_body(self) -> None:
        assert self.transport is not None
        if self._chunked and not self.closed:
            self._write(b"0\r\n\r\n")
        self._unregister_producer()
        self._request_done = True

    @property
    def body_sent(self) -> bool:
        """Whether any request body bytes went out (a request that did is never resent)."""
        return self._body_sent

    def send_probe(self, sink: ResponseSink, method: bytes, head: bytes) -> None:
        """Write a health probe's request ``head`` (no body) on this fresh connection.

        The answer goes to ``sink`` as a request's would, except that no timer runs (the
        health checker times its probe) and the first response head is the answer, an
        interim one too (httpd's check reads the first status line)."""
        assert self.transport is not None
        self.sink = sink
        self.requests += 1
        self._probing = True
        self._method = method
        self._head_seen = False
        self._reader = None
        self._buf = b""
        self._chunked = False
        self._request_done = True
        self._write(head)

    # -- internals ----------------------------------------------------------------------

    def _parse_head(self) -> bool:
        """Consume response heads from the buffer; True once a final (non-1xx) one is in."""
        while True:
            end = find_head_end(self._buf, DEFAULT_LIMITS.max_head, 502)
            if end < 0:
                return False
            head = parse_response_head(self._buf[:end])
            self._buf = self._buf[end:]
            if head.status < 200 and not self._probing:
                if head.status == 101:
                    self._switch(head.reason, head.headers)
                    return False
                continue  # interim responses (100, 102, 103) are not forwarded
            break
        lnames = [name.lower() for name, _ in head.headers]
        reader, length = response_body_reader(head, self._method, lnames)
        connection = (
            [t.lower() for t in header_values(head.headers, b"connection")]
            if b"connection" in lnames
            else ()
        )
        self._keep_alive = head.version == b"HTTP/1.1" and b"close" not in connection
        self._reader = reader
        self._head_seen = True
        assert self.sink is not None
        self.sink.member_response(head.status, head.reason, head.headers, length)
        return self.sink is not None

    def _switch(self, reason: bytes, headers: Headers) -> None:
        """A ``101``: check its ``Upgrade`` (HTTPProtocolError if wrong), then hand the
        connection to the sink as a tunnel end, with what followed the head."""
        offered = self._upgrade
        if offered is None:
            raise HTTPProtocolError("member switched protocols unasked", 502)
        chosen = b", ".join(header_values(headers, b"upgrade"))
        if not chosen or not _offered(chosen, offered):
            shown, expected = (chosen or b"n/a").decode("latin-1"), offered.decode("latin-1")
            raise HTTPProtocolError(
                f"unexpected Upgrade: {shown} (expecting {expected})",
                502,
            )
        assert self.transport is not None and self.sink is not None
        self._timer.cancel()  # the tunnel times its idleness itself
        if self._request_done:
            self._unregister_producer()
        early, self._buf = self._buf, b""
        end = self.become_tunnel_end(self.transport, self._outbox, early)
        sink, self.sink = self.sink, None
        sink.member_switched(reason, headers, end)

    def _unsolicited(self, data: bytes) -> None:
        switched = self.switched
        if switched is None:
            super()._unsolicited(data)
            return
        outbox = self._outbox
        outbox.hold()  # what this read makes the tunnel write leaves as one send
        try:
            switched.received(data)
        finally:
            outbox.release()

    def _response_complete(self, rest: bytes) -> None:
        sink = self.sink
        assert sink is not None
        self.sink = None
        self._reader = None
        self._timer.stop()
        if self._paused:
            self.resume_response()
        reusable = self._keep_alive and self._request_done and not rest and not self.closed
        if not self._request_done:
            self._unregister_producer()
        self._release(self, reusable)  # the pool notes since when it is idle
        sink.member_done()

    def _fail(self, error: MemberError) -> None:
        sink = self.sink
        self.sink = None
        self._timer.stop()
        self._discard()
        if sink is not None:
            sink.member_failed(error)

    def _discard(self) -> None:
        self._unregister_producer()
        super()._discard()

    def _stop_extras(self) -> None:
        self._unregister_producer()

    def _unregister_producer(self) -> None:
        if self._producer_registered and self.transport is not None:
            self._producer_registered = False
            stream(self.transport).unregisterProducer()

    def _timed_out(self) -> None:
        if self.sink is None:
            return
        self._fail(
            MemberError(
                FailureKind.TIMEOUT,
                f"member did not answer within {self._timer.timeout:g}s",
                request_sent=True,
                response_started=self._head_seen,
            )
        )


def _offered(chosen: bytes, offered: bytes) -> bool:
    """Whether every protocol of a ``101``'s ``Upgrade`` is one the request offered
    (compared without regard to case, as Apache compares them)."""
    wanted = {t.strip(b" \t").lower() for t in offered.split(b",")}
    return all(t.strip(b" \t").lower() in wanted for t in chosen.split(b","))
