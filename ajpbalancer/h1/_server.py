"""The server side of an HTTP/1.1 connection as a sans-I/O state machine.

Shaped like the AJP codec and h11: bytes in, events out (:meth:`receive_data`); events in,
bytes out (:meth:`send`, or the equivalent :meth:`start_response`, :meth:`send_body`,
:meth:`end_response` the proxy's hot path calls directly). It owns what HTTP/1.1 says
about a connection and nothing else: request heads and their checks (the Host field,
the absolute form, CONNECT), body framing both ways (Content-Length and chunked rules),
keep-alive, pipelining, ``100 Continue``, and the switch to another protocol after a
``101``. Timers, sockets and what a request means are the caller's.

Pipelining and read-ahead: one request is answered at a time. While it is (the client's
side is DONE), what the client sends next is held unparsed, and :attr:`wants_data`
turns False once :data:`READ_AHEAD` bytes are held, so that the caller stops reading
from the socket: a client cannot make the proxy buffer more than that per connection
(plus one read). When the response ends, :meth:`next_events` parses what was held.

Errors: a request the client got wrong raises :class:`HTTPProtocolError` with the status
to answer; the client's side is then in ERROR for good and the connection must close
after that answer (which :meth:`start_response` still frames, for a head that could not
be parsed as for an HTTP/1.1 request). Sending out of turn raises
:class:`LocalProtocolError` (our bug) and leaves our side in ERROR. The (state, event)
tables are in :mod:`._state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from ajpbalancer.h1._body import BodyReader, body_reader, request_framing
from ajpbalancer.h1._errors import HTTPProtocolError, LocalProtocolError
from ajpbalancer.h1._events import (
    END_OF_MESSAGE,
    BodyMode,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    SendEvent,
    Switched,
)
from ajpbalancer.h1._head import (
    DEFAULT_LIMITS,
    TOKEN,
    HeadLimits,
    RequestHead,
    find_head_end,
    parse_request_head,
    serialize_response_head,
)
from ajpbalancer.h1._request import PartialHead, check_target
from ajpbalancer.h1._state import (
    ANSWER_WITHOUT_REQUEST,
    NEXT_CYCLE,
    RECV_TRANSITIONS,
    SEND_TRANSITIONS,
    RecvState,
    SendState,
)

READ_AHEAD = 32 * 1024
"""Bytes of a pipelined request held while the one before it is answered; past this the
caller pauses reading (one read of up to 64 KiB may come on top)."""

# Enum members are looked up through their class's metaclass at every `Enum.MEMBER`
# (about 100 ns each in CPython 3.11); the hot path compares with these aliases.
_BODY_NONE = BodyMode.NONE
_R_BODY = RecvState.BODY
_R_CLOSED = RecvState.CLOSED
_R_DISCARD = RecvState.DISCARD
_R_DONE = RecvState.DONE
_R_ERROR = RecvState.ERROR
_R_HEAD = RecvState.HEAD
_R_IDLE = RecvState.IDLE
_R_SWITCHED = RecvState.SWITCHED
_S_BODY = SendState.BODY
_S_ERROR = SendState.ERROR
_S_IDLE = SendState.IDLE
_S_MUST_CLOSE = SendState.MUST_CLOSE
_S_SWITCHED = SendState.SWITCHED
_S_WAIT = SendState.WAIT

REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
"""Reason phrases by status."""

_OWS = b" \t"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
# The fields whose meaning this connection applies, by lower-cased name.
_HOST_F, _CL_F, _TE_F, _CONN_F, _EXPECT_F, _UPGRADE_F = (
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"expect",
    b"upgrade",
)
_FIELDS = frozenset({_HOST_F, _CL_F, _TE_F, _CONN_F, _EXPECT_F, _UPGRADE_F})


class ServerConnection:
    """One client connection, from the server's side (see the module docstring).

    ``limits``: the head limits (LimitRequestLine and friends); ``max_body``:
    LimitRequestBody, 0 for none; ``read_ahead``: see :data:`READ_AHEAD`.
    """

    __slots__ = (
        "_body_received",
        "_buf",
        "_chunked_out",
        "_continue_sent",
        "_discarded",
        "_expect_continue",
        "_head",
        "_keep_alive",
        "_limits",
        "_max_body",
        "_max_head",
        "_method",
        "_no_body_out",
        "_out_remaining",
        "_partial",
        "_read_ahead",
        "_reader",
        "_recv",
        "_send",
        "_switch_reported",
        "_upgrade",
        "_version",
    )

    def __init__(
        self,
        limits: HeadLimits = DEFAULT_LIMITS,
        *,
        max_body: int = 0,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        self._limits = limits
        self._max_head = limits.max_head
        self._max_body = max_body
        self._read_ahead = read_ahead
        self._buf = b""
        self._recv = _R_IDLE
        self._send = _S_IDLE
        self._reader: BodyReader | None = None
        self._switch_reported = False
        self._partial: PartialHead | None = None  # checks of a head still arriving
        self._head: RequestHead | None = None
        self._reset_request()

    def _reset_request(self) -> None:
        self._method = b"GET"
        self._version = b"HTTP/1.1"
        self._keep_alive = True
        self._expect_continue = False
        self._continue_sent = False
        self._upgrade: bytes | None = None
        self._body_received = 0
        self._discarded = 0
        self._chunked_out = False
        self._no_body_out = False
        self._out_remaining: int | None = None

    # -- state -------------------------------------------------------------------------

    @property
    def recv_state(self) -> RecvState:
        return self._recv

    @property
    def send_state(self) -> SendState:
        return self._send

    @property
    def wants_data(self) -> bool:
        """False while more input would only pile up (see the module docstring)."""
        return self._recv is not _R_DONE or len(self._buf) < self._read_ahead

    @property
    def buffered(self) -> int:
        """Bytes received and not yet turned into events (a partial head, read-ahead)."""
        return len(self._buf)

    @property
    def body_received(self) -> int:
        """Body bytes of the current request so far."""
        return self._body_received

    @property
    def discarded(self) -> int:
        """Body bytes dropped since the response ended before its request body."""
        return self._discarded

    @property
    def head(self) -> RequestHead | None:
        """The head of the request being received or answered (also of one refused for
        what its head said), None between requests."""
        return self._head

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the current response (so far)."""
        return self._keep_alive

    @property
    def continue_allowed(self) -> bool:
        """Whether ``100 Continue`` may be sent now: the client asked for it and waits
        for it (its body has not begun) and no response was sent."""
        return (
            self._expect_continue
            and not self._continue_sent
            and self._send is _S_WAIT
            and self._recv is _R_BODY
        )

    # -- receiving ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """The events in ``data``; ``b""`` means the client closed the connection."""
        recv = self._recv
        try:
            if recv is _R_BODY or recv is _R_DISCARD:
                return self._receive_body(data) if data else self._eof()
            if recv is _R_IDLE or recv is _R_HEAD:
                if not data:
                    return self._eof()
                self._buf = self._buf + data if self._buf else data
                return self._parse()
            if recv is _R_DONE:
                if not data:
                    return self._eof()
                self._buf = self._buf + data if self._buf else data
                return []
        except HTTPProtocolError:
            self._recv = _R_ERROR
            raise
        raise LocalProtocolError(f"no input is expected in state {recv.value}")

    def next_events(self) -> list[Event]:
        """Events from what was held while a response was outstanding (call after a
        response ended), or the :class:`Switched` that follows a ``101``."""
        if self._send is _S_SWITCHED and not self._switch_reported:
            self._switch_reported = True
            trailing, self._buf = self._buf, b""
            return [Switched(trailing)]
        recv = self._recv
        if (recv is _R_IDLE or recv is _R_HEAD) and self._send is _S_IDLE:
            try:
                return self._parse()
            except HTTPProtocolError:
                self._recv = _R_ERROR
                raise
        return []

    def _eof(self) -> list[Event]:
        recv = self._recv
        if recv is _R_BODY:
            assert self._reader is not None
            self._reader.eof()  # raises: the body was cut short
        new = RECV_TRANSITIONS.get((recv, ConnectionClosed))
        self._recv = _R_CLOSED
        return [] if new is None else [ConnectionClosed()]

    def _parse(self) -> list[Event]:
        """Parse the next request head from the buffer, if it is complete."""
        buf = self._buf
        if buf.startswith(b"\r\n"):  # RFC 9112 §2.2: empty lines before a request are ignored
            self._buf = buf = buf.lstrip(b"\r\n")
            self._partial = None
        if not buf:
            self._recv = _R_IDLE
            return []
        max_head = self._max_head
        end = find_head_end(buf, max_head, 431)
        if end < 0:
            self._recv = _R_HEAD
            partial = self._partial
            if partial is None:
                partial = self._partial = PartialHead(self._limits)
            partial.check(buf)
            return []
        head = parse_request_head(buf[:end] if end < len(buf) else buf, self._limits)
        self._buf = buf[end:]
        self._partial = None
        return self._begin(head)

    def _begin(self, head: RequestHead) -> list[Event]:
        """A request head arrived: check it, find its framing, start its cycle."""
        self._head = head
        hosts: list[bytes] = []
        lengths: list[bytes] = []
        codings: list[bytes] = []
        connection: list[bytes] = []
        expect: bytes | None = None
        upgrade: bytes | None = None
        for name, value in head.headers:
            lname = name.lower()
            if lname in _FIELDS:
                if lname == _HOST_F:
                    hosts.append(value)
                elif lname == _CL_F:
                    lengths.append(value)
                elif lname == _TE_F:
                    codings.append(value)
                elif lname == _CONN_F:
                    connection.append(value)
                elif lname == _EXPECT_F:
                    expect = value if expect is None else expect
                else:
                    upgrade = value if upgrade is None else upgrade + b", " + value
        check_target(head, hosts)
        body, length = request_framing(head.version, lengths, codings)
        max_body = self._max_body
        if max_body and length is not None and length > max_body:
            raise HTTPProtocolError("request body larger than LimitRequestBody", 413)
        version = head.version
        tokens: list[bytes] | tuple[()] = ()
        if connection:
            tokens = [t.strip(_OWS).lower() for v in connection for t in v.split(b",")]
            for token in tokens:
                if token and TOKEN.fullmatch(token) is None:
                    # Connection lists field names and options (RFC 9110 §7.6.1): tokens.
                    raise HTTPProtocolError("invalid token in Connection", 400)
        self._reset_request()
        self._method = head.method
        self._version = version
        if version == b"HTTP/1.1":
            self._keep_alive = b"close" not in tokens
            if upgrade is not None and b"upgrade" in tokens:
                self._upgrade = upgrade
        else:
            self._keep_alive = b"keep-alive" in tokens
        if (
            expect is not None
            and body is not _BODY_NONE
            and version == b"HTTP/1.1"
            and expect.lower() == b"100-continue"
        ):
            self._expect_continue = True
        self._recv = _R_BODY
        self._send = _S_WAIT
        request = Request(head, body, length, self._expect_continue, self._upgrade)
        if body is _BODY_NONE:
            self._recv = _R_DONE
            return [request, END_OF_MESSAGE]
        self._reader = body_reader(body, length, 400)
        events: list[Event] = [request]
        if self._buf:
            # Body bytes that came with the head are checked before anything is returned,
            # so a request refused for its body's framing or size produces no event at all.
            data, self._buf = self._buf, b""
            events += self._receive_body(data)
        return events

    def _receive_body(self, data: bytes) -> list[Event]:
        reader = self._reader
        assert reader is not None
        pieces, rest = reader.feed(data)
        events: list[Event] = []
        if self._recv is _R_BODY:
            if pieces:
                received = self._body_received
                for piece in pieces:
                    received += len(piece)
                    events.append(Data(piece))
                self._body_received = received
                if self._max_body and received > self._max_body:
                    raise HTTPProtocolError("request body larger than LimitRequestBody", 413)
            if rest is None:
                return events
            self._reader = None
            self._buf = rest
            self._recv = _R_DONE
            events.append(END_OF_MESSAGE)
            return events
        for piece in pieces:  # DISCARD: the answer went out already
            self._discarded += len(piece)
        if rest is None:
            return events
        self._reader = None
        self._buf = rest
        self._recv = RECV_TRANSITIONS[_R_DISCARD, EndOfMessage]
        return self._parse()

    # -- sending -----------------------------------------------------------------------

    def send(self, event: SendEvent) -> bytes:
        """The bytes to write for ``event`` (see :mod:`._events`)."""
        kind = type(event)
        if kind is Response:
            assert isinstance(event, Response)
            return self.start_response(
                event.status, event.headers, event.length, reason=event.reason, close=event.close
            )
        if kind is Data:
            assert isinstance(event, Data)
            return self.send_body(event.data)
        if kind is EndOfMessage:
            return self.end_response()
        if kind is InformationalResponse:
            assert isinstance(event, InformationalResponse)
            return self.send_informational(event.status, event.headers, event.reason)
        raise TypeError(f"not an event a server sends: {event!r}")

    def _move(self, kind: type) -> None:
        """Our side's transition for sending ``kind`` (LocalProtocolError if illegal)."""
        new = SEND_TRANSITIONS.get((self._send, kind))
        if new is None:
            state, self._send = self._send, _S_ERROR
            raise LocalProtocolError(f"cannot send {kind.__name__} in state {state.value}")
        self._send = new

    def send_continue(self) -> bytes:
        """``100 Continue`` (see :meth:`send_informational`)."""
        return self.send_informational(100)

    def send_informational(
        self, status: int, headers: Sequence[tuple[bytes, bytes]] = (), reason: bytes = b""
    ) -> bytes:
        """``100 Continue`` (only when :attr:`continue_allowed`), ``101 Switching
        Protocols`` (only to a request that asked for an upgrade, once it is complete;
        both sides then switch), or another 1xx with ``headers``."""
        if status == 100:
            if not self.continue_allowed:
                raise LocalProtocolError("no 100 Continue is expected now")
            self._continue_sent = True
            return _CONTINUE
        if status == 101 and (
            self._upgrade is None or self._send is not _S_WAIT or self._recv is not _R_DONE
        ):
            raise LocalProtocolError("101 only answers a complete request asking to upgrade")
        self._move(InformationalResponse)
        head = serialize_response_head(
            b"HTTP/1.1", status, reason or REASONS.get(status, b"Unknown"), list(headers)
        )
        if status == 101:
            self._send = _S_SWITCHED
            self._recv = _R_SWITCHED
        return head

    def start_response(
        self,
        status: int,
        headers: Sequence[tuple[bytes, bytes]],
        length: int | None = None,
        *,
        reason: bytes = b"",
        close: bool = False,
    ) -> bytes:
        """The head of a final response; ``length`` None means the body length is unknown.

        The framing fields are added here: ``Content-Length`` when the length is known,
        else ``Transfer-Encoding: chunked`` to an HTTP/1.1 client and a close-delimited
        body to an HTTP/1.0 one; ``Connection: close`` when the connection ends after
        this response, ``Connection: keep-alive`` to an HTTP/1.0 client that keeps it.
        """
        if not 200 <= status <= 999:
            raise LocalProtocolError(f"a final response has a status of 200 to 999, not {status}")
        recv = self._recv
        if self._send is _S_IDLE and recv in ANSWER_WITHOUT_REQUEST:
            # An answer with no request to answer (one that could not be parsed, or never
            # came in time): framed as to an HTTP/1.1 client, and the connection closes.
            self._reset_request()
            self._send = _S_WAIT
            self._recv = recv = _R_ERROR
        if recv is _R_ERROR:
            close = True
        elif (
            self._expect_continue
            and not self._continue_sent
            and recv is _R_BODY
            and not self._body_received
        ):
            # The client waits for 100 Continue and may or may not send its body now:
            # the only safe end of this exchange is closing the connection (RFC 9110 §10.1.1).
            close = True
        self._move(Response)
        method = self._method
        no_body = method == b"HEAD" or status in (204, 304)
        self._no_body_out = no_body
        keep = self._keep_alive and not close
        out = list(headers)
        chunked = False
        remaining: int | None = None
        if length is not None:
            if status not in (204, 304) or method == b"HEAD":
                out.append((b"Content-Length", b"%d" % length))
            remaining = 0 if no_body else length
        elif not no_body:
            if self._version == b"HTTP/1.1":
                chunked = True
                out.append((b"Transfer-Encoding", b"chunked"))
            else:
                keep = False
        if not keep:
            out.append((b"Connection", b"close"))
        elif self._version == b"HTTP/1.0":
            out.append((b"Connection", b"keep-alive"))
        self._keep_alive = keep
        self._chunked_out = chunked
        self._out_remaining = remaining
        parts = [b"HTTP/1.1 %d " % status, reason or REASONS.get(status, b"Unknown"), b"\r\n"]
        for name, value in out:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def send_body(self, data: bytes) -> bytes:
        """The bytes of a piece of the response body (framed when chunked; nothing for a
        response that has no body, such as the answer to HEAD)."""
        if self._send is not _S_BODY:
            state, self._send = self._send, _S_ERROR
            raise LocalProtocolError(f"cannot send Data in state {state.value}")
        if self._no_body_out or not data:
            return b""
        remaining = self._out_remaining
        if remaining is not None:
            remaining -= len(data)
            if remaining < 0:
                self._send = _S_ERROR
                raise LocalProtocolError("more body than the Content-Length sent")
            self._out_remaining = remaining
        if self._chunked_out:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def end_response(self) -> bytes:
        """The bytes that end the response (the last chunk, if chunked). A kept-alive
        connection starts its next cycle (see :attr:`next_events`); otherwise our side
        is MUST_CLOSE and the caller closes the connection once these bytes are out."""
        if self._out_remaining:
            self._send = _S_ERROR
            raise LocalProtocolError("the response ended short of its Content-Length")
        self._move(EndOfMessage)
        out = _LAST_CHUNK if self._chunked_out else b""
        nxt = NEXT_CYCLE.get(self._recv) if self._keep_alive else None
        if nxt is None:
            self._send = _S_MUST_CLOSE
            return out
        self._recv = nxt
        self._head = None
        self._reset_request()
        return out
