"""The client side: Twisted glue between a client connection and its exchanges.

What HTTP/1.1 says about the connection (parsing, framing, keep-alive, pipelining,
``100 Continue``) is :class:`ajpbalancer.h1.ServerConnection`'s; this protocol moves
bytes between it and the transport, creates an :class:`~ajpbalancer.channel.Exchange`
per request and hands it the body as it arrives (the member starts receiving before the
client has finished sending), and is the :class:`~ajpbalancer.channel.Channel` the
exchange answers through. Reading from the client pauses for independent reasons (a
slow member, a connection not yet ready, a pipelined request held at the read-ahead
bound), tracked as a set so that one resume cannot undo another pause. A request body
left unread when the response ends is read and discarded within bounds, so the client
sees its answer instead of a reset.

The connection's limits and timers are Apache's (:class:`ClientLimits`):
``LimitRequestLine`` (414), ``LimitRequestFieldSize`` and ``LimitRequestFields`` (431),
``LimitRequestBody`` (413), ``RequestReadTimeout`` for the head and the body (408, or a
close once an answer began) and ``KeepAliveTimeout`` between requests. A doubtful head
is refused as soon as its first bad byte arrives, and body bytes that arrived with the
head are checked before any exchange exists, so a request refused for its framing or
size reaches no member at all.

After a ``101`` (:meth:`FrontendProtocol.switch_protocols`) the connection is a tunnel end
(:class:`~ajpbalancer.tunnel.Switchable`): no more HTTP, no timers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

from twisted.internet.interfaces import IDelayedCall, IReactorTime, ISSLTransport
from twisted.python.failure import Failure

from ajpbalancer._transport import Outbox, PushProducer, no_delay, stream
from ajpbalancer.channel import Answered, Exchange, ExchangeFactory, PauseReason
from ajpbalancer.config import ClientLimits
from ajpbalancer.connection import ClientInfo
from ajpbalancer.frontend._tls import tls_info
from ajpbalancer.h1 import (
    REASONS,
    BodyMode,
    Data,
    EndOfMessage,
    Event,
    HeadLimits,
    HTTPProtocolError,
    LocalProtocolError,
    RecvState,
    Request,
    RequestHead,
    SendState,
    ServerConnection,
    Switched,
)
from ajpbalancer.headers import http_date
from ajpbalancer.tunnel import Switchable, TunnelEnd

MAX_DISCARD = 1 << 20
DISCARD_SECONDS = 5.0
FALLBACK_READ_TIMEOUT = 60.0
"""Apache's ``Timeout``: how long a read may stall when a RequestReadTimeout stage is 0."""
ALLOW = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"
"""``Allow`` of the 405 to ``CONNECT``: the methods a proxied application commonly takes."""
DEFAULT_CLIENT_LIMITS = ClientLimits()

# Enum members are looked up through their class's metaclass at every `Enum.MEMBER`
# (about 100 ns each in CPython 3.11); the hot path compares with these aliases.
_BODY_NONE = BodyMode.NONE
_PAUSE_PIPELINE = PauseReason.PIPELINE
_R_BODY = RecvState.BODY
_R_DISCARD = RecvState.DISCARD
_R_HEAD = RecvState.HEAD
_R_IDLE = RecvState.IDLE
_S_BODY = SendState.BODY
_S_MUST_CLOSE = SendState.MUST_CLOSE

Fields = Sequence[tuple[bytes, bytes]]


class _Wait(Enum):
    """What the connection's timer is waiting for."""

    IDLE = "idle"  # KeepAliveTimeout between requests
    HEAD = "head"  # RequestReadTimeout's header stage
    BODY = "body"  # RequestReadTimeout's body stage
    PAUSED = "paused"  # the body, while the member does not take it (not the client's fault)
    DISCARD = "discard"  # dropping a body whose answer went out


_WAIT_BODY = _Wait.BODY
_WAIT_DISCARD = _Wait.DISCARD
_WAIT_HEAD = _Wait.HEAD
_WAIT_IDLE = _Wait.IDLE
_WAIT_PAUSED = _Wait.PAUSED


class FrontendProtocol(Switchable):
    """One client connection (see the module docstring)."""

    def __init__(
        self,
        reactor: IReactorTime,
        exchange_factory: ExchangeFactory,
        *,
        client_limits: ClientLimits = DEFAULT_CLIENT_LIMITS,
        on_close: Callable[[FrontendProtocol], None] | None = None,
        outbox: Outbox | None = None,
        on_answered: Answered | None = None,
    ) -> None:
        """``on_answered``: told of each answer given with no exchange (a refusal, a
        timeout, ``OPTIONS *``), for the access log and the metrics."""
        super().__init__()
        self.factory: object | None = None
        self._reactor = reactor
        self._exchange_factory = exchange_factory
        self._client_limits = client_limits
        self._h1 = ServerConnection(
            HeadLimits(
                client_limits.limit_request_line,
                client_limits.limit_request_field_size,
                client_limits.limit_request_fields,
            ),
            max_body=client_limits.limit_request_body,
        )
        self._on_close = on_close
        self._on_answered = on_answered
        self._outbox = outbox if outbox is not None else Outbox()
        self._closed = False  # no more HTTP: the connection closed, or switched protocols
        self._exchange: Exchange | None = None
        self._head: RequestHead | None = None
        self._responding = False
        self._has_body = False
        self._pauses: set[PauseReason] = set()
        self._producer: PushProducer | None = None
        # Events are handled one list at a time; a response that ends while one is
        # handled leaves the next request for after it (see _handle).
        self._handling = False
        self._cycle_pending = False
        self._timer: IDelayedCall | None = None
        self._timer_at = 0.0  # when the pending timer fires
        self._last_activity = 0.0
        # RequestReadTimeout bookkeeping: when the head / body began and bytes since then.
        self._head_start: float | None = None
        self._head_bytes = 0
        self._body_start = 0.0
        self._paused_at = 0.0
        self._discard_deadline = 0.0
        self.is_ssl = False
        self.client_ip = b""
        self.client_port = 0
        self.local_ip = b""
        self.local_port = 0
        self.requests = 0
        self._client_info: ClientInfo | None = None

    # -- Twisted callbacks -------------------------------------------------------------

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.is_ssl = ISSLTransport.providedBy(self.transport)
        peer = self.transport.getPeer()
        host = self.transport.getHost()
        self.client_ip = getattr(peer, "host", "").encode("ascii", "replace") or b"-"
        self.client_port = getattr(peer, "port", 0)
        self.local_ip = getattr(host, "host", "").encode("ascii", "replace") or b"-"
        self.local_port = getattr(host, "port", 0)
        self._last_activity = self._reactor.seconds()
        self._head_start = self._last_activity  # the first head is timed from the connection
        self._arm_timer()
        no_delay(self.transport)

    def dataReceived(self, data: bytes) -> None:
        outbox = self._outbox
        outbox.hold()
        try:
            self._received(data)
        finally:
            outbox.release()

    def _received(self, data: bytes) -> None:
        if self._closed:
            if self.switched is not None:
                self.switched.received(data)
            return
        h1 = self._h1
        now = self._last_activity = self._reactor.seconds()
        state = h1.recv_state
        if state is _R_IDLE or state is _R_HEAD:
            if self._head_start is None:
                self._head_start = now
            self._head_bytes += len(data)
        try:
            events = h1.receive_data(data)
        except HTTPProtocolError as e:
            self._client_error(e, discarding=state is _R_DISCARD)
            return
        if events:
            self._handle(events)
        if self._closed:
            return
        if h1.recv_state is _R_DISCARD and (
            h1.discarded > MAX_DISCARD or now > self._discard_deadline
        ):
            self._close()
        elif not h1.wants_data:
            self.pause_reading(_PAUSE_PIPELINE)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closed = True
        if self.transport is not None:
            self._outbox.drop(self.transport)  # lost with the connection, as Twisted's buffer
        self._cancel_timer()
        exchange, self._exchange = self._exchange, None
        if exchange is not None and self._responding:
            exchange.client_gone()
        self.tunnel_lost(reason)
        if self._on_close is not None:
            self._on_close(self)

    # -- requests ----------------------------------------------------------------------

    def _handle(self, events: list[Event]) -> None:
        """Hand ``events`` to the exchanges they belong to, then the next request's (when
        a response ended meanwhile), one list at a time: a response that ends while a
        list is handled (an exchange that answered at once) must not start the next
        request before the rest of its own list (its body, now dropped) is through."""
        self._handling = True
        try:
            while events:
                for event in events:
                    kind = type(event)
                    if kind is Data:
                        exchange = self._exchange
                        if exchange is not None:
                            assert isinstance(event, Data)
                            exchange.body_data(event.data)
                    elif kind is EndOfMessage:
                        exchange = self._exchange
                        if exchange is not None and self._has_body:
                            exchange.body_end()
                    elif kind is Request:
                        assert isinstance(event, Request)
                        self._begin(event)
                    if self._closed:
                        return
                events = []
                if self._cycle_pending:
                    self._cycle_pending = False
                    events = self._next_events()
        finally:
            self._handling = False

    def _next_events(self) -> list[Event]:
        try:
            return self._h1.next_events()
        except HTTPProtocolError as e:
            self._client_error(e, discarding=False)
            return []

    def _begin(self, request: Request) -> None:
        head = request.head
        self.requests += 1
        self._head = head
        self._responding = True
        self._has_body = request.body is not _BODY_NONE
        if self._has_body:
            self._body_start = self._reactor.seconds()
            self._arm_timer(again=True)  # the body's deadline may come before the head's
        if head.target == b"*":
            self._answer_options()
            return
        exchange = self._exchange_factory(self, request)
        if self._responding and self._head is head:
            self._exchange = exchange

    def _answer_options(self) -> None:
        """``OPTIONS *`` is about the server itself: answered here as Apache's core answers
        it (httpd 2.4.71: 200, ``Content-Length: 0``, no ``Allow``); no member sees it."""
        head = self._head
        self._start(200, b"OK", [(b"Date", http_date())], 0, close=self._has_body)
        self.finish_response()
        self._answered(head, 200, 0)

    def _client_error(self, error: HTTPProtocolError, *, discarding: bool) -> None:
        """The client broke the protocol: answer if nothing was answered yet, then close."""
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            exchange.client_gone()  # its own access log line and metrics
        if discarding or self._h1.send_state is _S_BODY:
            self._close(abort=True)
            return
        head = self._h1.head
        extra = [(b"Allow", ALLOW)] if error.status == 405 else []
        size = self._error_page(error.status, error.message, headers=extra, close=True)
        if exchange is None:
            self._answered(head, error.status, size)

    def _answered(self, head: RequestHead | None, status: int, size: int) -> None:
        """An answer the connection gave by itself (no exchange): logged and counted."""
        if self._on_answered is not None:
            self._on_answered(self.client_info(), head, status, size)

    # -- the Channel (used by the exchange) ---------------------------------------------

    def client_info(self) -> ClientInfo:
        """Addresses and TLS parameters of this connection (computed once)."""
        if self._client_info is None:
            tls = tls_info(self.transport) if self.is_ssl else None
            self._client_info = ClientInfo(
                self.client_ip, self.client_port, self.local_ip, self.local_port, tls
            )
        return self._client_info

    @property
    def buffered(self) -> int:
        """Bytes received and not handled yet (a partial head, a pipelined request)."""
        return self._h1.buffered

    @property
    def head(self) -> RequestHead | None:
        """The request being answered, or None between requests."""
        return self._head

    def send_continue(self) -> None:
        if self.transport is not None and not self._closed and self._h1.continue_allowed:
            self._outbox.write(self.transport, self._h1.send_continue())

    def start_response(
        self, status: int, reason: bytes, headers: Fields, length: int | None
    ) -> None:
        self._start(status, reason, headers, length)

    def _start(
        self,
        status: int,
        reason: bytes,
        headers: Fields,
        length: int | None,
        *,
        close: bool = False,
    ) -> None:
        if self._closed or self.transport is None:
            return
        head = self._h1.start_response(status, headers, length, reason=reason, close=close)
        self._outbox.write(self.transport, head)

    def write_body(self, data: bytes) -> None:
        if self._closed or self.transport is None:
            return
        out = self._h1.send_body(data)
        if out:
            self._outbox.write(self.transport, out)

    def finish_response(self) -> None:
        """The response is complete: keep the connection for the next request, or close."""
        if self._closed:
            return
        h1 = self._h1
        try:
            out = h1.end_response()
        except LocalProtocolError:
            self.abort()
            return
        if out and self.transport is not None:
            self._outbox.write(self.transport, out)
        self.unregister_producer()
        self._exchange = None
        self._responding = False
        self._head = None
        if h1.send_state is _S_MUST_CLOSE:
            self._close()
            return
        if h1.recv_state is _R_DISCARD:
            # The answer came before the whole body: read and drop the rest, within bounds.
            self._discard_deadline = self._reactor.seconds() + DISCARD_SECONDS
            if self._pauses:
                self._pauses.clear()
                if self.transport is not None:
                    stream(self.transport).resumeProducing()
            self._arm_timer(again=True)
            return
        self._next_request()

    def _next_request(self) -> None:
        # The finished exchange's pauses end with it: a member connection unregistered as
        # its producer while it had paused the body would otherwise never resume it, and
        # the next request would wait unread until KeepAliveTimeout closed the connection.
        if self._pauses:
            self._pauses.clear()
            if self.transport is not None:
                stream(self.transport).resumeProducing()
        now = self._last_activity = self._reactor.seconds()
        # Waiting for the next request is KeepAliveTimeout; its head, once begun, the
        # header stage of RequestReadTimeout.
        buffered = self._h1.buffered
        self._head_start = now if buffered else None
        self._head_bytes = buffered
        self._arm_timer(again=True)
        if self._handling:
            self._cycle_pending = True
            return
        events = self._next_events()
        if events:
            self._handle(events)
        if not self._closed and not self._h1.wants_data:
            self.pause_reading(_PAUSE_PIPELINE)

    def switch_protocols(self, reason: bytes, headers: Fields) -> TunnelEnd | None:
        """Send ``101`` with ``headers``: the connection is a tunnel end from now on (None
        if the client is gone). Its head stays: a draining worker counts it as busy."""
        transport = self.transport
        if self._closed or transport is None:
            return None
        h1 = self._h1
        try:
            self._outbox.write(transport, h1.send_informational(101, headers, reason))
        except LocalProtocolError:  # the request did not ask for it: the exchange's bug
            self.abort()
            return None
        events = h1.next_events()
        early = events[0].data if events and isinstance(events[0], Switched) else b""
        self._closed = True
        self._cancel_timer()
        self._exchange = None
        self._responding = False
        if self._pauses:  # a pipelined read-ahead pause: the tunnel reads what follows
            self._pauses.clear()
            stream(transport).resumeProducing()
        return self.become_tunnel_end(transport, self._outbox, early)

    def abort(self) -> None:
        """The response cannot be completed: the client must not mistake it for whole."""
        self._exchange = None
        self._responding = False
        self._close(abort=True)

    def send_error(
        self, status: int, message: str, *, headers: Fields = (), close: bool = False
    ) -> None:
        """Answer with a short error page (only before a response began)."""
        self._error_page(status, message, headers=headers, close=close)

    def _error_page(
        self, status: int, message: str, *, headers: Fields = (), close: bool = False
    ) -> int:
        """:meth:`send_error`; the size of the page sent (0: nothing was sent)."""
        if self.transport is None or self._closed:
            return 0
        if self._h1.send_state is _S_BODY:
            self.abort()
            return 0
        reason = REASONS.get(status, b"Error")
        body = (
            b"<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body>\n<h1>%s</h1>\n"
            b"<p>%s</p>\n</body></html>\n"
            % (status, reason, reason, _html_escape(message).encode("utf-8"))
        )
        fields = [(b"Date", http_date()), (b"Content-Type", b"text/html; charset=utf-8")]
        fields += headers
        self._responding = True
        outbox = self._outbox
        outbox.hold()  # the head and the page as one send, when no caller holds already
        try:
            self._start(status, reason, fields, len(body), close=close)
            self.write_body(body)
            self.finish_response()
        finally:
            outbox.release()
        return len(body)

    def pause_reading(self, reason: PauseReason) -> None:
        """Stop reading from the client until every reason is resumed."""
        if not self._pauses:
            self._paused_at = self._reactor.seconds()
            if self.transport is not None:
                stream(self.transport).pauseProducing()
        self._pauses.add(reason)

    def resume_reading(self, reason: PauseReason) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and self._h1.recv_state is _R_BODY:
                # Time the member kept the body waiting does not count against the client.
                self._body_start += self._reactor.seconds() - self._paused_at
            if not self._pauses and self.transport is not None and not self._closed:
                stream(self.transport).resumeProducing()

    def register_producer(self, producer: PushProducer) -> None:
        """The exchange's producer is paused while the client's write buffer is full."""
        if self.transport is not None and self._producer is None and not self._closed:
            self._producer = producer
            stream(self.transport).registerProducer(producer, True)

    def unregister_producer(self) -> None:
        if self._producer is not None:
            self._producer = None
            if self.transport is not None:
                stream(self.transport).unregisterProducer()

    # -- connection housekeeping -------------------------------------------------------

    def _close(self, *, abort: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        self.unregister_producer()
        transport = self.transport
        if transport is not None:
            if abort:
                self._outbox.drop(transport)  # an abort drops what Twisted had buffered, too
                stream(transport).abortConnection()
            else:
                self._outbox.flush(transport)  # what was written goes out before the FIN
                transport.loseConnection()

    def _arm_timer(self, *, again: bool = False) -> None:
        """Make sure a timer runs; ``again``: the deadline may have moved earlier.

        A pending call that fires no later than the deadline is kept (`_on_timer` arms
        again for the rest): a kept-alive connection then schedules no call per request,
        only one per KeepAliveTimeout or so.
        """
        timer = self._timer  # pending: _on_timer and _cancel_timer set it to None
        if timer is not None:
            if not again:
                return
            deadline = self._deadline()
            if deadline is None or self._timer_at <= deadline[0]:
                return
            timer.cancel()
        else:
            deadline = self._deadline()
        self._timer = None
        if deadline is not None:
            at = deadline[0]
            self._timer_at = at
            self._timer = self._reactor.callLater(
                max(at - self._reactor.seconds(), 0.0), self._on_timer
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _deadline(self) -> tuple[float, _Wait] | None:
        """When the current wait ends and what it is, or None while nothing is awaited.

        Deadlines only move later as bytes arrive, so the timer is checked lazily: when it
        fires early it is armed again for the rest.
        """
        state = self._h1.recv_state
        limits = self._client_limits
        if (state is _R_IDLE or state is _R_HEAD) and not self._responding:
            if self._head_start is None:
                return self._last_activity + limits.keep_alive_timeout, _WAIT_IDLE
            stage = limits.header_timeout
            if not stage.timeout:
                return self._last_activity + FALLBACK_READ_TIMEOUT, _WAIT_HEAD
            return stage.deadline(self._head_start, self._head_bytes), _WAIT_HEAD
        if state is _R_BODY:
            stage = limits.body_timeout
            if self._pauses:  # the member is not taking the body: not the client's fault
                return self._reactor.seconds() + max(stage.timeout, 1.0), _WAIT_PAUSED
            if not stage.timeout:
                return self._last_activity + FALLBACK_READ_TIMEOUT, _WAIT_BODY
            return stage.deadline(self._body_start, self._h1.body_received), _WAIT_BODY
        if state is _R_DISCARD:
            return self._discard_deadline, _WAIT_DISCARD
        return None

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline()
        if deadline is None:
            return
        when, what = deadline
        if what is _WAIT_PAUSED or when > self._reactor.seconds():
            self._arm_timer()
            return
        if what is _WAIT_HEAD and self._h1.buffered:
            size = self._error_page(408, "the request head did not arrive in time", close=True)
            self._answered(None, 408, size)
        elif what is _WAIT_BODY:
            self._client_error(
                HTTPProtocolError("the request body did not arrive in time", 408),
                discarding=False,
            )
        else:
            self._close()


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
