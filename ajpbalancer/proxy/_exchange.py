"""One proxied request: route it, pick a member, stream both ways, answer errors.

The exchange sits between a :class:`~ajpbalancer.channel.Channel` (the client side) and
a member connection. It is the client transport's producer while the response streams (a slow
client pauses the member connection) and it pauses reading from the client while the
member connection is not ready or cannot take more body. It decides what a failure
means for the client: 503 when no member could be reached, 504 on a timeout, 502 on a
broken or malformed answer, and a closed connection once the response has begun. A
request that failed on a reused keep-alive connection before anything of its body was
sent is tried once more on a fresh connection (the member may have closed the idle
connection as we reused it); a request whose body was sent is never resent.

A request that asks to switch protocols is an :class:`~ajpbalancer.proxy._upgrade.
UpgradeExchange` instead (the frontend context chooses): this class's path stays free of
upgrades, which only refuses a ``101`` nobody asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from ajpbalancer.balancer import post_request
from ajpbalancer.channel import Channel, PauseReason
from ajpbalancer.config import Scheme
from ajpbalancer.errors import AJPBalancerError
from ajpbalancer.h1 import BodyMode, Headers, HTTPProtocolError, Request
from ajpbalancer.headers import http_date, response_fields
from ajpbalancer.members import (
    FailureKind,
    MemberConnection,
    MemberError,
    MemberRequest,
    MemberRuntime,
    OutgoingRequest,
)
from ajpbalancer.proxy._balancers import BalancerRuntime
from ajpbalancer.proxy._observer import ExchangeObserver
from ajpbalancer.rewrite import request_base
from ajpbalancer.routing import RoutingError, split_target
from ajpbalancer.tunnel import TunnelEnd

if TYPE_CHECKING:
    from ajpbalancer.proxy._context import FrontendContext

log = Logger()

# Enum members are looked up through their class's metaclass at every `Enum.MEMBER`
# (about 100 ns each in CPython 3.11); the hot path compares with these aliases.
_BODY_CHUNKED = BodyMode.CHUNKED
_FAILURE_REJECTED = FailureKind.REJECTED
_BODY_NONE = BodyMode.NONE
_PAUSE_BACKPRESSURE = PauseReason.BACKPRESSURE
_PAUSE_MEMBER = PauseReason.MEMBER
_SCHEME_BALANCER = Scheme.BALANCER

# Methods safe to send again after a member failed without answering (RFC 9110 §9.2.2).
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})


class ProxyExchange:
    """See the module docstring."""

    def __init__(
        self,
        ctx: FrontendContext,
        channel: Channel,
        request: Request,
    ) -> None:
        self._ctx = ctx
        self._channel = channel
        self._head = request.head
        self._length = request.length
        self._body = body = request.body
        self._chunked = body is _BODY_CHUNKED
        self._has_body = has_body = body is not _BODY_NONE
        self._expect_continue = request.expect_continue
        self._body_done = not has_body
        self._pending: list[bytes] = []
        self._conn: MemberConnection | None = None
        self._cancel: Callable[[], None] | None = None
        self._member: MemberRuntime | None = None
        self._payload: MemberRequest = b""
        self._request: OutgoingRequest | None = None
        self._balancer: BalancerRuntime | None = None
        self._attempts = 0
        self._wait_call: IDelayedCall | None = None
        self._public_base: bytes | None = None
        self._retried = False
        self._reused = False
        self._body_written = 0
        self._finished = False
        self._status = 0
        self._sent_bytes = 0
        self._started = ctx.reactor.seconds()
        self._member_started = self._started
        ctx.in_flight.add(self)
        self._start()

    # -- setting out -------------------------------------------------------------------

    def _start(self) -> None:
        head = self._head
        try:
            path, query = split_target(head.target.decode("ascii"))
            match = self._ctx.router.match(path)
        except RoutingError as e:
            self._error(e.status, str(e))
            return
        if match is None:
            self._error(404, "no rule matches this path")
            return
        expect = head.get(b"expect")
        if expect is not None and expect.lower() != b"100-continue":
            self._error(417, "unsupported expectation")
            return
        self._request = OutgoingRequest(
            head=head,
            path=match.path.encode("ascii"),
            query=None if query is None else query.encode("ascii"),
            length=self._length,
            chunked=self._chunked,
            client=self._channel.client_info(),
        )
        target = match.target
        if target.scheme is _SCHEME_BALANCER:
            self._balancer = self._ctx.balancers[target.host]
            self._choose()
            return
        member = self._ctx.direct_members[id(match.rule)]
        state = member.lb
        if not state.usable:
            state.retry_member(self._ctx.reactor.seconds())  # clears E once retry passed
            if not state.usable:
                self._error(503, f"member {member.name} is in error state")
                return
        state.request_started()
        self._go(member, self._request)

    def _choose(self) -> None:
        """One attempt to pick a balancer member (sticky route first, then the lbmethod)."""
        self._wait_call = None
        balancer = self._balancer
        assert balancer is not None
        now = self._ctx.reactor.seconds()
        cookies = [v for n, v in self._head.headers if n.lower() == b"cookie"]
        member, selection = balancer.select(self._head.target, cookies, now)
        if member is None:
            timeout = balancer.params.timeout
            if timeout and now + timeout / 100 < self._started + timeout:
                # Apache's balancer timeout: look again until a member is usable.
                self._channel.pause_reading(_PAUSE_MEMBER)
                self._wait_call = self._ctx.reactor.callLater(timeout / 100, self._choose)
                return
            if selection.route is not None and balancer.params.nofailover:
                self._error(503, f"all members are in error state for route {selection.route}")
            else:
                self._error(503, "no usable member in the balancer")
            return
        route = None if selection.route is None else selection.route.encode("ascii")
        assert self._request is not None
        r = self._request
        self._go(
            member,
            OutgoingRequest(
                head=r.head,
                path=r.path,
                query=r.query,
                length=r.length,
                chunked=r.chunked,
                client=r.client,
                route=route,
            ),
        )

    def _go(self, member: MemberRuntime, request: OutgoingRequest) -> None:
        """Send ``request`` to ``member`` (whose busy count the caller raised)."""
        self._member = member
        if self._ctx.observer is not None:  # only the metrics need when the member began
            self._member_started = self._ctx.reactor.seconds()
        try:
            self._payload = member.prepare(request, self._ctx.frontend, self._ctx.server_name)
        except HTTPProtocolError as e:
            self._refused(e.status, e.message)
            return
        except AJPBalancerError as e:
            self._refused(400, str(e))
            return
        self._acquire(fresh=False)

    def _refused(self, status: int, message: str) -> None:
        """The request cannot be expressed to the member chosen for it (nothing was sent):
        that is the request's fault, not the member's, so no member is charged with it
        (not busy, not elected) and the access log names none."""
        member, self._member = self._member, None
        if member is not None:
            member.lb.request_refused()
        self._error(status, message)

    def _acquire(self, *, fresh: bool) -> None:
        assert self._member is not None
        if not self._body_done:
            self._channel.pause_reading(_PAUSE_MEMBER)
        self._cancel = self._member.pool.acquire(self._connected, self._not_connected, fresh=fresh)

    def _connected(self, conn: MemberConnection, reused: bool) -> None:
        self._cancel = None
        if self._finished:
            self._release_unused(conn)
            return
        self._conn = conn
        self._reused = reused
        outbox = self._ctx.outbox
        outbox.hold()  # the head, the body that waited for the connection and its end: one send
        try:
            conn.send_request(self, self._head.method, self._payload, self._body)
            if self._finished or self._conn is None:
                return
            for piece in self._pending:
                conn.write_body(piece)
                self._add_sent(len(piece))
                self._body_written += len(piece)
            self._pending = []
            if self._body_done and self._has_body:
                conn.end_body()
        finally:
            outbox.release()
        if not self._body_done:
            if self._expect_continue:
                self._expect_continue = False
                self._channel.send_continue()
            self._channel.resume_reading(_PAUSE_MEMBER)

    def _release_unused(self, conn: MemberConnection) -> None:
        """A connection came after the exchange ended: back to the pool it came from."""
        assert self._member is not None
        self._member.pool.release(conn, True)

    def _not_connected(self, error: MemberError) -> None:
        self._cancel = None
        self._fail(error)

    # -- the client's body (called by the frontend) --------------------------------------

    def body_data(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            if not self._finished:
                self._pending.append(data)
            return
        conn.write_body(data)
        self._add_sent(len(data))
        self._body_written += len(data)

    def body_end(self) -> None:
        self._body_done = True
        if self._conn is not None and self._has_body:
            self._conn.end_body()

    def client_gone(self) -> None:
        if self._finished:
            return
        if self._wait_call is not None and self._wait_call.active():
            self._wait_call.cancel()
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
        self._finish(self._status or 499)

    # -- the member's answer (ResponseSink) ---------------------------------------------

    def member_response(
        self, status: int, reason: bytes, headers: Headers, length: int | None
    ) -> None:
        self._status = status
        balancer, member = self._balancer, self._member
        if (
            balancer is not None
            and member is not None
            and balancer.params.failonstatus
            and post_request(member.lb, balancer.params, status, False, self._ctx.reactor.seconds())
        ):
            log.warn(
                "member {member} in error: it answered {status}", member=member.name, status=status
            )
        out, has_date = response_fields(headers)
        if not has_date:
            # RFC 9110 §6.6.1: a forwarder with a clock adds the Date a member left out
            # (Tomcat sends none over AJP), as Apache does.
            out.append((b"Date", http_date()))
        reverse = self._ctx.reverse
        if reverse is not None:
            out = reverse.headers(out, self._base)
        self._channel.start_response(status, reason, out, length)
        self._channel.register_producer(self)

    def member_body(self, data: bytes) -> None:
        self._sent_bytes += len(data)
        assert self._member is not None
        self._member.lb.add_traffic(received=len(data))
        self._channel.write_body(data)

    def member_done(self) -> None:
        self._conn = None
        self._channel.finish_response()
        self._finish(self._status)

    def member_failed(self, error: MemberError) -> None:
        self._conn = None
        self._fail(error)

    def member_switched(self, reason: bytes, headers: Headers, end: TunnelEnd) -> None:
        """A ``101`` to a request that did not ask to switch (its connection once carried
        one that did, answered otherwise): a broken answer."""
        end.abort()
        self.member_failed(
            MemberError(
                FailureKind.PROTOCOL,
                "member switched protocols unasked",
                request_sent=True,
                response_started=False,
            )
        )

    def pause_request_body(self) -> None:
        # A reason of its own: _connected lifting the MEMBER pause must not lift this one.
        self._channel.pause_reading(_PAUSE_BACKPRESSURE)

    def resume_request_body(self) -> None:
        self._channel.resume_reading(_PAUSE_BACKPRESSURE)

    # -- the client transport's producer (Twisted's IPushProducer) --------------------

    def pauseProducing(self) -> None:
        if self._conn is not None:
            self._conn.pause_response()

    def resumeProducing(self) -> None:
        if self._conn is not None:
            self._conn.resume_response()

    def stopProducing(self) -> None:
        self.client_gone()

    # -- endings ---------------------------------------------------------------------------

    def _fail(self, error: MemberError) -> None:
        if self._finished:
            return
        member = self._member
        assert member is not None
        if error.kind is _FAILURE_REJECTED:
            self._refused(error.status, error.message)
            return
        if (
            error.kind is FailureKind.BROKEN
            and self._reused
            and not self._retried
            and not error.response_started
            and not self._body_written
        ):
            # A keep-alive connection the member had closed: once more on a new one.
            self._retried = True
            self._reused = False
            self._acquire(fresh=True)
            return
        log.warn("member {member} failed: {message}", member=member.name, message=error.message)
        if error.response_started or self._channel_started():
            self._channel.abort()
            self._finish(self._status or error.status)
            return
        if self._failover(member, error):
            return
        self._error(error.status, error.message)

    def _failover(self, member: MemberRuntime, error: MemberError) -> bool:
        """Put a failed member in error as mod_proxy does; try the next one if that is safe."""
        now = self._ctx.reactor.seconds()
        balancer = self._balancer
        kind = error.kind
        if kind in (FailureKind.REFUSED, FailureKind.CONNECT_TIMEOUT, FailureKind.BROKEN):
            if member.lb.put_in_error(now):
                log.warn(
                    "member {member} in error for {retry}s",
                    member=member.name,
                    retry=member.lb.retry,
                )
        elif kind is FailureKind.TIMEOUT and balancer is not None:
            post_request(member.lb, balancer.params, 504, True, now)
        if balancer is None or self._attempts >= balancer.max_attempts or self._body_written:
            return False
        unsent = (
            kind in (FailureKind.REFUSED, FailureKind.CONNECT_TIMEOUT) or not error.request_sent
        )
        resendable = self._head.method in IDEMPOTENT and (
            kind is FailureKind.BROKEN
            or (kind is FailureKind.TIMEOUT and balancer.params.failontimeout)
        )
        if not (unsent or resendable):
            return False
        member.lb.request_done()
        if self._ctx.observer is not None:
            self._ctx.observer.failover(balancer.name, member.name)
        self._member = None
        self._conn = None
        self._attempts += 1
        self._reused = self._retried = False
        self._choose()
        return True

    def _add_sent(self, n: int) -> None:
        if self._member is not None:
            self._member.lb.add_traffic(sent=n)

    def _base(self) -> bytes:
        """The frontend's ``scheme://host[:port]`` as this client addressed it (as httpd's
        ``ap_construct_url`` writes it: see :func:`request_base`)."""
        if self._public_base is None:
            client = self._channel.client_info()
            self._public_base = request_base(
                "https" if self._channel.is_ssl else "http",
                self._head.get(b"host"),
                client.local_ip.decode("ascii"),
                client.local_port,
            )
        return self._public_base

    def _channel_started(self) -> bool:
        return self._status != 0

    def _error(self, status: int, message: str) -> None:
        self._status = status
        self._channel.send_error(status, message)
        self._finish(status)

    def _finish(self, status: int) -> None:
        if self._finished:
            return
        self._finished = True
        self._ctx.in_flight.discard(self)
        if self._wait_call is not None and self._wait_call.active():
            self._wait_call.cancel()
        if self._member is not None:
            self._member.lb.request_done()
        access_log = self._ctx.access_log
        if access_log is not None:
            access_log.log(
                self._channel.client_info().ip,
                self._head,
                status,
                self._sent_bytes,
                self._member.name if self._member is not None else "-",
            )
        if self._ctx.observer is not None:
            self._observe(self._ctx.observer, status)

    def _observe(self, observer: ExchangeObserver, status: int) -> None:
        """The metrics hook: this request's status and latencies (see :mod:`._observer`)."""
        now = self._ctx.reactor.seconds()
        member, balancer = self._member, self._balancer
        observer.request_done(
            self._ctx.frontend.name,
            None if balancer is None else balancer.name,
            None if member is None else member.name,
            status=status,
            seconds=now - self._started,
            member_seconds=None if member is None else now - self._member_started,
        )
