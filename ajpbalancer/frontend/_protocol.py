"""The client side: an HTTP/1.1 server protocol that streams requests to an exchange.

This replaces ``twisted.web``'s channel and Request, which read the whole body before a
resource sees it. Here the head is parsed strictly (:mod:`ajpbalancer.h1`), an
:class:`Exchange` is created at once, and body pieces are handed over as they arrive, so
the member starts receiving before the client has finished sending. Reading from the
client pauses for independent reasons (a slow member, a connection not yet ready, a
pipelined request waiting its turn), tracked as a set so one resume cannot undo another
pause. Responses are framed here: Content-Length when known, else chunked (HTTP/1.1) or
close-delimited (HTTP/1.0). A request body left unread when the response ends is read
and discarded within bounds, so the client sees its answer instead of a reset.

The connection's limits are Apache's (:class:`ClientLimits`): ``LimitRequestLine`` (414),
``LimitRequestFieldSize`` and ``LimitRequestFields`` (431), ``LimitRequestBody`` (413),
``RequestReadTimeout`` for the head and the body (408, or a close once an answer began)
and ``KeepAliveTimeout`` between requests. A doubtful head is refused as soon as its
first bad byte arrives (a bare LF, an HTTP/0.9 or HTTP/2 request line), and body bytes
that arrived with the head are checked before any member is contacted, so a request
refused for its framing or size reaches no member at all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import (
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure as TwistedFailure

from ajpbalancer._transport import Cork, no_delay, stream
from ajpbalancer.config import ClientLimits
from ajpbalancer.connection import ClientInfo
from ajpbalancer.frontend._tls import tls_info
from ajpbalancer.h1 import (
    BodyReader,
    Headers,
    HeadLimits,
    HTTPProtocolError,
    RequestHead,
    find_head_end,
    header_values,
    parse_request_head,
    parse_request_line,
    request_body_reader,
)

_HEAD, _BODY, _WAIT, _DISCARD, _CLOSED = range(5)

# RFC 9110 §7.2 Host: uri-host [ ":" port ]: a reg-name (unreserved, pct-encoded,
# sub-delims) or an IP literal in brackets; a ":" must be followed by a port (Apache
# answers 400 to "Host: example.org:", as here).
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{1,5})?")

# RFC 9112 §3.2.2 absolute-form; the authority must be this request's Host (no open proxy).
_ABSOLUTE = re.compile(rb"(?i:(https?)://)([^/?@]*)([/?].*)?")
_BARE_LF = re.compile(rb"(?<!\r)\n|\r(?!\n)")

REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
MAX_DISCARD = 1 << 20
DISCARD_SECONDS = 5.0
FALLBACK_READ_TIMEOUT = 60.0
"""Apache's ``Timeout``: how long a read may stall when a RequestReadTimeout stage is 0."""
ALLOW = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"
"""``Allow`` of the 405 to ``CONNECT``: the methods a proxied application commonly takes."""
DEFAULT_CLIENT_LIMITS = ClientLimits()


class Exchange(TypingProtocol):
    """What the frontend drives for each request (see :mod:`ajpbalancer.proxy`)."""

    def body_data(self, data: bytes) -> None: ...

    def body_end(self) -> None: ...

    def client_gone(self) -> None: ...


class ExchangeFactory(TypingProtocol):
    def __call__(
        self, channel: FrontendProtocol, head: RequestHead, length: int | None, chunked: bool
    ) -> Exchange: ...


class FrontendProtocol(Protocol):
    """One client connection (see the module docstring)."""

    def __init__(
        self,
        reactor: IReactorTime,
        exchange_factory: ExchangeFactory,
        *,
        client_limits: ClientLimits = DEFAULT_CLIENT_LIMITS,
        on_close: Callable[[FrontendProtocol], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self._exchange_factory = exchange_factory
        self._client_limits = client_limits
        self._limits = HeadLimits(
            client_limits.limit_request_line,
            client_limits.limit_request_field_size,
            client_limits.limit_request_fields,
        )
        self._on_close = on_close
        self._state = _HEAD
        self._buf = b""
        self._reader: BodyReader | None = None
        self._exchange: Exchange | None = None
        self._pauses: set[str] = set()
        self._responding = False
        self._response_started = False
        self._keep_alive = True
        self._chunked_out = False
        self._no_body = False
        self._head: RequestHead | None = None
        self._discarded = 0
        self._discard_deadline = 0.0
        self._last_activity = 0.0
        self._timer: IDelayedCall | None = None
        # RequestReadTimeout bookkeeping: when the head / body began and bytes since then.
        self._head_start: float | None = None
        self._head_bytes = 0
        self._body_start = 0.0
        self._body_bytes = 0
        self._paused_at = 0.0
        # How far the incomplete head was checked (see _check_partial_head).
        self._scan_pos = 0
        self._line_start = 0
        self._line_count = 0
        self._producer: IPushProducer | None = None
        # Writes made while handling one event leave as one send (see cork()).
        self._out = Cork()
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
        self._head_start = self._last_activity
        self._arm_timer()
        no_delay(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self.cork()
        try:
            self._data_received(data)
        finally:
            self.uncork()

    def _data_received(self, data: bytes) -> None:
        self._last_activity = self._reactor.seconds()
        state = self._state
        if state in (_BODY, _DISCARD):
            self._feed_body(data)
        elif state != _CLOSED:
            self._buf += data
            if state == _HEAD and not self._responding:
                if self._head_start is None:
                    self._head_start = self._last_activity
                self._head_bytes += len(data)
            if state == _HEAD:
                self._advance()
            elif len(self._buf) > self._limits.max_head:
                self.pause_reading("pipeline")

    def connectionLost(self, reason: TwistedFailure | None = None) -> None:
        self._state = _CLOSED
        self._out.drop()  # what Twisted had buffered is lost with the connection too
        self._cancel_timer()
        exchange, self._exchange = self._exchange, None
        if exchange is not None and self._responding:
            exchange.client_gone()
        if self._on_close is not None:
            self._on_close(self)

    # -- request side ------------------------------------------------------------------

    def _advance(self) -> None:
        """Parse the next request head if one is complete and no response is pending."""
        while self._state == _HEAD and not self._responding:
            buf = self._buf
            if buf.startswith(b"\r\n"):  # RFC 9112 §2.2: ignore empty lines before a request
                self._buf = buf = buf.lstrip(b"\r\n")
                self._reset_scan()
            if not buf:
                return
            try:
                end = find_head_end(buf, self._limits.max_head, 431)
                if end < 0:
                    self._check_partial_head(buf)
                    return
                head = parse_request_head(buf[:end], self._limits)
                self._buf = buf[end:]
                self._reset_scan()
                self._check_head(head)
                reader, length = request_body_reader(head)
                limit = self._client_limits.limit_request_body
                if limit and length is not None and length > limit:
                    raise HTTPProtocolError("request body larger than LimitRequestBody", 413)
            except HTTPProtocolError as e:
                extra: Headers = [(b"Allow", ALLOW)] if e.status == 405 else []
                self.send_error(e.status, e.message, close=True, headers=extra)
                return
            if head.target == b"*":
                self._answer_options(head, reader is not None)
                continue
            self._begin(head, reader, length)

    def _reset_scan(self) -> None:
        self._scan_pos = self._line_start = self._line_count = 0

    def _check_partial_head(self, buf: bytes) -> None:
        """Refuse an incomplete head at once if what arrived is already wrong.

        Scans only the bytes not seen before: a bare CR or LF (a client that ends lines with
        LF alone would otherwise wait for the timeout), a request line that is too long or
        not HTTP/1.x (HTTP/0.9, the HTTP/2 preface), a field line or field count too large.
        """
        limits = self._limits
        start = max(self._scan_pos - 1, 0)
        if _BARE_LF.search(buf, start, len(buf) - 1 if buf.endswith(b"\r") else len(buf)):
            raise HTTPProtocolError("bare CR or LF in message head", 400)
        pos = self._scan_pos
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line_length = nl - 1 - self._line_start
            if self._line_count == 0:
                if line_length > limits.max_line:
                    raise HTTPProtocolError("request line too long", 414)
                parse_request_line(buf[self._line_start : nl - 1], limits)
            elif line_length > limits.max_field:
                raise HTTPProtocolError("header field too long", 431)
            self._line_count += 1
            if self._line_count > limits.max_fields + 1:
                raise HTTPProtocolError("too many header fields", 431)
            self._line_start = pos = nl + 1
        self._scan_pos = len(buf)
        pending = len(buf) - self._line_start
        if self._line_count == 0 and pending > limits.max_line:
            raise HTTPProtocolError("request line too long", 414)
        if self._line_count and pending > limits.max_field + 1:
            raise HTTPProtocolError("header field too long", 431)

    def _check_head(self, head: RequestHead) -> None:
        hosts = [v for n, v in head.headers if n.lower() == b"host"]
        if len(hosts) > 1:
            raise HTTPProtocolError("several Host fields", 400)
        if head.version == b"HTTP/1.1" and not hosts:
            raise HTTPProtocolError("missing Host field", 400)
        if hosts and hosts[0] and _HOST.fullmatch(hosts[0]) is None:
            raise HTTPProtocolError("invalid Host field", 400)
        if head.method == b"CONNECT":
            raise HTTPProtocolError("CONNECT is not supported: this is no forward proxy", 405)
        target = head.target
        if target.startswith(b"/"):
            return
        if target == b"*":
            if head.method != b"OPTIONS":
                raise HTTPProtocolError("'*' is a request target for OPTIONS only", 400)
            return
        m = _ABSOLUTE.fullmatch(target)
        if m is None:
            raise HTTPProtocolError("request target must be a path or an absolute URI", 400)
        scheme, authority = m.group(1).lower(), m.group(2)
        host = hosts[0] if hosts else None
        if not authority or _HOST.fullmatch(authority) is None:
            raise HTTPProtocolError("invalid authority in the request target", 400)
        if host is not None and _authority_key(scheme, host) != _authority_key(scheme, authority):
            # RFC 9112 §3.2.2 says the target's authority wins; a reverse proxy that let it
            # differ from Host would be asked for other sites. Refused: no open proxy.
            raise HTTPProtocolError("the request target names another host than Host", 400)
        if host is None:
            head.headers.append((b"Host", authority))
        rest = m.group(3) or b""
        head.target = rest if rest.startswith(b"/") else b"/" + rest

    def _answer_options(self, head: RequestHead, has_body: bool) -> None:
        """``OPTIONS *`` is about the server itself: answered here as Apache's core answers
        it (httpd 2.4.71: 200, ``Content-Length: 0``, no ``Allow``); no member sees it."""
        self.requests += 1
        self._head = head
        self._keep_alive = self._wants_keep_alive(head)
        self._state = _WAIT
        self._reader = None
        self._responding = True
        self.start_response(200, b"OK", [(b"Date", http_date())], 0, close=has_body)
        self.finish_response()

    @staticmethod
    def _wants_keep_alive(head: RequestHead) -> bool:
        connection = [t.lower() for t in header_values(head.headers, b"connection")]
        if head.version == b"HTTP/1.1":
            return b"close" not in connection
        return b"keep-alive" in connection

    def _begin(self, head: RequestHead, reader: BodyReader | None, length: int | None) -> None:
        self._head = head
        self._body_start = self._reactor.seconds()
        self._body_bytes = 0
        pieces: list[bytes] = []
        rest: bytes | None = None
        if reader is not None and self._buf:
            # Body bytes that came with the head are checked before a member is contacted.
            data, self._buf = self._buf, b""
            try:
                pieces, rest = reader.feed(data)
                self._count_body(pieces)
            except HTTPProtocolError as e:
                self.send_error(e.status, e.message, close=True)
                return
        self.requests += 1
        self._responding = True
        self._response_started = False
        self._keep_alive = self._wants_keep_alive(head)
        self._reader = reader
        self._state = _BODY if reader is not None else _WAIT
        if reader is not None:
            self._arm_timer(again=True)  # the body's deadline may come before the head's
        number = self.requests
        exchange = self._exchange_factory(self, head, length, reader is not None and length is None)
        if self.requests != number:
            return  # answered at once, and a pipelined request already took over
        if self._responding:
            self._exchange = exchange
        if self._state in (_BODY, _DISCARD):
            if pieces or rest is not None:
                self._deliver(pieces, rest)
        elif self._state == _WAIT and self._responding:
            exchange.body_end()

    def _count_body(self, pieces: list[bytes]) -> None:
        """Count request body bytes against LimitRequestBody and the body read rate."""
        n = sum(len(p) for p in pieces)
        self._body_bytes += n
        limit = self._client_limits.limit_request_body
        if limit and self._body_bytes > limit:
            raise HTTPProtocolError("request body larger than LimitRequestBody", 413)

    def _feed_body(self, data: bytes) -> None:
        reader = self._reader
        assert reader is not None
        try:
            pieces, rest = reader.feed(data)
            if self._state == _BODY:
                self._count_body(pieces)
        except HTTPProtocolError as e:
            self._body_error(e)
            return
        self._deliver(pieces, rest)

    def _deliver(self, pieces: list[bytes], rest: bytes | None) -> None:
        """Hand body pieces to the exchange (or drop them); ``rest``: what followed the body."""
        if self._state == _BODY:
            for piece in pieces:
                exchange = self._exchange
                if exchange is None:
                    break
                exchange.body_data(piece)
                if self._state != _BODY:
                    break
        if self._state == _DISCARD:
            self._discarded += sum(len(p) for p in pieces)
        if rest is None:
            if self._state == _DISCARD and (
                self._discarded > MAX_DISCARD or self._reactor.seconds() > self._discard_deadline
            ):
                self._close()
            return
        self._reader = None
        self._buf = rest
        if self._state == _BODY:
            self._state = _WAIT
            if self._exchange is not None:
                self._exchange.body_end()
            if self._state == _WAIT and self._buf:
                self.pause_reading("pipeline")
        elif self._state == _DISCARD:
            self._next_request()

    def _body_error(self, error: HTTPProtocolError) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            exchange.client_gone()
        if self._response_started:
            self._close(abort=True)
        else:
            self.send_error(error.status, error.message, close=True)

    def pause_reading(self, reason: str) -> None:
        """Stop reading from the client until every reason is resumed."""
        if not self._pauses:
            self._paused_at = self._reactor.seconds()
            if self.transport is not None:
                stream(self.transport).pauseProducing()
        self._pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and self._state == _BODY:
                # Time the member kept the body waiting does not count against the client.
                self._body_start += self._reactor.seconds() - self._paused_at
            if not self._pauses and self.transport is not None and self._state != _CLOSED:
                stream(self.transport).resumeProducing()

    def client_info(self) -> ClientInfo:
        """Addresses and TLS parameters of this connection (computed once)."""
        if self._client_info is None:
            tls = tls_info(self.transport) if self.is_ssl else None
            self._client_info = ClientInfo(
                self.client_ip, self.client_port, self.local_ip, self.local_port, tls
            )
        return self._client_info

    @property
    def head(self) -> RequestHead | None:
        return self._head

    @property
    def body_complete(self) -> bool:
        return self._reader is None

    # -- response side -----------------------------------------------------------------

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` once the body can go somewhere."""
        if self.transport is not None and not self._response_started and self._state == _BODY:
            self._out.write(self.transport, b"HTTP/1.1 100 Continue\r\n\r\n")

    def start_response(
        self,
        status: int,
        reason: bytes,
        headers: Headers,
        length: int | None,
        *,
        close: bool = False,
    ) -> None:
        """Send the response head; ``length`` None means the body length is unknown."""
        assert self.transport is not None and self._head is not None
        self._response_started = True
        head = self._head
        no_body = head.method == b"HEAD" or status in (204, 304) or status < 200
        self._no_body = no_body
        keep = self._keep_alive and not close
        out = list(headers)
        self._chunked_out = False
        if length is not None:
            if status not in (204, 304) or head.method == b"HEAD":
                out.append((b"Content-Length", b"%d" % length))
        elif not no_body:
            if head.version == b"HTTP/1.1":
                self._chunked_out = True
                out.append((b"Transfer-Encoding", b"chunked"))
            else:
                keep = False
        if not keep:
            out.append((b"Connection", b"close"))
        elif head.version == b"HTTP/1.0":
            out.append((b"Connection", b"keep-alive"))
        self._keep_alive = keep
        parts = [b"HTTP/1.1 %d " % status, reason or REASONS.get(status, b"Unknown"), b"\r\n"]
        for name, value in out:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self._out.write(self.transport, b"".join(parts))

    def write_body(self, data: bytes) -> None:
        if self._no_body or not data or self.transport is None or self._state == _CLOSED:
            return
        if self._chunked_out:
            self._out.write_sequence(self.transport, [b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self._out.write(self.transport, data)

    def finish_response(self) -> None:
        """The response is complete: keep the connection for the next request, or close."""
        if self._state == _CLOSED:
            return
        if self._chunked_out and self.transport is not None:
            self._out.write(self.transport, b"0\r\n\r\n")
        self.unregister_producer()
        self._exchange = None
        self._responding = False
        if not self._keep_alive:
            self._close()
            return
        if self._state == _BODY:
            # The answer came before the whole body: read and drop the rest, within bounds.
            self._state = _DISCARD
            self._discarded = 0
            self._discard_deadline = self._reactor.seconds() + DISCARD_SECONDS
            self._pauses.clear()
            if self.transport is not None:
                stream(self.transport).resumeProducing()
            self._arm_timer(again=True)
            return
        self._next_request()

    def _next_request(self) -> None:
        self._state = _HEAD
        self._head = None
        self._response_started = False  # an error for the next request is answered, not cut
        # The finished exchange's pauses end with it: a member connection unregistered as
        # its producer while it had paused the body would otherwise never resume it, and
        # the next request would wait unread until KeepAliveTimeout closed the connection.
        self._pauses.discard("pipeline")
        if self._pauses:
            self._pauses.clear()
            if self.transport is not None:
                stream(self.transport).resumeProducing()
        self.resume_reading("pipeline")
        now = self._last_activity = self._reactor.seconds()
        # Waiting for the next request is KeepAliveTimeout; its head, once begun, the
        # header stage of RequestReadTimeout.
        self._head_start = now if self._buf else None
        self._head_bytes = len(self._buf)
        self._reset_scan()
        self._arm_timer(again=True)
        if self._buf:
            self._advance()

    def abort(self) -> None:
        """The response cannot be completed: the client must not mistake it for whole."""
        self._exchange = None
        self._responding = False
        self._close(abort=True)

    def send_error(
        self, status: int, message: str, *, close: bool = False, headers: Headers | None = None
    ) -> None:
        """Answer with a short error page (only before a response began)."""
        if self.transport is None or self._state == _CLOSED:
            return
        if self._response_started:
            self.abort()
            return
        if self._head is None:
            # No request was parsed: frame the error for an HTTP/1.1 client that is closed.
            self._head = RequestHead(b"GET", b"/", b"HTTP/1.1", [])
            self._keep_alive = False
        reason = REASONS.get(status, b"Error")
        body = (
            b"<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body>\n<h1>%s</h1>\n"
            b"<p>%s</p>\n</body></html>\n"
            % (status, reason, reason, _html_escape(message).encode("utf-8"))
        )
        fields: Headers = [
            (b"Date", http_date()),
            (b"Content-Type", b"text/html; charset=utf-8"),
            *(headers or ()),
        ]
        self._responding = True
        self.cork()  # the head and the page as one send, when no caller corked already
        try:
            self.start_response(status, reason, fields, len(body), close=close)
            self.write_body(body)
            if close:
                self._reader = None
                self._state = _WAIT
            self.finish_response()
        finally:
            self.uncork()

    def cork(self) -> None:
        """Hold this connection's writes until the matching :meth:`uncork`.

        Writes go out at once (:func:`~ajpbalancer._transport.write_through`); a member
        connection corks around each read it handles, and this protocol around its own,
        so that a head, a body and a chunked terminator written meanwhile (or an error
        page, a pipelined request's whole answer) leave as one send. Corks nest.
        """
        self._out.cork()

    def uncork(self) -> None:
        """Send what was held when the outermost cork ends (dropped if the connection
        was aborted or lost meanwhile, as Twisted drops its buffer then)."""
        self._out.uncork(self.transport)

    @property
    def corked(self) -> bool:
        return self._out.corked

    def at_uncork(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost cork ends (now, when not corked): a
        member connection written to meanwhile is uncorked then, so that a request's
        head and the body that came with it go to the member as one send too."""
        self._out.at_uncork(callback)

    def register_producer(self, producer: IPushProducer) -> None:
        """The exchange's producer is paused while the client's write buffer is full."""
        if self.transport is not None and self._producer is None and self._state != _CLOSED:
            self._producer = producer
            stream(self.transport).registerProducer(producer, True)

    def unregister_producer(self) -> None:
        if self._producer is not None:
            self._producer = None
            if self.transport is not None:
                stream(self.transport).unregisterProducer()

    # -- connection housekeeping -------------------------------------------------------

    def _close(self, *, abort: bool = False) -> None:
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._cancel_timer()
        self.unregister_producer()
        if self.transport is not None:
            if abort:
                self._out.drop()  # an abort drops what Twisted had buffered, too
                stream(self.transport).abortConnection()
            else:
                self._out.flush(self.transport)  # what was written goes out before the FIN
                self.transport.loseConnection()

    def _arm_timer(self, *, again: bool = False) -> None:
        """Make sure a timer runs; ``again``: the deadline may have moved earlier.

        A pending call that fires no later than the deadline is kept (`_on_timer` arms
        again for the rest): a kept-alive connection then schedules no call per request,
        only one per KeepAliveTimeout or so.
        """
        timer = self._timer
        if timer is not None and timer.active():
            if not again:
                return
            deadline = self._deadline()
            if deadline is None or timer.getTime() <= deadline[0]:
                return
            timer.cancel()
        else:
            deadline = self._deadline()
        self._timer = None
        if deadline is not None:
            delay = max(deadline[0] - self._reactor.seconds(), 0.0)
            self._timer = self._reactor.callLater(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _deadline(self) -> tuple[float, str] | None:
        """When the current wait ends and what it is, or None while nothing is awaited.

        Deadlines only move later as bytes arrive, so the timer is checked lazily: when it
        fires early it is armed again for the rest.
        """
        state = self._state
        limits = self._client_limits
        if state == _HEAD and not self._responding:
            if self._head_start is None:
                return self._last_activity + limits.keep_alive_timeout, "idle"
            stage = limits.header_timeout
            if not stage.timeout:
                return self._last_activity + FALLBACK_READ_TIMEOUT, "head"
            return stage.deadline(self._head_start, self._head_bytes), "head"
        if state == _BODY:
            stage = limits.body_timeout
            if self._pauses:  # the member is not taking the body: not the client's fault
                return self._reactor.seconds() + max(stage.timeout, 1.0), "paused"
            if not stage.timeout:
                return self._last_activity + FALLBACK_READ_TIMEOUT, "body"
            return stage.deadline(self._body_start, self._body_bytes), "body"
        if state == _DISCARD:
            return self._discard_deadline, "discard"
        return None

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline()
        if deadline is None:
            return
        when, what = deadline
        if what == "paused" or when > self._reactor.seconds():
            self._arm_timer()
            return
        if what == "head" and self._buf:
            self.send_error(408, "the request head did not arrive in time", close=True)
        elif what == "body":
            self._body_error(HTTPProtocolError("the request body did not arrive in time", 408))
        else:
            self._close()


def _authority_key(scheme: bytes, authority: bytes) -> bytes:
    """``host[:port]`` compared as Host values are: case-insensitive, default port left out."""
    host = authority.lower().rstrip(b".")
    default = b":443" if scheme == b"https" else b":80"
    if host.endswith(default):
        host = host[: -len(default)]
    return host


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    global _date_cache  # noqa: PLW0603 -- a one-entry cache of the formatted second
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]
