"""The historical AJP13 pitfalls (apache-ajp-reference.md §2.10, items 1-18), one test
(or more) per item, named after it. Where an item is about I/O rather than the codec
(timeouts), the test pins the codec's part of it."""

from __future__ import annotations

import dataclasses

import pytest

from ajpbalancer.ajp import (
    ClientConnection,
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    LocalProtocolError,
    RemoteProtocolError,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
    State,
)
from tests.unit import ajp_vectors as v

GET = ForwardRequest(
    method=b"GET",
    uri=b"/",
    remote_addr=b"127.0.0.1",
    server_name=b"h",
    server_port=80,
    is_ssl=False,
    headers=(),
)


def ab(payload: bytes) -> bytes:
    return b"AB" + len(payload).to_bytes(2, "big") + payload


def ws(payload: bytes) -> bytes:
    return b"\x12\x34" + len(payload).to_bytes(2, "big") + payload


def waiting(request: ForwardRequest = GET) -> ClientConnection:
    conn = ClientConnection()
    conn.send(request)
    return conn


def head(status: int) -> bytes:
    return ab(b"\x04" + status.to_bytes(2, "big") + b"\x00\x01R\x00\x00\x00")


def test_pitfall_01_string_length_excludes_the_nul_and_null_has_none() -> None:
    packet = ClientConnection().send(dataclasses.replace(GET, server_name=b"abc"))
    # remote_host null: 0xFFFF and straight on to server_name, whose NUL is not counted.
    assert b"\xff\xff\x00\x03abc\x00\x00\x50" in packet
    counted = packet.replace(b"\x00\x03abc\x00", b"\x00\x04abc\x00")
    with pytest.raises(RemoteProtocolError):
        ServerConnection().receive_data(counted)


def test_pitfall_02_ssl_key_size_is_a_uint16() -> None:
    event = dataclasses.replace(GET, is_ssl=True, ssl_key_size=256)
    packet = ClientConnection().send(event)
    assert packet.endswith(b"\x0b\x01\x00\xff")
    assert ServerConnection().receive_data(packet) == [event]
    as_string = ws(packet[4:-4] + b"\x0b\x00\x03256\x00\xff")
    with pytest.raises(RemoteProtocolError):
        ServerConnection().receive_data(as_string)


def test_pitfall_03_literal_names_of_7_and_8_bytes_are_not_header_codes() -> None:
    """Tomcat bug 5861: a 7- or 8-byte literal name read as content-type/length."""
    assert ServerConnection().receive_data(v.FORWARD_GET)[0].headers[2:4] == (  # type: ignore[attr-defined]
        (b"X-Forty", b"7"),
        (b"X-Custom", b"8"),
    )
    conn = waiting()
    (event,) = conn.receive_data(v.SEND_HEADERS_200)
    assert isinstance(event, SendHeaders)
    assert event.headers[2:4] == ((b"X-Seven", b"7"), (b"X-Custom", b"8"))
    assert (
        ClientConnection()
        .send(dataclasses.replace(GET, headers=((b"X-Forty", b"7"), (b"Content-Type", b"t"))))
        .endswith(b"\x00\x07X-Forty\x00\x00\x017\x00\xa0\x07\x00\x01t\x00\xff")
    )


def test_pitfall_04_a_reason_phrase_is_always_there() -> None:
    """Tomcat bug 45026: a null reason crashed mod_jk; a missing one becomes the digits."""
    assert waiting().receive_data(v.SEND_HEADERS_404_NULL_REASON)[0] == SendHeaders(
        status=404, reason=b"404", headers=()
    )
    assert waiting().receive_data(ab(b"\x04\x00\xc8\x00\x00\x00\x00\x00"))[0] == SendHeaders(
        status=200, reason=b"200", headers=()
    )
    with pytest.raises(LocalProtocolError, match="reason must not be empty"):
        SendHeaders(status=200, reason=b"", headers=())


def test_pitfall_05_headers_overflowing_the_packet_are_a_400() -> None:
    big_cookie = dataclasses.replace(GET, headers=((b"Cookie", b"x" * 8192),))
    conn = ClientConnection()
    with pytest.raises(LocalProtocolError, match="do not fit in one AJP packet of 8192") as info:
        conn.send(big_cookie)
    assert info.value.status_hint == 400
    assert len(ClientConnection(max_packet_size=65536).send(big_cookie)) < 65536


def test_pitfall_06_body_chunk_length_is_checked_exactly() -> None:
    largest = ab(b"\x03\x1f\xf8" + b"x" * 8184 + b"\x00")
    assert len(largest) == 8192
    conn = waiting()
    conn.receive_data(v.SEND_HEADERS_200)
    assert conn.receive_data(largest) == [SendBodyChunk(data=b"x" * 8184)]
    with pytest.raises(RemoteProtocolError, match="larger than the packet size"):
        conn.receive_data(ab(b"\x03\x1f\xf9" + b"x" * 8185 + b"\x00"))
    nul_counted = waiting()
    nul_counted.receive_data(v.SEND_HEADERS_200)
    with pytest.raises(RemoteProtocolError, match="says 6 bytes, its packet carries 5"):
        nul_counted.receive_data(ab(b"\x03\x00\x06hello\x00"))


@pytest.mark.parametrize(
    ("framing", "owed"),
    [
        (((b"Content-Length", b"5"),), True),
        (((b"Content-Length", b"0"),), False),
        (((b"Transfer-Encoding", b"chunked"),), False),
        ((), False),
    ],
)
def test_pitfall_07_the_unsolicited_first_body_packet_only_with_content_length(
    framing: tuple[tuple[bytes, bytes], ...], owed: bool
) -> None:
    request = dataclasses.replace(GET, method=b"POST", headers=framing)
    client = waiting(request)
    assert client.body_packet_owed is owed
    server = ServerConnection()
    server.receive_data(ClientConnection().send(request))
    assert server.body_expected is owed
    if owed:  # the next packet is body data, not a message
        assert server.receive_data(v.BODY_HELLO) == [RequestBody(data=b"hello")]
    else:  # the next packet is a message: body data here would be a desync
        with pytest.raises(LocalProtocolError):
            client.send(RequestBody(data=b"hello"))
        with pytest.raises(RemoteProtocolError):
            server.receive_data(v.BODY_HELLO)


@pytest.mark.parametrize(
    "bad",
    [
        v.SEND_HEADERS_200,  # a second SEND_HEADERS
        ab(b"\x03\x00\x06hello\x00"),  # a malformed chunk midway
        b"",  # no END_RESPONSE: the member closed
    ],
)
def test_pitfall_08_an_error_midway_never_leaves_a_reusable_connection(bad: bytes) -> None:
    """CVE-2022-36760: a connection pooled after an error smuggles the next request."""
    conn = waiting(dataclasses.replace(GET, method=b"POST", headers=((b"Content-Length", b"9"),)))
    conn.send(RequestBody(data=b"part"))
    conn.receive_data(v.SEND_HEADERS_200 + v.SEND_BODY_CHUNK_HELLO)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(bad)
    assert conn.state is State.ERROR
    assert not conn.reusable
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_pitfall_08_end_response_before_the_owed_body_packet_forbids_reuse() -> None:
    conn = waiting(dataclasses.replace(GET, method=b"POST", headers=((b"Content-Length", b"9"),)))
    conn.receive_data(v.SEND_HEADERS_200 + v.END_RESPONSE_REUSE)
    assert not conn.reusable


@pytest.mark.parametrize(
    "framing",
    [
        ((b"Content-Length", b"5"), (b"Content-Length", b"5")),
        ((b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")),
        ((b"Transfer-Encoding", b"gzip"),),
        ((b"Transfer-Encoding", b"chunked, chunked"),),
    ],
)
def test_pitfall_09_ambiguous_request_framing_is_refused(
    framing: tuple[tuple[bytes, bytes], ...],
) -> None:
    """CVE-2022-26377: Content-Length and Transfer-Encoding must agree with what is sent."""
    with pytest.raises(LocalProtocolError):
        dataclasses.replace(GET, method=b"POST", headers=framing)


def test_pitfall_09_body_bytes_must_match_the_content_length() -> None:
    request = dataclasses.replace(GET, method=b"POST", headers=((b"Content-Length", b"5"),))
    too_much = waiting(request)
    with pytest.raises(LocalProtocolError, match="only 5 are owed"):
        too_much.send(RequestBody(data=b"hello!"))
    too_little = waiting(request)
    too_little.send(RequestBody(data=b"hell"))
    too_little.receive_data(ab(b"\x06\x1f\xfa"))
    with pytest.raises(LocalProtocolError, match="ends 1 bytes before its Content-Length"):
        too_little.send(RequestBody(data=b""))
    server = ServerConnection()
    server.receive_data(ClientConnection().send(request))
    with pytest.raises(RemoteProtocolError, match="6 bytes, but 5 were asked for"):
        server.receive_data(ws(b"\x00\x06hello!"))


def test_pitfall_10_response_framing_is_ajps_not_the_members_headers() -> None:
    """The codec never frames the body by the member's Content-Length or
    Transfer-Encoding: it hands them over untouched for the proxy to drop and re-frame."""
    conn = waiting()
    server = ServerConnection()
    server.receive_data(ClientConnection().send(GET))
    lying = SendHeaders(
        status=200,
        reason=b"OK",
        headers=((b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")),
    )
    stream = server.send(lying) + server.send(SendBodyChunk(data=b"0123456789"))
    stream += server.send(EndResponse(reuse=True))
    assert conn.receive_data(stream) == [
        lying,
        SendBodyChunk(data=b"0123456789"),
        EndResponse(reuse=True),
    ]


def test_pitfall_11_a_zero_length_chunk_is_a_flush_not_the_end() -> None:
    conn = waiting()
    events = conn.receive_data(v.SEND_HEADERS_200 + v.FLUSH + v.SEND_BODY_CHUNK_HELLO)
    assert events[1:] == [SendBodyChunk(data=b""), SendBodyChunk(data=b"hello")]
    assert conn.state is State.RESPONSE
    assert conn.receive_data(v.END_RESPONSE_REUSE) == [EndResponse(reuse=True)]
    assert (conn.state, conn.reusable) == (State.DONE, True)


def test_pitfall_12_cping_waits_for_its_cpong_and_nothing_else() -> None:
    """The timeout itself is the glue's (an injected clock); the codec stays in
    CPING_SENT until CPONG, refuses anything else, and is usable again after it."""
    conn = ClientConnection()
    conn.send(CPing())
    assert not conn.reusable
    assert conn.receive_data(v.CPONG) == [CPong()]
    assert conn.reusable
    conn.send(GET)
    other = ClientConnection()
    other.send(CPing())
    with pytest.raises(RemoteProtocolError):
        other.receive_data(v.SEND_HEADERS_200)


def test_pitfall_12_a_request_cannot_overtake_its_cping() -> None:
    conn = ClientConnection()
    conn.send(CPing())
    with pytest.raises(LocalProtocolError, match="FORWARD_REQUEST is not allowed in state CPING"):
        conn.send(GET)


@pytest.mark.parametrize(("method", "status"), [(b"HEAD", 200), (b"GET", 204), (b"GET", 304)])
def test_pitfall_13_head_and_no_content_responses_carry_no_body(method: bytes, status: int) -> None:
    request = dataclasses.replace(GET, method=method)
    packet = ClientConnection().send(request)
    assert packet[5] == (3 if method == b"HEAD" else 2)
    conn = waiting(request)
    events = conn.receive_data(head(status) + v.SEND_BODY_CHUNK_HELLO + v.END_RESPONSE_REUSE)
    assert [type(e) for e in events] == [SendHeaders, EndResponse]


def test_pitfall_14_patch_and_other_unknown_methods_are_stored() -> None:
    packet, event = v.FORWARD_PATCH_TLS, v.FORWARD_PATCH_TLS_EVENT
    assert packet[5] == 0xFF
    assert b"\x0d\x00\x05PATCH\x00" in packet
    assert ClientConnection().send(event) == packet
    assert ServerConnection().receive_data(packet)[0] == event


@pytest.mark.parametrize("uri", [b"/a?b=1", b"/a b", b"/a\r\nX: y", b"/\x00", b"http://evil/"])
def test_pitfall_15_req_uri_never_carries_a_query_or_controls(uri: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="uri must be a path"):
        dataclasses.replace(GET, uri=uri)
    packet = ClientConnection().send(dataclasses.replace(GET, uri=b"/a", query_string=b"b=1"))
    assert b"\x00\x02/a\x00" in packet
    assert packet.endswith(b"\x05\x00\x03b=1\x00\xff")  # the query travels as attribute 0x05


def test_pitfall_16_remote_host_null_and_empty_differ() -> None:
    null = ClientConnection().send(GET)
    empty = ClientConnection().send(dataclasses.replace(GET, remote_host=b""))
    assert b"127.0.0.1\x00\xff\xff\x00\x01h" in null
    assert b"127.0.0.1\x00\x00\x00\x00\x00\x01h" in empty
    assert ServerConnection().receive_data(null)[0].remote_host is None  # type: ignore[attr-defined]
    assert ServerConnection().receive_data(empty)[0].remote_host == b""  # type: ignore[attr-defined]


def test_pitfall_17_documentation_typos_do_not_leak_in() -> None:
    # BASELINE-CONTROL (hyphen) is method 26; the underscore spelling is not in the table.
    assert ClientConnection().send(dataclasses.replace(GET, method=b"BASELINE-CONTROL"))[5] == 26
    assert ClientConnection().send(dataclasses.replace(GET, method=b"BASELINE_CONTROL"))[5] == 0xFF
    # Integers are 0..65535, not "0 to 2^16 (32768)".
    top = dataclasses.replace(GET, server_port=65535)
    assert ServerConnection().receive_data(ClientConnection().send(top)) == [top]
    # context (0x01) and servlet_path (0x02) are read and ignored, as Tomcat does.
    packet = ClientConnection().send(GET)
    extra = ws(packet[4:-1] + b"\x01\x00\x04/ctx\x00\x02\xff\xff\xff")
    assert ServerConnection().receive_data(extra) == [GET]


@pytest.mark.parametrize(("size", "cap"), [(8192, 8186), (65536, 65530)])
def test_pitfall_18_get_body_chunk_is_capped_at_the_packet_size_minus_6(
    size: int, cap: int
) -> None:
    conn = ClientConnection(max_packet_size=size)
    conn.send(
        dataclasses.replace(GET, method=b"POST", headers=((b"Transfer-Encoding", b"chunked"),))
    )
    conn.receive_data(v.GET_BODY_CHUNK_65535)
    assert conn.body_owed == cap
    packet = conn.send(RequestBody(data=b"x" * cap))
    assert len(packet) == size
