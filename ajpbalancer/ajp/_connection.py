"""The two ends of an AJP13 connection as sans-I/O state machines.

`ClientConnection` is the web server's end (what mod_proxy_ajp does); `ServerConnection`
is the container's end (what Tomcat's ``AjpProcessor`` does), for demo members and
scripted fake members in tests. Both have the same shape (h11's, with h2's push API):

* ``send(event) -> bytes``: the bytes to write for an event this side may send;
* ``receive_data(data) -> list[Event]``: the events in bytes read from the peer;
  ``b""`` means the peer closed the connection. Between exchanges (state IDLE or DONE)
  that gives ``[ConnectionClosed()]`` and state CLOSED; anywhere else, or inside a
  packet, it is a `RemoteProtocolError`, because the exchange was cut short;
* ``start_next_cycle()``: after END_RESPONSE with reuse, back to IDLE;
* ``state``, ``reusable`` and the body-flow properties.

Every error (local or remote) moves the connection to ``State.ERROR`` for good: every
later call raises `LocalProtocolError`. Events before a bad packet in the same
``receive_data`` call are not returned: the connection is being thrown away anyway.
Which (state, event) pairs are legal is the table in ``_state.py``; the guards here only
add what a table cannot say (how many body bytes are owed).
"""

from __future__ import annotations

from typing import ClassVar

from ajpbalancer.ajp._constants import (
    DEFAULT_MAX_PACKET_SIZE,
    MAGIC_FROM_CONTAINER,
    MAGIC_TO_CONTAINER,
    MAX_MAX_PACKET_SIZE,
    MIN_MAX_PACKET_SIZE,
    REQUEST_BODY_OVERHEAD,
    RESPONSE_BODY_OVERHEAD,
)
from ajpbalancer.ajp._errors import AJPProtocolError, LocalProtocolError, RemoteProtocolError
from ajpbalancer.ajp._events import (
    ConnectionClosed,
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    wire_name,
)
from ajpbalancer.ajp._messages import (
    CPING_PACKET,
    CPONG_PACKET,
    END_RESPONSE_PACKETS,
    decode_request_body,
    decode_request_message,
    decode_response_message,
    encode_forward_request,
    encode_get_body_chunk,
    encode_request_body,
    encode_send_body_chunk,
    encode_send_headers,
)
from ajpbalancer.ajp._packet import PacketBuffer
from ajpbalancer.ajp._state import (
    CONTAINER_SENDS,
    NEXT_CYCLE,
    NO_BODY_STATUSES,
    TRANSITIONS,
    WEB_SERVER_SENDS,
    State,
)


class _Connection:
    """What both ends share: the table, the error discipline, the packet buffer."""

    __slots__ = (
        "_body_length_left",
        "_buffer",
        "_max_packet_size",
        "_response_has_body",
        "_reuse",
        "_state",
    )

    _role: ClassVar[str]
    _sends: ClassVar[frozenset[type[Event]]]
    _incoming_magic: ClassVar[bytes]
    _remote_status_hint: ClassVar[int]

    def __init__(self, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        if (
            not isinstance(max_packet_size, int)
            or not MIN_MAX_PACKET_SIZE <= max_packet_size <= MAX_MAX_PACKET_SIZE
        ):
            raise ValueError(
                f"max_packet_size must be {MIN_MAX_PACKET_SIZE}..{MAX_MAX_PACKET_SIZE}, "
                f"not {max_packet_size!r}"
            )
        self._max_packet_size = max_packet_size
        self._state = State.IDLE
        self._buffer = PacketBuffer(self._incoming_magic, max_packet_size)
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self._body_length_left: int | None = 0
        self._response_has_body = True
        self._reuse = False

    # --- public surface -----------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def max_packet_size(self) -> int:
        """The AJP packet size both ends must be configured with (no negotiation exists)."""
        return self._max_packet_size

    @property
    def reusable(self) -> bool:
        """True when IDLE, or DONE after an END_RESPONSE that allowed reuse."""
        return self._state is State.IDLE or (self._state is State.DONE and self._reuse)

    def send(self, event: Event) -> bytes:
        """The bytes to write for ``event``; `LocalProtocolError` if it is not allowed now."""
        self._check_usable()
        try:
            if type(event) not in self._sends:
                raise LocalProtocolError(f"the {self._role} does not send {wire_name(event)}")
            new_state = self._next_state(event)
            data = self._send(event)
        except AJPProtocolError:
            self._state = State.ERROR
            raise
        self._state = new_state
        return data

    def receive_data(self, data: bytes) -> list[Event]:
        """The events in ``data`` from the peer, in order; ``b""`` when the peer closed."""
        self._check_usable()
        try:
            if not data:
                if self._buffer.buffered:
                    raise RemoteProtocolError("the peer closed the connection inside a packet")
                state = TRANSITIONS.get((self._state, ConnectionClosed))
                if state is None:
                    raise RemoteProtocolError(
                        f"the peer closed the connection in the middle of an exchange "
                        f"(state {self._state.name})"
                    )
                self._state = state
                return [ConnectionClosed()]
            events: list[Event] = []
            decode = self._decode
            received = self._received
            transitions = TRANSITIONS
            for payload in self._buffer.feed(data):
                event = decode(payload)
                new_state = transitions.get((self._state, type(event)))
                if new_state is None:
                    new_state = self._next_state(event)  # raises, naming the pair
                keep = received(event)
                self._state = new_state
                if keep:
                    events.append(event)
            return events
        except AJPProtocolError as exc:
            self._state = State.ERROR
            raise RemoteProtocolError(exc.message, self._remote_status_hint) from exc

    def start_next_cycle(self) -> None:
        """After END_RESPONSE with reuse: forget the exchange and go back to IDLE."""
        self._check_usable()
        if self._state not in NEXT_CYCLE or not self._reuse:
            state = self._state
            self._state = State.ERROR
            raise LocalProtocolError(
                f"cannot start a new exchange in state {state.name}"
                + ("" if state is not State.DONE else " (END_RESPONSE did not allow reuse)")
            )
        self._reset_cycle()
        self._state = NEXT_CYCLE[self._state]

    # --- machinery ----------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is State.ERROR:
            raise LocalProtocolError("this AJP connection failed earlier and must be discarded")
        if self._state is State.CLOSED:
            self._state = State.ERROR
            raise LocalProtocolError("this AJP connection was closed by the peer")

    def _next_state(self, event: Event) -> State:
        try:
            return TRANSITIONS[(self._state, type(event))]
        except KeyError:
            raise LocalProtocolError(
                f"{wire_name(event)} is not allowed in state {self._state.name}"
            ) from None

    # Each end defines these three.

    def _decode(self, payload: memoryview) -> Event:
        """The event in one payload from the peer."""
        raise AssertionError(f"{type(self).__name__} defines _decode")

    def _send(self, event: Event) -> bytes:
        """Guards for an event this end sends, then its bytes."""
        raise AssertionError(f"{type(self).__name__} defines _send")

    def _received(self, event: Event) -> bool:
        """Guards for a received event; False to drop it (a flush before headers)."""
        raise AssertionError(f"{type(self).__name__} defines _received")

    def _response_headers(self, head: bool, event: SendHeaders) -> None:
        self._response_has_body = not head and event.status not in NO_BODY_STATUSES


class ClientConnection(_Connection):
    """The web server's end: sends FORWARD_REQUEST, body packets and CPING.

    Request body flow, as mod_proxy_ajp and Tomcat do it:

    * after a `ForwardRequest` whose Content-Length is > 0, the first body packet is owed
      at once, unasked (none for Content-Length 0, none for a chunked request);
    * every later packet is owed only in answer to a GET_BODY_CHUNK, and carries at most
      what it asked for, capped at ``max_body_chunk`` and at what the Content-Length leaves;
    * ``RequestBody(b"")`` is the end-of-body packet: it answers a GET_BODY_CHUNK when no
      data is left (so with ``body_owed == 0`` while ``body_packet_owed``); a chunked body
      must end with it; ending a Content-Length body early is refused;
    * a packet that is owed stays owed after SEND_HEADERS: Tomcat reads it before it ends
      the response, and the stream desynchronises if it never comes.

    Received: a second SEND_HEADERS, a non-empty body chunk or END_RESPONSE before
    SEND_HEADERS, a CPONG outside CPING_SENT, GET_BODY_CHUNK after the end-of-body packet
    or while a packet is still owed, an unknown message type, a malformed or oversize
    packet, bad magic: `RemoteProtocolError` (hint 502). An empty SEND_BODY_CHUNK is a
    flush: dropped before SEND_HEADERS (httpd ignores it), returned afterwards. Body
    chunks of a response without a body (HEAD request; 204, 205, 304) are dropped, as
    httpd's HTTP output filter and Tomcat both discard them. END_RESPONSE while a body
    packet is still owed is returned, but the connection is then not reusable.
    """

    __slots__ = ("_end_sent", "_head", "_owed", "_packet_owed")

    _role = "web server"
    _sends = WEB_SERVER_SENDS
    _incoming_magic = MAGIC_FROM_CONTAINER
    _remote_status_hint = 502

    def _reset_cycle(self) -> None:
        super()._reset_cycle()
        self._head = False
        self._packet_owed = False
        self._owed = 0
        self._end_sent = False

    @property
    def max_body_chunk(self) -> int:
        """The most body bytes one request body packet carries: packet size - 6."""
        return self._max_packet_size - REQUEST_BODY_OVERHEAD

    @property
    def body_packet_owed(self) -> bool:
        """A request body packet (possibly the empty end-of-body one) must be sent now."""
        return self._packet_owed

    @property
    def body_owed(self) -> int:
        """How many body bytes the container may receive now (0 if no packet is owed)."""
        return self._owed if self._packet_owed else 0

    @property
    def body_finished(self) -> bool:
        """No body bytes are left to send: the end-of-body packet went, or the
        Content-Length is used up (or was 0)."""
        return self._end_sent or self._body_length_left == 0

    def _send(self, event: Event) -> bytes:
        if isinstance(event, ForwardRequest):
            data = encode_forward_request(event, self._max_packet_size)
            length = event.body_length
            self._head = event.method == b"HEAD"
            self._body_length_left = length
            if length:
                self._packet_owed = True
                self._owed = min(length, self.max_body_chunk)
            return data
        if isinstance(event, RequestBody):
            return self._send_body(event.data)
        assert isinstance(event, CPing)
        return CPING_PACKET

    def _send_body(self, data: bytes) -> bytes:
        if not self._packet_owed:
            raise LocalProtocolError(
                "no request body packet is owed: after the first one, send body data only "
                "in answer to GET_BODY_CHUNK"
            )
        left = self._body_length_left
        if data:
            if len(data) > self._owed:
                raise LocalProtocolError(
                    f"{len(data)} request body bytes, but only {self._owed} are owed now"
                )
            if left is not None:
                self._body_length_left = left - len(data)
        else:
            if left:
                raise LocalProtocolError(
                    f"the request body ends {left} bytes before its Content-Length"
                )
            self._end_sent = True
        self._packet_owed = False
        self._owed = 0
        return encode_request_body(data)

    def _decode(self, payload: memoryview) -> Event:
        return decode_response_message(payload)

    def _received(self, event: Event) -> bool:
        if isinstance(event, SendBodyChunk):
            if self._state is State.REQUEST_SENT:
                if event.data:
                    raise RemoteProtocolError("SEND_BODY_CHUNK with data before SEND_HEADERS")
                return False
            return self._response_has_body or not event.data
        if isinstance(event, GetBodyChunk):
            if self._end_sent:
                raise RemoteProtocolError("GET_BODY_CHUNK after the end of the request body")
            if self._packet_owed:
                raise RemoteProtocolError("GET_BODY_CHUNK while a request body packet is owed")
            owed = min(event.length, self.max_body_chunk)
            left = self._body_length_left
            self._owed = owed if left is None else min(owed, left)
            self._packet_owed = True
        elif isinstance(event, SendHeaders):
            self._response_headers(self._head, event)
        elif isinstance(event, EndResponse):
            self._reuse = event.reuse and not self._packet_owed
        return True


class ServerConnection(_Connection):
    """The container's end: receives requests and body packets, sends the response.

    It knows a packet is request body data (which has no type byte) when one is owed to
    it: right after a FORWARD_REQUEST whose Content-Length is > 0, and after each
    GET_BODY_CHUNK it sent. A body packet larger than asked for, or running past the
    Content-Length, or ending before it, is a `RemoteProtocolError` (hint 400, as Tomcat
    answers a malformed request). It accepts both end-of-body forms (``12 34 00 00`` and
    httpd's ``12 34 00 02 00 00``).

    Sending: SEND_BODY_CHUNK data longer than ``max_body_chunk`` (packet size - 8) is cut
    into several packets, as Tomcat does; body data of a response without a body (HEAD;
    204, 205, 304) is swallowed (``b""``), as Tomcat swallows it; END_RESPONSE is refused
    while a requested body packet has not arrived (Tomcat reads it first).
    """

    __slots__ = ("_end_received", "_expect_body", "_head", "_owed")

    _role = "container"
    _sends = CONTAINER_SENDS
    _incoming_magic = MAGIC_TO_CONTAINER
    _remote_status_hint = 400

    def _reset_cycle(self) -> None:
        super()._reset_cycle()
        self._head = False
        self._expect_body = False
        self._owed = 0
        self._end_received = False

    @property
    def max_body_chunk(self) -> int:
        """The most body bytes one SEND_BODY_CHUNK carries: packet size - 8."""
        return self._max_packet_size - RESPONSE_BODY_OVERHEAD

    @property
    def max_request_chunk(self) -> int:
        """The most body bytes one request body packet carries: packet size - 6 (what
        Tomcat asks for in GET_BODY_CHUNK)."""
        return self._max_packet_size - REQUEST_BODY_OVERHEAD

    @property
    def body_expected(self) -> bool:
        """A request body packet is owed to us (the next packet is body data)."""
        return self._expect_body

    @property
    def body_finished(self) -> bool:
        """The end-of-body packet came, or the Content-Length is used up (or was 0)."""
        return self._end_received or self._body_length_left == 0

    def _decode(self, payload: memoryview) -> Event:
        if self._expect_body:
            return decode_request_body(payload)
        return decode_request_message(payload)

    def _received(self, event: Event) -> bool:
        if isinstance(event, ForwardRequest):
            length = event.body_length
            self._head = event.method == b"HEAD"
            self._body_length_left = length
            if length:
                self._expect_body = True
                self._owed = min(length, self.max_request_chunk)
        elif isinstance(event, RequestBody):
            self._received_body(event.data)
        return True

    def _received_body(self, data: bytes) -> None:
        left = self._body_length_left
        if data:
            if len(data) > self._owed:
                raise RemoteProtocolError(
                    f"request body packet of {len(data)} bytes, but {self._owed} were asked for"
                )
            if left is not None:
                self._body_length_left = left - len(data)
        else:
            if left:
                raise RemoteProtocolError(
                    f"the request body ends {left} bytes before its Content-Length"
                )
            self._end_received = True
        self._expect_body = False
        self._owed = 0

    def _send(self, event: Event) -> bytes:
        if isinstance(event, SendBodyChunk):
            return self._send_body(event.data)
        if isinstance(event, SendHeaders):
            data = encode_send_headers(event, self._max_packet_size)
            self._response_headers(self._head, event)
            return data
        if isinstance(event, GetBodyChunk):
            if self._end_received:
                raise LocalProtocolError("GET_BODY_CHUNK after the end of the request body")
            if self._expect_body:
                raise LocalProtocolError("GET_BODY_CHUNK while a request body packet is owed")
            self._expect_body = True
            self._owed = min(event.length, self.max_request_chunk)
            return encode_get_body_chunk(event)
        if isinstance(event, EndResponse):
            if self._expect_body:
                raise LocalProtocolError(
                    "END_RESPONSE while a request body packet is owed: receive it first"
                )
            self._reuse = event.reuse
            return END_RESPONSE_PACKETS[event.reuse]
        assert isinstance(event, CPong)
        return CPONG_PACKET

    def _send_body(self, data: bytes) -> bytes:
        if self._state is State.REQUEST_SENT and data:
            raise LocalProtocolError("SEND_BODY_CHUNK with data before SEND_HEADERS")
        if not data:
            return encode_send_body_chunk(data)
        if not self._response_has_body:
            return b""
        size = self.max_body_chunk
        if len(data) <= size:
            return encode_send_body_chunk(data)
        view = memoryview(data)
        return b"".join(
            encode_send_body_chunk(bytes(view[i : i + size])) for i in range(0, len(data), size)
        )
