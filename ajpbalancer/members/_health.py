"""Active health checks of members, as mod_proxy_hcheck does them, on an injected clock.

One :class:`HealthChecker` per member whose ``hcmethod`` is set probes the member every
``hcinterval`` seconds, whether or not any request comes, over a connection of its own
(never one of the pool's). :class:`HealthCount` turns the results into the member's
``C`` flag (``Status.HC_FAIL``): set after ``hcfails`` consecutive failures, cleared (with
``E``) after ``hcpasses`` consecutive passes. A member with ``C`` is not usable, so it
gets no traffic until it passes again.

A probe's connection is the member's own connection class (:class:`HTTPMemberConnection`
or :class:`AJPMemberConnection`), opened fresh by :meth:`MemberRuntime.open_connection`
with callbacks that leave the pool alone; the checker is the connection's
:class:`ResponseSink`, so the answer is read by the same code as a request's.

Probes (``hcmethod``), with what passes:

* ``TCP``: the connection is made (then closed at once);
* ``CPING`` (``ajp://`` only): a CPONG answers our CPING on a fresh AJP connection
  (:meth:`AJPMemberConnection.send_cping`);
* ``GET``, ``HEAD``, ``OPTIONS`` to an ``http://``/``https://`` member: httpd's request,
  ``METHOD PATH HTTP/1.0`` with ``Host: host:port`` (and ``Connection: close``), where
  PATH is the member URL's path followed by ``hcuri`` (``/`` if both are empty) and is
  ``*`` for ``OPTIONS`` (httpd sends ``OPTIONS * HTTP/1.0`` and ignores ``hcuri``); the
  first status line decides: a 2xx or 3xx passes. For ``GET`` the body is read to its
  end or to :data:`PROBE_BODY_LIMIT` bytes, and a connection cut inside it fails the
  probe, as httpd's ``hc_read_body`` does;
* ``GET``, ``HEAD``, ``OPTIONS`` to an ``ajp://`` member: the same request as an AJP
  FORWARD_REQUEST (protocol ``HTTP/1.0``, the ``Host`` header, the member's ``secret``,
  its ``packetsize``, no CPING before it); a SEND_HEADERS with a 2xx or 3xx status
  passes (a ``GET`` reads the body as above, to END_RESPONSE). httpd itself writes its
  HTTP/1.0 text to the AJP port, which Tomcat's connector rejects (bad magic), so with
  httpd such a check can never pass; we speak AJP instead.

A malformed answer fails the probe. A probe that passes closes its connection gently,
one that fails aborts it.

Time limits: connecting is bounded by the member's ``connectiontimeout`` (which defaults
to its ``timeout``); the answer, counted from the moment the connection is made, by
``timeout`` (``ProxyTimeout`` when unset) for GET/HEAD/OPTIONS and by ``ping``, else
``connectiontimeout``, else ``timeout`` for CPING (httpd's ``hc_check_cping`` order).
The checker keeps these timers; the probe's connection runs none of its own.

Scheduling is httpd's watchdog: the first probe runs ``hcinterval`` after :meth:`start`,
each next one ``hcinterval`` after the previous one ended, so there is never more than
one probe of a member at a time however long a probe takes. A stopped (``S``) member is
not probed (httpd skips it too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ajpbalancer.ajp import ForwardRequest
from ajpbalancer.balancer import MemberState, Status
from ajpbalancer.h1 import Headers
from ajpbalancer.members._ajp import AJPMemberConnection
from ajpbalancer.members._errors import FailureKind, MemberError
from ajpbalancer.members._http import HTTPMemberConnection
from ajpbalancer.members._runtime import MemberRuntime
from ajpbalancer.tunnel import TunnelEnd

log = Logger()

PROBE_BODY_LIMIT = 64 * 1024
"""The most response body bytes a GET probe reads before it closes the connection."""

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


# --- the checker --------------------------------------------------------------------------


ProbeConnection = AJPMemberConnection | HTTPMemberConnection
"""A probe's connection: the member's own connection class."""


@dataclass(slots=True)
class _Probe:
    """One probe in progress: its connection (once made) or the attempt to make it, and
    what the answer said so far."""

    connecting: Deferred[ProbeConnection] | None = None
    conn: ProbeConnection | None = None
    status: int = 0
    body: int = 0


def _leave_the_pool_alone(*args: object) -> None:
    """A probe's connection reports to nobody: the checker closes it when the probe ends."""


class HealthChecker:
    """Probes one member on the clock and keeps its ``C`` flag (see the module docstring).

    It is the :class:`ResponseSink` of its probe's connection."""

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
        probe = self._end()
        if probe is not None:
            if probe.conn is not None:
                probe.conn.abort()
            elif probe.connecting is not None:
                probe.connecting.cancel()

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

    # -- the probe's connection (ResponseSink) ------------------------------------------

    def member_response(
        self, status: int, reason: bytes, headers: Headers, length: int | None
    ) -> None:
        """The status decides; a GET then reads the body (see the module docstring)."""
        probe = self._probe
        if probe is None:
            return
        probe.status = status
        if not passing_status(status):
            self._finish(False, f"status {status}")
        elif self.method != "GET":
            self._finish(True, f"status {status}")

    def member_body(self, data: bytes) -> None:
        probe = self._probe
        if probe is None:
            return
        probe.body += len(data)
        if probe.body >= PROBE_BODY_LIMIT:
            self._finish(True, f"status {probe.status}")

    def member_done(self) -> None:
        """The answer ended (END_RESPONSE, the body's end or close, a CPONG)."""
        probe = self._probe
        if probe is None:
            return
        self._finish(True, "CPONG" if self.method == "CPING" else f"status {probe.status}")

    def member_failed(self, error: MemberError) -> None:
        """The connection failed the answer and discarded itself."""
        if self._probe is not None:
            self._finish(False, self._failure(error), closed=True)

    def member_switched(self, reason: bytes, headers: Headers, end: TunnelEnd) -> None:
        """A probe never asks to switch protocols (its connection takes a 101 as the
        answer's status): nothing to tunnel."""
        end.abort()

    def pause_request_body(self) -> None:
        """A probe sends no body."""

    def resume_request_body(self) -> None:
        """A probe sends no body."""

    # -- machinery ---------------------------------------------------------------------

    def _schedule(self) -> None:
        self._call = self.reactor.callLater(self.interval, self._run)

    def _run(self) -> None:
        self._call = None
        if self.member.lb.has(Status.STOPPED):
            self._schedule()
            return
        self.probes += 1
        probe = self._probe = _Probe()
        self._timer = self.reactor.callLater(self.connect_timeout, self._connect_timed_out)
        d = self.member.open_connection(_leave_the_pool_alone, _leave_the_pool_alone)
        if self._probe is probe:
            probe.connecting = d
        d.addCallbacks(
            self._connected, self._connect_failed, callbackArgs=(probe,), errbackArgs=(probe,)
        )

    def _connected(self, conn: ProbeConnection, probe: _Probe) -> None:
        """The probe's connection is up: send the probe; from now on the answer timeout runs."""
        if self._probe is not probe:  # the connection came after the probe gave up on it
            conn.abort()
            return
        probe.connecting = None
        probe.conn = conn
        self._cancel_timer()
        self._timer = self.reactor.callLater(self.answer_timeout, self._answer_timed_out)
        if self.method == "TCP":
            self._finish(True, "connected")
        elif isinstance(conn, AJPMemberConnection):
            if self.method == "CPING":
                conn.send_cping(self)
            else:
                conn.send_probe(self, self.forward_request(conn.local_host))
        else:
            assert self.method in HTTP_METHODS
            conn.send_probe(self, self.method.encode("ascii"), self.request_head())

    def _connect_failed(self, reason: Failure, probe: _Probe) -> None:
        if self._probe is probe:
            self._finish(False, f"cannot connect: {reason.getErrorMessage()}")

    def _connect_timed_out(self) -> None:
        self._timer = None
        probe = self._probe
        d = None if probe is None else probe.connecting
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

    def _end(self) -> _Probe | None:
        """The probe in progress (if any) is over: forget it and its timer."""
        probe, self._probe = self._probe, None
        self._cancel_timer()
        return probe

    def _failure(self, error: MemberError) -> str:
        """Why a probe failed, in the words the checks have always logged."""
        ajp = self.member.is_ajp
        if error.kind is FailureKind.BROKEN:
            # An HTTP probe tells a cut inside the body from one before the status line; an
            # AJP probe has always said "before answering" for both.
            if error.response_started and not ajp:
                return "the member closed the connection inside the body"
            return "the member closed the connection before answering"
        if error.kind is FailureKind.PROTOCOL and not ajp:
            return f"malformed answer: {error.message}"
        return error.message

    def _finish(self, passed: bool, reason: str, *, closed: bool = False) -> None:
        """The probe in progress is over: close its connection (unless the connection
        ``closed`` itself), count, log, schedule the next one."""
        probe = self._end()
        if probe is None:
            return
        conn = probe.conn
        if conn is not None and not closed:
            if passed:
                conn.hang_up()
            else:
                conn.abort()
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
