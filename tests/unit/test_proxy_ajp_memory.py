"""The AJP13 member path in memory: the real glue and pool against a scripted container.

The container is the codec's own container end (:class:`ServerConnection`) driven by the
test, so every byte the proxy writes is decoded as Tomcat would and every answer is a
well-formed (or deliberately malformed) AJP packet.
"""

from __future__ import annotations

import io

from ajpbalancer.ajp import (
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)
from ajpbalancer.proxy import AccessLog
from tests.unit.proxyharness import Harness, Member, Transport, without_date

GET = b"GET /app/x?q=1 HTTP/1.1\r\nHost: www.example\r\nAccept: */*\r\n\r\n"


def ajp_harness(params: str = "", *, frontend: str = "") -> Harness:
    return Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        f"ProxyPass = /app ajp://127.0.0.2:8009/app {params}\n{frontend}"
    )


class Container:
    """A scripted Tomcat: decodes what the proxy sends, answers with encoded events."""

    def __init__(self, member: Member, packet_size: int = 8192) -> None:
        self.member = member
        self.codec = ServerConnection(max_packet_size=packet_size)

    def received(self) -> list[object]:
        data = self.member.sent()
        return list(self.codec.receive_data(data)) if data else []  # b"" would mean EOF

    def send(self, *events: object) -> None:
        self.member.reply(b"".join(self.codec.send(e) for e in events))  # type: ignore[arg-type]

    def answer(self, body: bytes = b"hello", status: int = 200, *, reuse: bool = True) -> None:
        headers = ((b"Content-Type", b"text/plain"), (b"Content-Length", b"%d" % len(body)))
        self.send(
            SendHeaders(status=status, reason=b"%d" % status, headers=headers),
            SendBodyChunk(data=body),
            EndResponse(reuse=reuse),
        )
        if reuse:
            self.codec.start_next_cycle()


def get_sent(params: str = "") -> tuple[Harness, Transport, Container]:
    """A proxy with an AJP member, a client whose GET reached the scripted container."""
    h = ajp_harness(params)
    proto, client = h.client()
    proto.dataReceived(GET)
    return h, client, Container(h.accept_member())


def forward(events: list[object]) -> ForwardRequest:
    assert isinstance(events[0], ForwardRequest), events
    return events[0]


def test_get_becomes_a_forward_request_as_mod_proxy_ajp_builds_it() -> None:
    h = ajp_harness("secret=s3cret")
    proto, _client = h.client()
    proto.dataReceived(GET)
    tomcat = Container(h.accept_member())
    request = forward(tomcat.received())
    assert (request.method, request.uri, request.query_string) == (b"GET", b"/app/x", b"q=1")
    assert (request.remote_addr, request.server_name, request.server_port) == (
        b"127.0.0.1",
        b"www.example",
        8080,
    )
    assert request.secret == b"s3cret"
    assert request.is_ssl is False
    # Known names travel as codes, which the container decodes lower-case.
    assert request.headers == ((b"host", b"www.example"), (b"accept", b"*/*"))
    assert request.request_attributes == (
        (b"AJP_REMOTE_PORT", b"40000"),
        (b"AJP_LOCAL_ADDR", b"127.0.0.1"),
    )


def test_repeated_request_headers_are_joined_for_ajp() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(b"GET /app/ HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: b\r\nx-a: 2\r\n\r\n")
    request = forward(Container(h.accept_member()).received())
    assert request.headers == ((b"host", b"h"), (b"X-A", b"1, 2"), (b"X-B", b"b"))


def test_response_streams_to_client_with_its_headers_and_a_regenerated_reason() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    tomcat.send(
        SendHeaders(
            status=200,
            reason=b"200",
            headers=((b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2"), (b"Content-Length", b"4")),
        ),
        SendBodyChunk(data=b"ab"),
    )
    assert client.value().endswith(b"\r\n\r\nab")
    tomcat.send(SendBodyChunk(data=b""), SendBodyChunk(data=b"cd"), EndResponse(reuse=True))
    assert without_date(client.value()) == (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 4\r\n\r\nabcd"
    )


def test_connection_is_reused_when_end_response_says_so() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(GET)
    tomcat = Container(h.accept_member())
    tomcat.received()
    tomcat.answer()
    proto.dataReceived(GET)
    assert h.pending_connects() == []
    assert forward(tomcat.received()).uri == b"/app/x"


def test_connection_is_closed_when_end_response_forbids_reuse() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(GET)
    tomcat = Container(h.accept_member())
    tomcat.received()
    tomcat.answer(reuse=False)
    assert tomcat.member.transport.closed
    proto.dataReceived(GET)
    assert len(h.pending_connects()) == 1


def test_content_length_body_sends_the_first_packet_unasked_then_answers_get_body_chunk() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabcd")
    tomcat = Container(h.accept_member())
    events = tomcat.received()
    assert forward(events).headers[-1] == (b"content-length", b"10")
    assert events[1:] == [RequestBody(data=b"abcd")]
    proto.dataReceived(b"efghij")
    assert tomcat.received() == []  # not asked for yet: held by the proxy
    tomcat.send(GetBodyChunk(length=8186))
    assert tomcat.received() == [RequestBody(data=b"efghij")]
    assert tomcat.codec.body_finished


def test_chunked_body_waits_to_be_asked_and_ends_with_the_empty_packet() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(
        b"POST /app/up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    tomcat = Container(h.accept_member())
    events = tomcat.received()
    assert len(events) == 1  # no unsolicited packet without a Content-Length
    tomcat.send(GetBodyChunk(length=8186))
    assert tomcat.received() == [RequestBody(data=b"abc")]
    proto.dataReceived(b"0\r\n\r\n")
    tomcat.send(GetBodyChunk(length=8186))
    assert tomcat.received() == [RequestBody(data=b"")]


def test_body_packets_never_exceed_packet_size_minus_six() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    body = bytes(range(256)) * 64  # 16 KiB
    proto.dataReceived(
        b"POST /app/up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    tomcat = Container(h.accept_member())
    received = b""
    events = tomcat.received()
    while True:
        for event in events:
            if isinstance(event, RequestBody):
                assert len(event.data) <= 8186
                received += event.data
        if tomcat.codec.body_finished:
            break
        tomcat.send(GetBodyChunk(length=65535))
        events = tomcat.received()
    assert received == body


def test_held_client_body_beyond_the_high_water_mark_pauses_the_client() -> None:
    h = ajp_harness()
    proto, client = h.client()
    size = 200_000
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size)
    tomcat = Container(h.accept_member())
    tomcat.received()
    proto.dataReceived(b"x" * 60_000)
    assert client.producerState == "paused"
    tomcat.received()  # the first packet, sent unasked
    asked = 0
    while client.producerState == "paused" and asked < 10:
        tomcat.send(GetBodyChunk(length=8186))
        tomcat.received()
        asked += 1
    # Resumed once what is held fell to half the high-water mark (4 packets).
    assert client.producerState == "producing"
    assert asked == 5


def test_owed_packet_is_sent_even_when_the_servlet_answers_first() -> None:
    h = ajp_harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /app/up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n")
    tomcat = Container(h.accept_member())
    assert len(tomcat.received()) == 1
    tomcat.send(SendHeaders(status=403, reason=b"403", headers=((b"Content-Length", b"0"),)))
    proto.dataReceived(b"abcd")
    assert tomcat.received() == [RequestBody(data=b"abcd")]
    tomcat.send(EndResponse(reuse=True))
    assert client.value().startswith(b"HTTP/1.1 403 Forbidden\r\n")


def test_patch_goes_as_a_stored_method() -> None:
    h = ajp_harness()
    proto, _client = h.client()
    proto.dataReceived(b"PATCH /app/x HTTP/1.1\r\nHost: h\r\n\r\n")
    raw = Container(h.accept_member()).member.transport.value()
    assert raw[5] == 0xFF  # SC_M_JK_STORED; the name travels as attribute 0x0D
    assert b"\x0d\x00\x05PATCH\x00" in raw


def test_cping_precedes_the_request_when_ping_is_set() -> None:
    h = ajp_harness("ping=500ms")
    proto, _client = h.client()
    proto.dataReceived(GET)
    tomcat = Container(h.accept_member())
    assert tomcat.received() == [CPing()]
    tomcat.send(CPong())
    assert forward(tomcat.received()).uri == b"/app/x"


def test_unanswered_cping_gives_503_and_drops_the_connection() -> None:
    h, client, tomcat = get_sent("ping=500ms")
    h.reactor.advance(0.6)
    assert client.value().startswith(b"HTTP/1.1 503 ")
    assert tomcat.member.transport.aborted


def test_malformed_packet_gives_502_and_discards_the_connection() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    tomcat.member.reply(b"AB\x00\x01\x77")  # unknown message type
    assert client.value().startswith(b"HTTP/1.1 502 ")
    assert tomcat.member.transport.aborted


def test_second_send_headers_after_the_response_began_closes_the_client() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    headers = SendHeaders(status=200, reason=b"200", headers=())
    tomcat.send(headers, SendBodyChunk(data=b"part"))
    # SEND_HEADERS again (status 200, empty reason, no headers), written by hand: the
    # container end of the codec refuses to send it.
    tomcat.member.reply(b"AB\x00\x08\x04\x00\xc8\x00\x00\x00\x00\x00")
    assert client.value().endswith(b"4\r\npart\r\n")  # and no terminating chunk
    assert client.aborted
    assert tomcat.member.transport.aborted


def test_body_beyond_content_length_is_a_protocol_error() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    tomcat.send(
        SendHeaders(status=200, reason=b"200", headers=((b"Content-Length", b"2"),)),
        SendBodyChunk(data=b"abc"),
    )
    assert client.aborted
    assert b"abc" not in client.value()


def test_end_response_short_of_content_length_closes_the_client() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    tomcat.send(
        SendHeaders(status=200, reason=b"200", headers=((b"Content-Length", b"10"),)),
        SendBodyChunk(data=b"abc"),
        EndResponse(reuse=True),
    )
    assert client.aborted


def test_member_closing_mid_response_closes_the_client() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    tomcat.send(SendHeaders(status=200, reason=b"200", headers=()), SendBodyChunk(data=b"x"))
    tomcat.member.transport.peer_closes()
    assert client.aborted


def test_silent_member_gives_504() -> None:
    h, client, tomcat = get_sent("timeout=5")
    h.reactor.advance(6)
    assert client.value().startswith(b"HTTP/1.1 504 ")
    assert tomcat.member.transport.aborted


def test_stale_pooled_ajp_connection_is_retried_for_a_get() -> None:
    h = ajp_harness()
    proto, client = h.client()
    proto.dataReceived(GET)
    first = Container(h.accept_member())
    first.received()
    first.answer(b"one")
    proto.dataReceived(GET)
    first.member.transport.peer_closes()  # Tomcat had closed the idle connection
    second = Container(h.accept_member())
    assert forward(second.received()).uri == b"/app/x"
    second.answer(b"two")
    assert client.value().endswith(b"two")


def test_headers_that_overflow_the_packet_give_400_and_reach_no_member() -> None:
    h = ajp_harness()
    proto, client = h.client()
    big = b"X-Big: " + b"x" * 5000 + b"\r\n"
    proto.dataReceived(b"GET /app/x HTTP/1.1\r\nHost: h\r\n" + big + big + b"\r\n")
    member = h.accept_member()
    assert client.value().startswith(b"HTTP/1.1 400 ")
    assert member.transport.value() == b""


def test_a_bigger_packet_size_carries_the_same_headers() -> None:
    h = ajp_harness("packetsize=65536")
    proto, _client = h.client()
    big = b"X-Big: " + b"x" * 5000 + b"\r\n"
    proto.dataReceived(b"GET /app/x HTTP/1.1\r\nHost: h\r\n" + big + big + b"\r\n")
    tomcat = Container(h.accept_member(), packet_size=65536)
    assert dict(forward(tomcat.received()).headers)[b"X-Big"] == b"x" * 5000 + b", " + b"x" * 5000


def test_slow_client_pauses_the_ajp_member_and_reuse_resumes_it() -> None:
    _, client, tomcat = get_sent()
    tomcat.received()
    tomcat.send(SendHeaders(status=200, reason=b"200", headers=()), SendBodyChunk(data=b"a"))
    assert client.producer is not None
    client.producer.pauseProducing()
    assert tomcat.member.transport.producerState == "paused"
    tomcat.send(EndResponse(reuse=True))
    tomcat.codec.start_next_cycle()
    assert tomcat.member.transport.producerState == "producing"


def test_headers_that_overflow_the_packet_are_charged_to_no_member() -> None:
    """The request cannot be expressed to the member at all: the 400 is the request's,
    so the access log names no member and the member is neither busy nor elected."""
    stream = io.StringIO()
    h = Harness(
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:1\n"
        "ProxyPass = /app balancer://c/app\n"
        "[balancer://c]\nBalancerMember = ajp://127.0.0.2:8009\n",
        access_log=AccessLog(stream),
    )
    proto, client = h.client()
    big = b"X-Big: " + b"x" * 5000 + b"\r\n"
    proto.dataReceived(b"GET /app/x HTTP/1.1\r\nHost: h\r\n" + big + big + b"\r\n")
    member = h.accept_member()
    assert client.value().startswith(b"HTTP/1.1 400 ")
    assert member.transport.value() == b""
    line = stream.getvalue()
    assert '"GET /app/x HTTP/1.1" 400 ' in line
    assert line.endswith('"-" "-" -\n')  # no referer, no user agent, no member
    (state,) = h.runtime.balancers["c"].states
    assert (state.elected, state.busy) == (0, 0)
