"""Hypothesis round trips: every event type encoded by one end decodes to the same event
at the other (coded header names come back in their table's case), encodes again to the
same bytes, and decodes the same however the stream is split."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from ajpbalancer.ajp import (
    ClientConnection,
    CPing,
    CPong,
    EndResponse,
    Event,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)
from ajpbalancer.ajp._constants import (
    METHOD_CODES,
    REQUEST_HEADER_CODES,
    RESPONSE_HEADER_CODES,
    RESPONSE_HEADERS_BY_CODE,
)

TOKEN = list(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
TEXT = [9, *range(0x20, 0x7F), *range(0x80, 0x100)]
VISIBLE = [*range(0x21, 0x7F), *range(0x80, 0x100)]
FRAMING = (b"content-length", b"transfer-encoding")

tokens = st.lists(st.sampled_from(TOKEN), min_size=1, max_size=16).map(bytes)
texts = st.lists(st.sampled_from(TEXT), max_size=24).map(bytes)
visibles = st.lists(st.sampled_from(VISIBLE), max_size=16).map(bytes)
paths = st.one_of(
    st.just(b"*"),
    st.lists(st.sampled_from([b for b in VISIBLE if b != ord("?")]), max_size=24).map(
        lambda p: b"/" + bytes(p)
    ),
)
cases = st.sampled_from([bytes.lower, bytes.upper, bytes.title, lambda b: b])
sizes = st.sampled_from([8192, 16384, 65536])


def with_case(names: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(lambda n, c: c(n), names, cases)


request_names = st.one_of(tokens, with_case(st.sampled_from(list(REQUEST_HEADER_CODES)))).filter(
    lambda n: n.lower() not in FRAMING
)
response_names = st.one_of(tokens, with_case(st.sampled_from(list(RESPONSE_HEADER_CODES))))
framings = st.sampled_from(
    [
        (),
        ((b"Content-Length", b"0"),),
        ((b"content-length", b"17"),),
        ((b"Transfer-Encoding", b"chunked"),),
    ]
)


@st.composite
def forward_requests(draw: st.DrawFn) -> ForwardRequest:
    is_ssl = draw(st.booleans())

    def maybe(strategy: st.SearchStrategy[bytes]) -> bytes | None:
        return draw(st.none() | strategy)

    headers = draw(st.lists(st.tuples(request_names, texts), max_size=8))
    at = draw(st.integers(min_value=0, max_value=len(headers)))
    headers[at:at] = draw(framings)
    return ForwardRequest(
        method=draw(st.one_of(st.sampled_from(list(METHOD_CODES)), tokens)),
        protocol=draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"])),
        uri=draw(paths),
        remote_addr=draw(visibles),
        remote_host=maybe(visibles),
        server_name=draw(visibles),
        server_port=draw(st.integers(min_value=0, max_value=65535)),
        is_ssl=is_ssl,
        headers=tuple(headers),
        secret=maybe(texts),
        remote_user=maybe(texts),
        auth_type=maybe(texts),
        query_string=maybe(visibles),
        jvm_route=maybe(texts),
        ssl_cert=maybe(texts) if is_ssl else None,
        ssl_cipher=maybe(visibles) if is_ssl else None,
        ssl_session=maybe(visibles) if is_ssl else None,
        ssl_key_size=draw(st.none() | st.integers(0, 65535)) if is_ssl else None,
        request_attributes=tuple(
            draw(st.lists(st.tuples(visibles.filter(bool), texts), max_size=4))
        ),
    )


send_headers = st.builds(
    lambda status, reason, headers: SendHeaders(status=status, reason=reason, headers=headers),
    st.integers(min_value=200, max_value=999),
    texts.filter(bool),
    st.lists(st.tuples(response_names, texts), max_size=8).map(tuple),
)


def as_decoded_request(event: ForwardRequest) -> ForwardRequest:
    """What the container decodes: coded names in lower case, as Tomcat names them."""
    headers = tuple(
        (n.lower() if n.lower() in REQUEST_HEADER_CODES else n, v) for n, v in event.headers
    )
    return dataclasses.replace(event, headers=headers)


def as_decoded_response(event: SendHeaders) -> SendHeaders:
    """What the web server decodes: coded names in their canonical case."""
    codes = RESPONSE_HEADER_CODES
    headers = tuple(
        (RESPONSE_HEADERS_BY_CODE[codes[n.lower()]] if n.lower() in codes else n, v)
        for n, v in event.headers
    )
    return dataclasses.replace(event, headers=headers)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in pairwise(bounds)]


def receive_all(conn: ClientConnection | ServerConnection, pieces: list[bytes]) -> list[Event]:
    return [event for piece in pieces for event in conn.receive_data(piece)]


def server_ready(size: int = 8192) -> ServerConnection:
    server = ServerConnection(max_packet_size=size)
    server.receive_data(ClientConnection().send(PLAIN))
    return server


PLAIN = ForwardRequest(
    method=b"GET",
    uri=b"/",
    remote_addr=b"1",
    server_name=b"h",
    server_port=1,
    is_ssl=False,
    headers=(),
)


def client_ready(size: int = 8192) -> ClientConnection:
    client = ClientConnection(max_packet_size=size)
    client.send(PLAIN)
    return client


# --- web server to container ------------------------------------------------------------


@settings(max_examples=300)
@given(forward_requests(), st.lists(st.integers(min_value=0), max_size=6))
def test_forward_request_round_trips(event: ForwardRequest, cuts: list[int]) -> None:
    packet = ClientConnection().send(event)
    expected = as_decoded_request(event)
    assert ServerConnection().receive_data(packet) == [expected]
    assert receive_all(ServerConnection(), split(packet, cuts)) == [expected]
    assert ClientConnection().send(expected) == packet  # and back to the same bytes


@given(st.binary(min_size=1, max_size=8186), st.lists(st.integers(min_value=0), max_size=4))
def test_request_body_round_trips(data: bytes, cuts: list[int]) -> None:
    client = ClientConnection()
    event = dataclasses.replace(
        PLAIN, method=b"POST", headers=((b"Content-Length", b"%d" % len(data)),)
    )
    stream = client.send(event) + client.send(RequestBody(data=data))
    events = receive_all(ServerConnection(), split(stream, cuts))
    assert events == [as_decoded_request(event), RequestBody(data=data)]


@settings(max_examples=50)
@given(sizes, st.binary(max_size=70_000), st.data())
def test_chunked_request_body_round_trips_at_every_packet_size(
    size: int, data: bytes, draw: st.DataObject
) -> None:
    client = ClientConnection(max_packet_size=size)
    server = ServerConnection(max_packet_size=size)
    event = dataclasses.replace(PLAIN, method=b"PUT", headers=((b"Transfer-Encoding", b"chunked"),))
    server.receive_data(client.send(event))
    received = b""
    while True:
        ask = draw.draw(st.integers(min_value=1, max_value=65535))
        client.receive_data(server.send(GetBodyChunk(length=ask)))
        assert client.body_owed == min(ask, size - 6, 65535)
        piece = data[len(received) : len(received) + client.body_owed]
        (body,) = server.receive_data(client.send(RequestBody(data=piece)))
        assert isinstance(body, RequestBody)
        received += body.data
        if not piece:
            break
    assert received == data
    assert server.body_finished and client.body_finished


def test_cping_round_trips() -> None:
    assert ServerConnection().receive_data(ClientConnection().send(CPing())) == [CPing()]


# --- container to web server ------------------------------------------------------------


@settings(max_examples=200)
@given(send_headers, st.lists(st.integers(min_value=0), max_size=6))
def test_send_headers_round_trip(event: SendHeaders, cuts: list[int]) -> None:
    packet = server_ready().send(event)
    expected = as_decoded_response(event)
    assert receive_all(client_ready(), split(packet, cuts)) == [expected]
    assert server_ready().send(expected) == packet


@given(st.binary(max_size=8184), st.lists(st.integers(min_value=0), max_size=4))
def test_send_body_chunk_round_trips(data: bytes, cuts: list[int]) -> None:
    server = server_ready()
    server.send(SendHeaders(status=200, reason=b"OK", headers=()))
    client = client_ready()
    client.receive_data(server_ready().send(SendHeaders(status=200, reason=b"OK", headers=())))
    assert receive_all(client, split(server.send(SendBodyChunk(data=data)), cuts)) == [
        SendBodyChunk(data=data)
    ]


@settings(max_examples=30)
@given(sizes, st.binary(max_size=150_000))
def test_long_body_data_arrives_whole_at_every_packet_size(size: int, data: bytes) -> None:
    server = server_ready(size)
    client = client_ready(size)
    client.receive_data(server.send(SendHeaders(status=200, reason=b"OK", headers=())))
    events = client.receive_data(server.send(SendBodyChunk(data=data)))
    chunks = [e.data for e in events if isinstance(e, SendBodyChunk)]
    assert b"".join(chunks) == data
    assert all(len(c) <= size - 8 for c in chunks)


@given(st.integers(min_value=1, max_value=65535))
def test_get_body_chunk_round_trips(length: int) -> None:
    assert client_ready().receive_data(server_ready().send(GetBodyChunk(length=length))) == [
        GetBodyChunk(length=length)
    ]


@given(st.booleans())
def test_end_response_round_trips(reuse: bool) -> None:
    server = server_ready()
    client = client_ready()
    client.receive_data(server.send(SendHeaders(status=200, reason=b"OK", headers=())))
    assert client.receive_data(server.send(EndResponse(reuse=reuse))) == [EndResponse(reuse=reuse)]
    assert client.reusable is reuse is server.reusable


def test_cpong_round_trips() -> None:
    server = ServerConnection()
    server.receive_data(ClientConnection().send(CPing()))
    client = ClientConnection()
    client.send(CPing())
    assert client.receive_data(server.send(CPong())) == [CPong()]


@settings(max_examples=200)
@given(
    send_headers,
    st.lists(st.binary(max_size=300) | st.binary(min_size=8184, max_size=8200), max_size=4),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_a_whole_response_decodes_the_same_however_it_is_split(
    head: SendHeaders, bodies: list[bytes], reuse: bool, cuts: list[int]
) -> None:
    server = server_ready()
    stream = server.send(head)
    for body in bodies:
        stream += server.send(SendBodyChunk(data=body)) + server.send(SendBodyChunk(data=b""))
    stream += server.send(EndResponse(reuse=reuse))
    whole = client_ready().receive_data(stream)
    assert receive_all(client_ready(), split(stream, cuts)) == whole
    if len(stream) < 2000:
        assert receive_all(client_ready(), [stream[i : i + 1] for i in range(len(stream))]) == whole
    assert whole[0] == as_decoded_response(head)
    assert whole[-1] == EndResponse(reuse=reuse)
