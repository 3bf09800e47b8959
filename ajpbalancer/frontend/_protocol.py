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

from ajpbalancer._transport import no_delay, stream
from ajpbalancer.connection import ClientInfo
from ajpbalancer.frontend._tls import tls_info
from ajpbalancer.h1 import (
    DEFAULT_LIMITS,
    BodyReader,
    Headers,
    HeadLimits,
    HTTPProtocolError,
    RequestHead,
    find_head_end,
    header_values,
    parse_request_head,
    request_body_reader,
)

_HEAD, _BODY, _WAIT, _DISCARD, _CLOSED = range(5)

# RFC 9110 §7.2 Host: uri-host [ ":" port ]: a reg-name (unreserved, pct-encoded,
# sub-delims) or an IP literal in brackets; a ":" must be followed by a port (Apache
# answers 400 to "Host: example.org:", as here).
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{1,5})?")

REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
MAX_DISCARD = 1 << 20
DISCARD_SECONDS = 5.0


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
        limits: HeadLimits = DEFAULT_LIMITS,
        idle_timeout: float = 60.0,
        on_close: Callable[[FrontendProtocol], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self._exchange_factory = exchange_factory
        self._limits = limits
        self._idle_timeout = idle_timeout
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
        self._producer: IPushProducer | None = None
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
        self._arm_timer()
        no_delay(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self._last_activity = self._reactor.seconds()
        state = self._state
        if state in (_BODY, _DISCARD):
            self._feed_body(data)
        elif state != _CLOSED:
            self._buf += data
            if state == _HEAD:
                self._advance()
            elif len(self._buf) > self._limits.max_head:
                self.pause_reading("pipeline")

    def connectionLost(self, reason: TwistedFailure | None = None) -> None:
        self._state = _CLOSED
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
            if not buf:
                return
            try:
                end = find_head_end(buf, self._limits.max_head, 431)
                if end < 0:
                    nl = buf.find(b"\r\n")
                    if (nl < 0 and len(buf) > self._limits.max_line) or nl > self._limits.max_line:
                        raise HTTPProtocolError("request line too long", 414)
                    return
                head = parse_request_head(buf[:end], self._limits)
                self._buf = buf[end:]
                self._check_head(head)
                reader, length = request_body_reader(head)
            except HTTPProtocolError as e:
                self.send_error(e.status, e.message, close=True)
                return
            self._begin(head, reader, length)

    def _check_head(self, head: RequestHead) -> None:
        hosts = [v for n, v in head.headers if n.lower() == b"host"]
        if len(hosts) > 1:
            raise HTTPProtocolError("several Host fields", 400)
        if head.version == b"HTTP/1.1" and not hosts:
            raise HTTPProtocolError("missing Host field", 400)
        if hosts and hosts[0] and _HOST.fullmatch(hosts[0]) is None:
            raise HTTPProtocolError("invalid Host field", 400)

    def _begin(self, head: RequestHead, reader: BodyReader | None, length: int | None) -> None:
        self.requests += 1
        self._head = head
        self._responding = True
        self._response_started = False
        connection = [t.lower() for t in header_values(head.headers, b"connection")]
        if head.version == b"HTTP/1.1":
            self._keep_alive = b"close" not in connection
        else:
            self._keep_alive = b"keep-alive" in connection
        self._reader = reader
        self._state = _BODY if reader is not None else _WAIT
        number = self.requests
        exchange = self._exchange_factory(self, head, length, reader is not None and length is None)
        if self.requests != number:
            return  # answered at once, and a pipelined request already took over
        if self._responding:
            self._exchange = exchange
        if self._state in (_BODY, _DISCARD):
            if self._buf:
                data, self._buf = self._buf, b""
                self._feed_body(data)
        elif self._state == _WAIT and self._responding:
            exchange.body_end()

    def _feed_body(self, data: bytes) -> None:
        reader = self._reader
        assert reader is not None
        try:
            pieces, rest = reader.feed(data)
        except HTTPProtocolError as e:
            self._body_error(e)
            return
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
        if not self._pauses and self.transport is not None:
            stream(self.transport).pauseProducing()
        self._pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
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
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

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
        self.transport.write(b"".join(parts))

    def write_body(self, data: bytes) -> None:
        if self._no_body or not data or self.transport is None or self._state == _CLOSED:
            return
        if self._chunked_out:
            self.transport.writeSequence([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.transport.write(data)

    def finish_response(self) -> None:
        """The response is complete: keep the connection for the next request, or close."""
        if self._state == _CLOSED:
            return
        if self._chunked_out and self.transport is not None:
            self.transport.write(b"0\r\n\r\n")
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
            return
        self._next_request()

    def _next_request(self) -> None:
        self._state = _HEAD
        self._head = None
        self.resume_reading("pipeline")
        self._last_activity = self._reactor.seconds()
        self._arm_timer()
        if self._buf:
            self._advance()

    def abort(self) -> None:
        """The response cannot be completed: the client must not mistake it for whole."""
        self._exchange = None
        self._responding = False
        self._close(abort=True)

    def send_error(self, status: int, message: str, *, close: bool = False) -> None:
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
        headers: Headers = [
            (b"Date", http_date()),
            (b"Content-Type", b"text/html; charset=utf-8"),
        ]
        self._responding = True
        self.start_response(status, reason, headers, len(body), close=close)
        self.write_body(body)
        if close:
            self._reader = None
            self._state = _WAIT
        self.finish_response()

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
                stream(self.transport).abortConnection()
            else:
                self.transport.loseConnection()

    def _arm_timer(self) -> None:
        if self._timer is None or not self._timer.active():
            self._timer = self._reactor.callLater(self._idle_timeout, self._check_idle)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _check_idle(self) -> None:
        self._timer = None
        if self._state != _HEAD or self._responding:
            return
        idle = self._reactor.seconds() - self._last_activity
        if idle < self._idle_timeout:
            self._timer = self._reactor.callLater(self._idle_timeout - idle, self._check_idle)
            return
        if self._buf:
            self.send_error(408, "the request head did not arrive in time", close=True)
        else:
            self._close()


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    global _date_cache  # noqa: PLW0603 -- a one-entry cache of the formatted second
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]
