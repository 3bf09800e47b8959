"""The Twisted side of an AJP13 connection to a member (Tomcat's AJP connector).

The sans-I/O :class:`ajpbalancer.ajp.ClientConnection` knows the protocol; this class
moves bytes and applies flow control. One request at a time: an optional CPING/CPONG
(``ping``) before the FORWARD_REQUEST, then request body packets exactly as the container
asks (the unsolicited first one when Content-Length > 0, then one per GET_BODY_CHUNK,
each at most packet size - 6, an empty packet to end a body of unknown length), while
response chunks stream to the exchange as SEND_BODY_CHUNK arrives. Client body bytes not
yet asked for wait here; past a high-water mark reading from the client pauses until the
container asks again. The connection returns to the pool only when END_RESPONSE says it
may be reused and the protocol state is clean; any error discards it.

A health check (:mod:`._health`) uses a connection of its own: a FORWARD_REQUEST without
a body (:meth:`AJPMemberConnection.send_probe`) or a CPING alone
(:meth:`AJPMemberConnection.send_cping`), whose CPONG ends the exchange.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from ajpbalancer._transport import Outbox
from ajpbalancer.ajp import (
    AJPProtocolError,
    ClientConnection,
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    LocalProtocolError,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
)
from ajpbalancer.h1 import BodyMode
from ajpbalancer.members._base import MemberProtocol
from ajpbalancer.members._errors import FailureKind, MemberError

if TYPE_CHECKING:
    from ajpbalancer.members._sink import MemberConnection, MemberRequest, ResponseSink

_BODY_NONE = BodyMode.NONE  # an alias: `Enum.MEMBER` costs a metaclass lookup each time


class AJPMemberConnection(MemberProtocol):
    """A pooled AJP13 connection (see the module docstring)."""

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: float,
        release: Callable[[MemberConnection, bool], None],
        lost: Callable[[MemberConnection], None],
        outbox: Outbox,
        *,
        packet_size: int = 8192,
        ping: float = 0.0,
    ) -> None:
        super().__init__(reactor, timeout, release, lost, outbox)
        self._packet_size = packet_size
        self._ping = ping
        self._codec = ClientConnection(max_packet_size=packet_size)
        self._forward: ForwardRequest | None = None
        # Views, so that taking a packet's worth off a big piece copies only that packet.
        self._pending: deque[memoryview] = deque()
        self._pending_len = 0
        self._client_done = True
        self._client_paused = False
        self._body_sent = False
        self._head_seen = False
        self._declared: int | None = None
        self._received = 0
        self._ping_call: IDelayedCall | None = None
        # Client bytes held while the container has not asked for them yet.
        self._high_water = 4 * (packet_size - 6)

    # -- Twisted callbacks -------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        self._timer.touch()
        try:
            events = self._codec.receive_data(data)
        except AJPProtocolError as e:
            what = "AJP answer" if self._forward is not None else "answer to CPING"
            self._fail(FailureKind.PROTOCOL, f"malformed {what}: {e}")
            return
        # Body chunks that follow each other in one read go to the client as one piece:
        # a 64 KiB answer is eight 8 KiB packets, and each piece costs the exchange and
        # the frontend a pass of their own.
        body: list[bytes] = []
        for event in events:
            if self.sink is None:
                return
            if type(event) is SendBodyChunk:
                if event.data:
                    body.append(event.data)
                continue
            if body:
                self._body_chunk(body)
                body = []
                if self.sink is None:
                    return
            if isinstance(event, GetBodyChunk):
                self._flush_body()
            elif isinstance(event, SendHeaders):
                self._headers(event)
            elif isinstance(event, EndResponse):
                self._end(event.reuse)
            elif isinstance(event, CPong):
                self._cpong()
        if body and self.sink is not None:
            self._body_chunk(body)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed = True
        self._timer.cancel()
        self._cancel_ping()
        if self.sink is not None:
            message = "member closed the connection"
            if reason is not None and str(reason.value):
                message += f" ({reason.getErrorMessage()})"
            self._fail(FailureKind.BROKEN, message)
        self._lost(self)

    # -- used by the exchange -----------------------------------------------------------

    def send_request(
        self, sink: ResponseSink, method: bytes, request: MemberRequest, body: BodyMode
    ) -> None:
        if not isinstance(request, ForwardRequest):
            raise TypeError(f"an AJP member is sent a FORWARD_REQUEST, not {request!r}")
        self.sink = sink
        self.requests += 1
        self._forward = request
        self._pending.clear()
        self._pending_len = 0
        self._client_done = body is _BODY_NONE
        self._client_paused = False
        self._body_sent = False
        self._head_seen = False
        self._declared = None
        self._received = 0
        self._timer.start()
        if self._ping > 0:
            assert self.transport is not None
            self._write(self._codec.send(CPing()))
            self._ping_call = self._reactor.callLater(self._ping, self._ping_expired)
        else:
            self._send_forward()

    def write_body(self, data: bytes) -> None:
        if not data or self.sink is None:
            return
        self._pending.append(memoryview(data))
        self._pending_len += len(data)
        self._flush_body()
        if self._pending_len > self._high_water and not self._client_paused and self.sink:
            self._client_paused = True
            self.sink.pause_request_body()

    def end_body(self) -> None:
        self._client_done = True
        if self.sink is not None:
            self._flush_body()

    @property
    def body_sent(self) -> bool:
        return self._body_sent

    def send_probe(self, sink: ResponseSink, request: ForwardRequest) -> None:
        """Send a health probe's FORWARD_REQUEST (no body) on this fresh connection.

        The answer goes to ``sink`` as a request's would, except that no timer runs (the
        health checker times its probe) and no CPING goes first, whatever ``ping``."""
        self._begin(sink, request)
        self._send_forward()

    def send_cping(self, sink: ResponseSink) -> None:
        """A CPING alone: its CPONG ends the exchange (``sink.member_done``), as
        ``END_RESPONSE`` ends a request's. No timer runs: the caller times it."""
        assert self.transport is not None
        self._begin(sink, None)
        self._write(self._codec.send(CPing()))

    def _begin(self, sink: ResponseSink, request: ForwardRequest | None) -> None:
        """A probe's exchange (see send_probe): no body, nothing timed here."""
        self.sink = sink
        self.requests += 1
        self._forward = request
        self._client_done = True
        self._head_seen = False
        self._declared = None
        self._received = 0

    # -- the request ------------------------------------------------------------------

    def _send_forward(self) -> None:
        assert self.transport is not None and self._forward is not None
        try:
            packet = self._codec.send(self._forward)
        except LocalProtocolError as e:
            # Nothing went out; the request itself cannot be expressed (header overflow).
            self._fail(FailureKind.REJECTED, str(e), status=e.status_hint, sent=False)
            return
        outbox = self._outbox
        outbox.hold()  # the request and a first body packet as one send
        try:
            self._write(packet)
            self._flush_body()
        finally:
            outbox.release()

    def _flush_body(self) -> None:
        """Send the packet the container is owed, if there is something (or an end) to send."""
        codec = self._codec
        if not codec.body_packet_owed or self.transport is None or self._forward is None:
            return
        owed = codec.body_owed
        if owed and self._pending:
            chunk = self._take(owed)
            self._body_sent = True
            self._write(codec.send(RequestBody(data=chunk)))
        elif not owed or (self._client_done and not self._pending):
            # Nothing more to give: the end-of-body packet answers the container.
            self._write(codec.send(RequestBody(data=b"")))
        else:
            return
        self._timer.touch()
        if self._client_paused and self._pending_len <= self._high_water // 2 and self.sink:
            self._client_paused = False
            self.sink.resume_request_body()

    def _take(self, limit: int) -> bytes:
        pending = self._pending
        first = pending[0]
        if len(first) >= limit:
            chunk = bytes(first[:limit])
            if len(first) > limit:
                pending[0] = first[limit:]
            else:
                pending.popleft()
        else:
            parts: list[memoryview] = []
            size = 0
            while pending and size < limit:
                piece = pending.popleft()
                if size + len(piece) > limit:
                    cut = limit - size
                    pending.appendleft(piece[cut:])
                    piece = piece[:cut]
                parts.append(piece)
                size += len(piece)
            chunk = b"".join(parts)
        self._pending_len -= len(chunk)
        return chunk

    # -- the response -----------------------------------------------------------------

    def _cpong(self) -> None:
        self._cancel_ping()
        if self._forward is not None:
            self._send_forward()
            return
        # A CPING alone (send_cping): the exchange is over, the connection reusable.
        sink = self.sink
        assert sink is not None
        self.sink = None
        self._release(self, not self.closed)  # the pool notes since when it is idle
        sink.member_done()

    def _ping_expired(self) -> None:
        self._ping_call = None
        if self.sink is not None:
            self._fail(
                FailureKind.REFUSED,
                f"member did not answer CPING within {self._ping:g}s",
                sent=False,
            )

    def _cancel_ping(self) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None

    def _headers(self, event: SendHeaders) -> None:
        assert self.sink is not None
        lengths = [v for n, v in event.headers if n.lower() == b"content-length"]
        declared: int | None = None
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
                self._fail(FailureKind.PROTOCOL, "member sent an invalid Content-Length")
                return
            declared = int(lengths[0])
        method = self._forward.method if self._forward is not None else b"GET"
        if method == b"HEAD" or event.status in (204, 304) or event.status < 200:
            self._declared = 0
        else:
            self._declared = declared
        self._head_seen = True
        # The reason phrase is regenerated (Tomcat sends the number as the phrase).
        self.sink.member_response(event.status, b"", list(event.headers), declared)

    def _body_chunk(self, pieces: list[bytes]) -> None:
        """Body data of one or more SEND_BODY_CHUNKs (empty ones, explicit flushes, are
        left out by the caller: every read is passed on at once anyway)."""
        assert self.sink is not None
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._received += len(data)
        if self._declared is not None and self._received > self._declared:
            self._fail(FailureKind.PROTOCOL, "member sent more body than its Content-Length")
            return
        self.sink.member_body(data)

    def _end(self, reuse: bool) -> None:
        sink = self.sink
        assert sink is not None
        if self._declared is not None and self._declared and self._received < self._declared:
            self._fail(FailureKind.BROKEN, "member ended the response short of its Content-Length")
            return
        self.sink = None
        self._timer.stop()
        if self._paused:
            self.resume_response()
        reusable = reuse and not self.closed
        if reusable:
            try:
                self._codec.start_next_cycle()
            except AJPProtocolError:
                reusable = False
        self._release(self, reusable)  # the pool notes since when it is idle
        sink.member_done()

    # -- failures -----------------------------------------------------------------------

    def _timed_out(self) -> None:
        if self.sink is not None:
            self._fail(
                FailureKind.TIMEOUT, f"member did not answer within {self._timer.timeout:g}s"
            )

    def _fail(
        self, kind: FailureKind, message: str, *, status: int | None = None, sent: bool = True
    ) -> None:
        sink = self.sink
        self.sink = None
        self._timer.stop()
        self._cancel_ping()
        self._discard()
        if sink is not None:
            sink.member_failed(
                MemberError(
                    kind,
                    message,
                    request_sent=sent,
                    response_started=self._head_seen,
                    status=status,
                )
            )

    def _stop_extras(self) -> None:
        self._cancel_ping()
