"""Fuzzing with Hypothesis: the AJP codec (both ends) and the request front end.

Arbitrary bytes, mutated valid messages, and random split points. What must hold: no
exception but the documented ones escapes (the codec's `AJPProtocolError`; the front
end raises nothing and answers 4xx/5xx and closes), nothing hangs (every call returns;
the examples have a deadline), and memory stays bounded (the codec buffers at most one
packet, the front end at most its head limit plus one read).
"""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ajpbalancer.ajp import (
    AJPProtocolError,
    ClientConnection,
    EndResponse,
    ForwardRequest,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)
from ajpbalancer.frontend._tls import der_session_id
from ajpbalancer.h1 import HeadLimits
from tests.unit.proxyharness import Harness

FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
PIECE = 4096
"""The largest piece fed at once (a real transport's read is at most 64 KiB)."""


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length), in order."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return [p for p in pieces if p]


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, byte) edits: 0 replaces, 1 inserts, 2 deletes a byte."""
    buf = bytearray(data)
    for kind, pos, value in edits:
        if not buf:
            buf.append(value)
            continue
        i = pos % len(buf)
        if kind == 0:
            buf[i] = value
        elif kind == 1:
            buf.insert(i, value)
        else:
            del buf[i]
    return bytes(buf)


EDITS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1 << 16), st.integers(0, 255)),
    min_size=1,
    max_size=6,
)
CUTS = st.lists(st.integers(0, 1 << 16), max_size=12)

FORWARD = ForwardRequest(
    method=b"POST",
    uri=b"/app/echo",
    remote_addr=b"127.0.0.9",
    server_name=b"proxy",
    server_port=80,
    is_ssl=False,
    headers=((b"Host", b"proxy"), (b"Content-Length", b"5"), (b"X-A", b"b")),
    query_string=b"a=1",
    jvm_route=b"node1",
    secret=b"s",
)


def valid_request_bytes() -> bytes:
    client = ClientConnection()
    return client.send(FORWARD) + client.send(RequestBody(data=b"hello"))


def valid_response_bytes() -> bytes:
    server = ServerConnection()
    server.receive_data(valid_request_bytes())
    return b"".join(
        server.send(e)
        for e in (
            SendHeaders(status=200, reason=b"OK", headers=((b"Content-Length", b"3"),)),
            SendBodyChunk(data=b"abc"),
            EndResponse(reuse=True),
        )
    )


REQUEST_BYTES = valid_request_bytes()
RESPONSE_BYTES = valid_response_bytes()


def feed_container(pieces: list[bytes]) -> None:
    """Feed the container end; only `AJPProtocolError` may escape, buffers stay bounded."""
    server = ServerConnection()
    try:
        for piece in pieces:
            server.receive_data(piece)
            assert server._buffer.buffered < server.max_packet_size
    except AJPProtocolError:
        return


def feed_web_server(pieces: list[bytes]) -> None:
    """Feed the web server's end after a request went out; same guarantees."""
    client = ClientConnection()
    client.send(FORWARD)
    client.send(RequestBody(data=b"hello"))
    try:
        for piece in pieces:
            client.receive_data(piece)
            assert client._buffer.buffered < client.max_packet_size
    except AJPProtocolError:
        return


@FUZZ
@given(st.binary(max_size=3000), CUTS)
def test_container_end_survives_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    feed_container(split(data, cuts))


@FUZZ
@given(st.binary(max_size=3000), CUTS)
def test_web_server_end_survives_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    feed_web_server(split(data, cuts))


@FUZZ
@given(EDITS, CUTS)
def test_container_end_survives_mutated_requests(
    edits: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    feed_container(split(mutate(REQUEST_BYTES, edits), cuts))


@FUZZ
@given(EDITS, CUTS)
def test_web_server_end_survives_mutated_responses(
    edits: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    feed_web_server(split(mutate(RESPONSE_BYTES, edits), cuts))


@FUZZ
@given(CUTS)
def test_valid_messages_decode_the_same_at_any_split(cuts: list[int]) -> None:
    """Random split points of a valid exchange give the events of the whole."""
    whole = ServerConnection().receive_data(REQUEST_BYTES)
    server = ServerConnection()
    events = [e for piece in split(REQUEST_BYTES, cuts) for e in server.receive_data(piece)]
    assert events == whole


def test_ajp_packet_buffer_is_bounded_by_the_packet_size() -> None:
    """A declared length over the packet size is refused before its bytes are buffered."""
    server = ServerConnection()
    try:
        server.receive_data(b"\x12\x34\xff\xff")
    except AJPProtocolError:
        return
    raise AssertionError("an oversize packet length was accepted")


# --- the front end --------------------------------------------------------------------------

GOOD_REQUESTS = [
    b"GET /app/x?y=1 HTTP/1.1\r\nHost: a\r\nCookie: c=d\r\n\r\n",
    b"POST /app/up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /app/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"GET /static/x HTTP/1.0\r\n\r\n",
]


def feed_frontend(pieces: list[bytes]) -> bytes:
    """Feed a client connection as a real transport would (nothing while it is paused);
    nothing may raise, the buffer stays within the head limit plus one piece, and what
    the client got is returned."""
    h = Harness()
    proto, client = h.client()
    limits = h.context.frontend.limits
    limit = HeadLimits(
        limits.limit_request_line, limits.limit_request_field_size, limits.limit_request_fields
    ).max_head
    for piece in pieces:
        if client.closed or client.producerState == "paused":
            break
        proto.dataReceived(piece)
        assert proto.buffered <= limit + len(piece)
    return client.io.getvalue()


def check_answer(out: bytes) -> None:
    """Whatever the client got starts as an HTTP/1.1 response (or is nothing yet)."""
    if out:
        assert out.startswith(b"HTTP/1.1 "), out[:100]
        status = int(out[9:12])
        assert 100 <= status < 600


@FUZZ
@given(st.binary(max_size=4000), CUTS)
def test_frontend_survives_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    check_answer(feed_frontend([p[:PIECE] for p in split(data, cuts)]))


@FUZZ
@given(st.sampled_from(GOOD_REQUESTS), EDITS, CUTS, st.booleans())
def test_frontend_survives_mutated_requests(
    request: bytes, edits: list[tuple[int, int, int]], cuts: list[int], twice: bool
) -> None:
    data = mutate(request, edits)
    if twice:  # pipelined after itself
        data += data
    out = feed_frontend(split(data, cuts))
    check_answer(out)
    if out.startswith(b"HTTP/1.1 400 "):  # framing in doubt: the connection ends
        assert b"Connection: close" in out or b"connection: close" in out.lower()


def test_frontend_memory_is_bounded_on_an_endless_head() -> None:
    """5 MiB of a header line that never ends: refused, with a small peak allocation."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"GET / HTTP/1.1\r\nX: ")
    piece = b"a" * 65536
    tracemalloc.start()
    try:
        for _ in range(80):
            if client.closed:
                break
            proto.dataReceived(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert client.closed
    assert client.io.getvalue().startswith(b"HTTP/1.1 4")
    assert peak < 2 << 20, peak


def test_the_session_id_is_the_fourth_field_of_an_ssl_session_in_der() -> None:
    """``SSLSessionASN1``: SEQUENCE { INTEGER 1, INTEGER 0x0304, OCTET STRING cipher,
    OCTET STRING id, ... }; anything else gives None, never an exception."""
    session_id = bytes(range(32))
    body = (
        b"\x02\x01\x01"
        + b"\x02\x02\x03\x04"
        + b"\x04\x02\x13\x01"
        + b"\x04\x20"
        + session_id
        + b"\x04\x30"
        + b"\x00" * 48
    )
    der = b"\x30\x81" + bytes([len(body)]) + body
    assert der_session_id(der) == session_id
    assert der_session_id(der[:20]) is None
    assert der_session_id(b"\x31" + der[1:]) is None
    assert der_session_id(b"") is None
