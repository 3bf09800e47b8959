"""Packet framing: primitives written into a capped packet, payloads cut from a stream,
primitives read back; every limit crossed once."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.ajp import LocalProtocolError, RemoteProtocolError
from ajpbalancer.ajp._packet import PacketBuffer, PacketWriter, Reader

TO = b"\x12\x34"
FROM = b"AB"


# --- PacketWriter -----------------------------------------------------------------------


def test_writer_encodes_each_primitive() -> None:
    w = PacketWriter(TO, 8192)
    w.put_byte(0x02)
    w.put_bool(True)
    w.put_bool(False)
    w.put_uint16(0xA00B)
    w.put_uint16(65535)
    w.put_string(b"abc")
    w.put_string(b"")
    w.put_optional_string(None)
    w.put_optional_string(b"x")
    w.put_raw(b"\xa0\x01")
    assert w.finish() == (
        b"\x12\x34\x00\x18"
        b"\x02\x01\x00\xa0\x0b\xff\xff"
        b"\x00\x03abc\x00"  # the NUL is not counted
        b"\x00\x00\x00"  # the empty string still has its NUL
        b"\xff\xff"  # null: nothing after the length
        b"\x00\x01x\x00"
        b"\xa0\x01"
    )


def test_writer_fills_the_packet_to_the_byte() -> None:
    w = PacketWriter(FROM, 8192)
    w.put_string(b"x" * (8192 - 4 - 3))
    packet = w.finish()
    assert len(packet) == 8192
    assert packet[:4] == b"AB\x1f\xfc"


def test_writer_refuses_a_string_one_byte_too_long() -> None:
    w = PacketWriter(FROM, 8192, what="the things", status_hint=400)
    with pytest.raises(LocalProtocolError) as info:
        w.put_string(b"x" * (8192 - 4 - 2))
    assert str(info.value) == "the things do not fit in one AJP packet of 8192 bytes"
    assert info.value.status_hint == 400


def test_writer_refuses_fixed_fields_past_the_cap_at_finish() -> None:
    w = PacketWriter(TO, 8192)
    w.put_string(b"x" * (8192 - 4 - 3))
    w.put_byte(0xFF)
    with pytest.raises(LocalProtocolError) as info:
        w.finish()
    assert info.value.status_hint == 500


def test_writer_refuses_a_string_whose_length_would_read_as_null() -> None:
    w = PacketWriter(TO, 1 << 20)
    with pytest.raises(LocalProtocolError):
        w.put_string(b"x" * 0xFFFF)


# --- PacketBuffer -----------------------------------------------------------------------

PACKETS = [b"AB\x00\x01\x09", b"AB\x00\x00", b"AB\x00\x03\x06\x1f\xfa", b"AB\x00\x02\x05\x01"]
PAYLOADS = [b"\x09", b"", b"\x06\x1f\xfa", b"\x05\x01"]


def feed_payloads(buf: PacketBuffer, chunks: list[bytes]) -> list[bytes]:
    return [bytes(p) for chunk in chunks for p in buf.feed(chunk)]


def test_buffer_cuts_whole_packets() -> None:
    buf = PacketBuffer(FROM, 8192)
    assert feed_payloads(buf, [b"".join(PACKETS)]) == PAYLOADS
    assert buf.buffered == 0


def test_buffer_cuts_packets_fed_one_byte_at_a_time() -> None:
    data = b"".join(PACKETS)
    buf = PacketBuffer(FROM, 8192)
    assert feed_payloads(buf, [data[i : i + 1] for i in range(len(data))]) == PAYLOADS


def test_buffer_keeps_the_start_of_the_next_packet() -> None:
    buf = PacketBuffer(FROM, 8192)
    assert feed_payloads(buf, [PACKETS[0] + PACKETS[2][:5]]) == PAYLOADS[:1]
    assert buf.buffered == 5
    assert feed_payloads(buf, [PACKETS[2][5:] + PACKETS[3][:1]]) == [PAYLOADS[2]]
    assert buf.buffered == 1
    assert feed_payloads(buf, [PACKETS[3][1:]]) == [PAYLOADS[3]]


@given(st.lists(st.integers(min_value=0, max_value=18), max_size=8))
def test_buffer_cuts_the_same_payloads_at_any_split(cuts: list[int]) -> None:
    data = b"".join(PACKETS)
    bounds = sorted({0, len(data), *cuts})
    chunks = [data[a:b] for a, b in pairwise(bounds)]
    assert feed_payloads(PacketBuffer(FROM, 8192), chunks) == PAYLOADS


@pytest.mark.parametrize("bad", [b"X", b"AX", b"\x12\x34\x00\x01\x0a", b"\x41"])
def test_buffer_refuses_bad_magic_as_soon_as_it_shows(bad: bytes) -> None:
    buf = PacketBuffer(FROM, 8192)
    if bad == b"\x41":
        assert buf.feed(bad) == []  # a correct first byte: wait for the second
        bad = b"\x43"
    with pytest.raises(RemoteProtocolError, match="magic"):
        buf.feed(bad)


def test_buffer_refuses_bad_magic_of_a_later_packet() -> None:
    buf = PacketBuffer(TO, 8192)
    with pytest.raises(RemoteProtocolError, match="magic"):
        buf.feed(b"\x12\x34\x00\x00" + b"AB\x00\x00")


def test_buffer_refuses_bad_magic_completed_across_reads() -> None:
    buf = PacketBuffer(TO, 8192)
    assert buf.feed(b"\x12") == []
    with pytest.raises(RemoteProtocolError, match="magic"):
        buf.feed(b"\x35\x00")


@pytest.mark.parametrize("size", [8192, 65536])
def test_buffer_accepts_the_largest_packet(size: int) -> None:
    limit = size - 4
    packet = b"AB" + limit.to_bytes(2, "big") + b"\x00" * limit
    assert feed_payloads(PacketBuffer(FROM, size), [packet]) == [b"\x00" * limit]


def test_buffer_refuses_an_oversize_length_before_any_payload() -> None:
    """The 4 header bytes alone are enough to refuse a packet longer than the limit."""
    buf = PacketBuffer(FROM, 8192)
    with pytest.raises(RemoteProtocolError, match="larger than the packet size 8192"):
        buf.feed(b"AB\x1f\xfd")  # 8189 + 4 = 8193 bytes


def test_buffer_refuses_an_oversize_length_whose_header_is_split() -> None:
    buf = PacketBuffer(FROM, 8192)
    assert buf.feed(b"AB\x1f") == []
    with pytest.raises(RemoteProtocolError, match="larger"):
        buf.feed(b"\xfd")


def test_buffer_refuses_an_oversize_length_behind_a_whole_packet() -> None:
    buf = PacketBuffer(FROM, 8192)
    with pytest.raises(RemoteProtocolError, match="larger"):
        buf.feed(b"AB\x00\x01\x09" + b"AB\xff\xff")


# --- Reader -----------------------------------------------------------------------------


def test_reader_reads_each_primitive() -> None:
    r = Reader(memoryview(b"\x02\x01\x00\xa0\x0b\x00\x03abc\x00\xff\xff\x00\x00\x00hello"))
    assert r.byte() == 2
    assert r.boolean() is True
    assert r.boolean() is False
    assert r.peek_uint16() == 0xA00B
    assert r.uint16() == 0xA00B
    assert r.string("s") == b"abc"
    assert r.optional_string() is None
    assert r.optional_string() == b""
    assert r.remaining == 5
    assert r.raw(5) == b"hello"
    r.expect_end("it")


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (b"", "byte"),
        (b"\x00", "uint16"),
        (b"\x00", "peek_uint16"),
        (b"\x00\x05abc", "optional_string"),  # truncated string
        (b"\x00\x03abc", "optional_string"),  # no room for the NUL
        (b"\x00\x03abcX", "optional_string"),  # a byte where the NUL must be
        (b"\x00\x02abc\x00", "optional_string"),  # the NUL counted in the length
        (b"\xff\xff", "string"),  # null where a value is required
        (b"\x02", "boolean"),  # a boolean is 0 or 1
        (b"ab", "raw"),
    ],
)
def test_reader_refuses_malformed_primitives(data: bytes, read: str) -> None:
    r = Reader(memoryview(data))
    with pytest.raises(RemoteProtocolError):
        if read == "string":
            r.string("value")
        elif read == "raw":
            r.raw(3)
        else:
            getattr(r, read)()


def test_reader_refuses_trailing_bytes() -> None:
    r = Reader(b"\x05\x01\x00")
    r.byte()
    r.boolean()
    with pytest.raises(RemoteProtocolError, match="1 unexpected bytes after END_RESPONSE"):
        r.expect_end("END_RESPONSE")
