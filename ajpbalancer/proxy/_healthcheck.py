"""Active health checks of members, as mod_proxy_hcheck does them, on an injected clock.

One :class:`HealthChecker` per member whose ``hcmethod`` is set probes the member every
``hcinterval`` seconds, whether or not any request comes, over a connection of its own
(never one of the pool's). :class:`HealthCount` turns the results into the member's
``C`` flag (``Status.HC_FAIL``): set after ``hcfails`` consecutive failures, cleared (with
``E``) after ``hcpasses`` consecutive passes. A member with ``C`` is not usable, so it
gets no traffic until it passes again.

Probes (``hcmethod``), with what passes:

* ``TCP``: the connection is made (then closed at once);
* ``CPING`` (``ajp://`` only): a CPONG answers our CPING on a fresh AJP connection;
* ``GET``, ``HEAD``, ``OPTIONS`` to an ``http://``/``https://`` member: httpd's request,
  ``METHOD PATH HTTP/1.0`` with ``Host: host:port`` (and ``Connection: close``), where
  PATH is the member URL's path followed by ``hcuri`` (``/`` if both are empty) and is
  ``*`` for ``OPTIONS`` (httpd sends ``OPTIONS * HTTP/1.0`` and ignores ``hcuri``); a
  2xx or 3xx status line passes. The answer is parsed with :mod:`ajpbalancer.h1`; for
  ``GET`` the body is read to its end or to :data:`PROBE_BODY_LIMIT` bytes, and a
  connection cut inside it fails the probe, as httpd's ``hc_read_body`` does;
* ``GET``, ``HEAD``, ``OPTIONS`` to an ``ajp://`` member: the same request as an AJP
  FORWARD_REQUEST (protocol ``HTTP/1.0``, the ``Host`` header, the member's ``secret``,
  its ``packetsize``); a SEND_HEADERS with a 2xx or 3xx status passes. httpd itself
  writes its HTTP/1.0 text to the AJP port, which Tomcat's connector rejects (bad
  magic), so with httpd such a check can never pass; we speak AJP instead.

Time limits: connecting is bounded by the member's ``connectiontimeout`` (which defaults
to its ``timeout``); the answer, counted from the moment the connection is made, by
``timeout`` (``ProxyTimeout`` when unset) for GET/HEAD/OPTIONS and by ``ping``, else
``connectiontimeout``, else ``timeout`` for CPING (httpd's ``hc_check_cping`` order).

Scheduling is httpd's watchdog: the first probe runs ``hcinterval`` after :meth:`start`,
each next one ``hcinterval`` after the previous one ended, so there is never more than
one probe of a member at a time however long a probe takes. A stopped (``S``) member is
not probed (httpd skips it too).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ajpbalancer._transport import stream
from ajpbalancer.ajp import (
    AJPProtocolError,
    ClientConnection,
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
)
from ajpbalancer.balancer import MemberState, Status
from ajpbalancer.config import Scheme
from ajpbalancer.h1 import (
    DEFAULT_LIMITS,
    BodyReader,
    HTTPProtocolError,
    find_head_end,
    parse_response_head,
    response_body_reader,
)

if TYPE_CHECKING:
    from ajpbalancer.members import MemberRuntime

log = Logger()

PROBE_BODY_LIMIT = 64 * 1024
"""The most response body bytes a GET probe reads before it closes the connection."""

PROBE_HEAD_LIMIT = DEFAULT_LIMITS.max_head
"""The largest response head a GET/HEAD/OPTIONS probe accepts."""

HTTP_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def passing_status(status: int) -> bool:
    """mod_proxy_hcheck's default condition: any 2xx or 3xx status passes."""
    return 200 <= status <= 399


# --- counting (sans-I/O) ------------------------------------------------------------------


class Change(enum.Enum):
    """What one probe result did to the member."""

    FAILED = "failed"
    """``hcfails`` consecutive failures: ``C`` was set."""
    PASSED = "passed"
    """``hcpasses`` consecutive passes of a member with ``C`` or ``E``: both cleared."""


@dataclass(slots=True)
class HealthCount:
    """mod_proxy_hcheck's ``fcount``/``pcount`` on one member, counting consecutive results.

    A failure while ``C`` is not set counts towards ``hcfails`` (also while ``E`` is set:
    a member put in error by a failed request still gets ``C`` when its checks fail, so
    ``retry`` cannot send it traffic before it passes again); a pass resets that count.
    A pass while ``C`` or ``E`` is set counts towards ``hcpasses``, a failure resets it;
    ``hcpasses`` of them clear both flags, as httpd's "Health check ENABLING" does.
    httpd resets neither count on the opposite result; here the results must be
    consecutive.
    """

    state: MemberState
    passes: int
    fails: int
    pcount: int = 0
    fcount: int = 0

    def record(self, passed: bool) -> Change | None:
        """Count one probe result; the change it made to the member's flags, if any."""
        state = self.state
        if passed:
            self.fcount = 0
            if not state.has(Status.HC_FAIL | Status.IN_ERROR):
                self.pcount = 0
                return None
            self.pcount += 1
            if self.pcount < self.passes:
                return None
            self.pcount = 0
            state.set_status(Status.HC_FAIL | Status.IN_ERROR, False)
            return Change.PASSED
        self.pcount = 0
        if state.has(Status.HC_FAIL):
            return None
        self.fcount += 1
        if self.fcount < self.fails:
            return None
        self.fcount = 0
        state.set_status(Status.HC_FAIL, True)
        return Change.FAILED


@dataclass(frozen=True, slots=True)
class Outcome:
    """One probe's result and why, for logs and tests."""

    passed: bool
    reason: str


Finish = Callable[[bool, str], None]


# --- probes (Twisted protocols on a fresh connection) ------------------------------------


class _Probe(Protocol):
    """A probe connection. The checker reports its result; the probe only says pass/fail.

    ``finish`` may be called any number of times; only the first call counts (the
    checker ignores the rest). ``done`` is set by the checker when the probe is over.
    """

    def __init__(self, finish: Finish, connected: Callable[[], None]) -> None:
        self._finish = finish
        self._connected = connected
        self.done = False

    def connectionMade(self) -> None:
        if self.done:  # the connection came after the probe gave up on it
            stream(self.transport).abortConnection()
            return
        self._connected()
        self.start()

    def start(self) -> None:
        """The connection is up: send what the probe sends."""

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.done:
            self.lost()

    def lost(self) -> None:
        self._finish(False, "the member closed the connection before answering")


class _TCPProbe(_Probe):
    def start(self) -> None:
        self._finish(True, "connected")


class _CPingProbe(_Probe):
    def __init__(self, finish: Finish, connected: Callable[[], None], packet_size: int) -> None:
        super().__init__(finish, connected)
        self._codec = ClientConnection(max_packet_size=packet_size)

    def start(self) -> None:
        self.transport.write(self._codec.send(CPing()))  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        try:
            events = self._codec.receive_data(data)
        except AJPProtocolError as e:
            self._finish(False, f"malformed answer to CPING: {e}")
            return
        if any(isinstance(event, CPong) for event in events):
            self._finish(True, "CPONG")


class _HTTPProbe(_Probe):
    """GET/HEAD/OPTIONS over HTTP/1.0; the status line decides, a GET body is drained."""

    def __init__(
        self, finish: Finish, connected: Callable[[], None], method: bytes, request: bytes
    ) -> None:
        super().__init__(finish, connected)
        self._method = method
        self._request = request
        self._buffer = b""
        self._reader: BodyReader | None = None
        self._status = 0
        self._body = 0

    def start(self) -> None:
        self.transport.write(self._request)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        try:
            if self._reader is None:
                self._head(data)
            else:
                self._feed(data)
        except HTTPProtocolError as e:
            self._finish(False, f"malformed answer: {e}")

    def _head(self, data: bytes) -> None:
        self._buffer += data
        end = find_head_end(self._buffer, PROBE_HEAD_LIMIT, 502)
        if end < 0:
            return
        head = parse_response_head(self._buffer[:end])
        rest, self._buffer = self._buffer[end:], b""
        self._status = status = head.status
        if not passing_status(status):
            self._finish(False, f"status {status}")
            return
        reader, _length = response_body_reader(head, self._method)
        if self._method != b"GET" or reader is None:
            self._finish(True, f"status {status}")
            return
        self._reader = reader
        self._feed(rest)

    def _feed(self, data: bytes) -> None:
        assert self._reader is not None
        pieces, after = self._reader.feed(data)
        self._body += sum(len(p) for p in pieces)
        if after is not None or self._body >= PROBE_BODY_LIMIT:
            self._finish(True, f"status {self._status}")

    def lost(self) -> None:
        if self._reader is None:
            super().lost()
            return
        try:
            self._reader.eof()
        except HTTPProtocolError:
            self._finish(False, "the member closed the connection inside the body")
        else:
            self._finish(True, f"status {self._status}")


class _AJPRequestProbe(_Probe):
    """GET/HEAD/OPTIONS as a FORWARD_REQUEST; SEND_HEADERS decides, a GET body is drained."""

    def __init__(
        self,
        finish: Finish,
        connected: Callable[[], None],
        packet_size: int,
        request: Callable[[bytes], ForwardRequest],
    ) -> None:
        super().__init__(finish, connected)
        self._codec = ClientConnection(max_packet_size=packet_size)
        self._request = request
        self._method = b""
        self._status = 0
        self._body = 0

    def start(self) -> None:
        transport = stream(self.transport)
        host = transport.getHost()
        local = getattr(host, "host", None)
        request = self._request(local.encode("ascii") if isinstance(local, str) else b"")
        self._method = request.method
        transport.write(self._codec.send(request))

    def dataReceived(self, data: bytes) -> None:
        try:
            events = self._codec.receive_data(data)
            for event in events:
                if isinstance(event, GetBodyChunk):
                    # The probe has no body: answer with the end-of-body packet.
                    self.transport.write(self._codec.send(RequestBody(data=b"")))  # type: ignore[union-attr]
                elif isinstance(event, SendHeaders):
                    self._status = status = event.status
                    if not passing_status(status):
                        self._finish(False, f"status {status}")
                        return
                    if self._method != b"GET":
                        self._finish(True, f"status {status}")
                        return
                elif isinstance(event, SendBodyChunk):
                    self._body += len(event.data)
                    if self._body >= PROBE_BODY_LIMIT:
                        self._finish(True, f"status {self._status}")
                        return
                elif isinstance(event, EndResponse):
                    self._finish(True, f"status {self._status}")
                    return
        except AJPProtocolError as e:
            self._finish(False, f"malformed AJP answer: {e}")


class _ProbeFactory(Factory):
    """Hands the endpoint the probe built beforehand; quiet."""

    noisy = False

    def __init__(self, probe: _Probe) -> None:
        self._probe = probe

    def buildProtocol(self, addr: IAddress | None) -> _Probe:
        return self._probe


# --- the checker --------------------------------------------------------------------------


class HealthChecker:
    """Probes one member on the clock and keeps its ``C`` flag (see the module docstring)."""

    def __init__(self, reactor: IReactorTime, member: MemberRuntime) -> None:
        params = member.params
        if params.hcmethod is None:
            raise ValueError(f"member {member.name} has no hcmethod")
        self.reactor = reactor
        self.member = member
        self.method = params.hcmethod
        self.interval = params.hcinterval
        self.count = HealthCount(member.lb, passes=params.hcpasses, fails=params.hcfails)
        self.connect_timeout = member.connect_timeout
        if self.method == "CPING":
            self.answer_timeout = params.ping if params.ping > 0 else member.connect_timeout
        else:
            self.answer_timeout = member.timeout
        url = member.url
        port = url.effective_port
        host = f"[{url.host}]" if ":" in url.host else url.host
        self.host_header = f"{host}:{port}".encode("idna")
        if self.method == "OPTIONS":
            self.target = b"*"
        else:
            path = url.path.rstrip("/") + params.hcuri
            self.target = (path or "/").encode("ascii")
        self.probes = 0
        """Probes started so far."""
        self.last: Outcome | None = None
        """The last probe's result."""
        self._running = False
        self._call: IDelayedCall | None = None
        self._timer: IDelayedCall | None = None
        self._probe: _Probe | None = None
        self._connecting: Deferred[Any] | None = None  # the endpoint's, until connected

    # -- public ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._running

    @property
    def probing(self) -> bool:
        """A probe is in progress."""
        return self._probe is not None

    def start(self) -> None:
        """Probe every ``hcinterval`` seconds from now on (the first one after one interval)."""
        if self._running:
            return
        self._running = True
        self._schedule()

    def stop(self) -> None:
        """Stop probing: cancel the next probe and drop the one in progress, uncounted."""
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        probe, connecting = self._probe, self._connecting
        if probe is not None:
            self._end(probe)
            if probe.transport is not None:
                stream(probe.transport).abortConnection()
            elif connecting is not None:
                connecting.cancel()

    def request_head(self) -> bytes:
        """The HTTP/1.0 request an HTTP member gets (httpd's ``create_hcheck_req``)."""
        return b"%s %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" % (
            self.method.encode("ascii"),
            self.target,
            self.host_header,
        )

    def forward_request(self, local_addr: bytes) -> ForwardRequest:
        """The FORWARD_REQUEST an AJP member gets for a GET/HEAD/OPTIONS check."""
        url = self.member.url
        port = url.effective_port
        assert port is not None
        return ForwardRequest(
            method=self.method.encode("ascii"),
            protocol=b"HTTP/1.0",
            uri=self.target,
            remote_addr=local_addr or b"127.0.0.1",
            server_name=url.host.encode("idna"),
            server_port=port,
            is_ssl=False,
            headers=((b"Host", self.host_header),),
            secret=self.member.secret,
        )

    # -- machinery ---------------------------------------------------------------------

    def _schedule(self) -> None:
        self._call = self.reactor.callLater(self.interval, self._run)

    def _build(self) -> _Probe:
        member = self.member
        packet_size = member.params.packetsize
        if self.method == "TCP":
            return _TCPProbe(self._finish, self._connected)
        if self.method == "CPING":
            return _CPingProbe(self._finish, self._connected, packet_size)
        assert self.method in HTTP_METHODS
        if member.url.scheme is Scheme.AJP:
            return _AJPRequestProbe(
                self._finish, self._connected, packet_size, self.forward_request
            )
        return _HTTPProbe(
            self._finish, self._connected, self.method.encode("ascii"), self.request_head()
        )

    def _run(self) -> None:
        self._call = None
        if self.member.lb.has(Status.STOPPED):
            self._schedule()
            return
        self.probes += 1
        probe = self._probe = self._build()
        self._timer = self.reactor.callLater(self.connect_timeout, self._connect_timed_out)
        d = self.member.endpoint.connect(_ProbeFactory(probe))
        if self._probe is probe and not probe.done:
            self._connecting = d
        d.addErrback(self._connect_failed, probe)

    def _connected(self) -> None:
        """The probe's connection is up: from now on the answer timeout runs."""
        self._connecting = None
        self._cancel_timer()
        self._timer = self.reactor.callLater(self.answer_timeout, self._answer_timed_out)

    def _connect_failed(self, reason: Failure, probe: _Probe) -> None:
        if self._probe is probe:
            self._finish(False, f"cannot connect: {reason.getErrorMessage()}")

    def _connect_timed_out(self) -> None:
        self._timer = None
        d, self._connecting = self._connecting, None
        self._finish(False, f"no connection within {self.connect_timeout:g}s")
        if d is not None:
            d.cancel()

    def _answer_timed_out(self) -> None:
        self._timer = None
        self._finish(False, f"no answer within {self.answer_timeout:g}s")

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _end(self, probe: _Probe) -> None:
        probe.done = True
        self._probe = None
        self._connecting = None
        self._cancel_timer()

    def _finish(self, passed: bool, reason: str) -> None:
        """The probe in progress is over: close its connection, count, log, schedule."""
        probe = self._probe
        if probe is None or probe.done:
            return
        self._end(probe)
        if probe.transport is not None:
            transport = stream(probe.transport)
            if passed:
                transport.loseConnection()
            else:
                transport.abortConnection()
        self.last = Outcome(passed, reason)
        change = self.count.record(passed)
        if change is Change.FAILED:
            log.warn(
                "member {member} failed its health check ({hcmethod}: {reason}); "
                "no traffic until it passes",
                member=self.member.name,
                hcmethod=self.method,
                reason=reason,
            )
        elif change is Change.PASSED:
            log.info(
                "member {member} passed its health check ({hcmethod}: {reason}); back in service",
                member=self.member.name,
                hcmethod=self.method,
                reason=reason,
            )
        if self._running:
            self._schedule()
