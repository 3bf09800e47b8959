"""The RESP2 codec: commands as Redis reads them, replies whole, in pieces, and refused
beyond every limit or out of the grammar (the server's fault, the connection dropped)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.resp import (
    NEED_DATA,
    ErrorReply,
    Limits,
    Reply,
    ReplyParser,
    RESPProtocolError,
    encode_command,
)

REPLIES: list[tuple[bytes, Reply]] = [
    (b"+OK\r\n", b"OK"),
    (b"-ERR wrong\r\n", ErrorReply("ERR wrong")),
    (b":42\r\n", 42),
    (b":-7\r\n", -7),
    (b"$5\r\nhello\r\n", b"hello"),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),
    (
        b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\ndata\r\n",
        [b"message", b"ch", b"data"],
    ),
    (b"*2\r\n$1\r\n1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", [b"1", [b"f", b"v"]]),
]


def replies(parser: ReplyParser) -> list[Reply]:
    out: list[Reply] = []
    while (reply := parser.next_reply()) is not NEED_DATA:
        out.append(reply)  # type: ignore[arg-type]
    return out


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert encode_command("SET", b"k\r\n", 12) == b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n"
    assert encode_command("é") == b"*1\r\n$2\r\n\xc3\xa9\r\n"
    with pytest.raises(ValueError):
        encode_command()


@pytest.mark.parametrize(("data", "reply"), REPLIES)
def test_each_reply_whole_and_one_byte_at_a_time(data: bytes, reply: Reply) -> None:
    whole = ReplyParser()
    whole.receive_data(data)
    assert replies(whole) == [reply]
    piecewise = ReplyParser()
    got: list[Reply] = []
    for byte in data:
        assert got == []
        piecewise.receive_data(bytes([byte]))
        got += replies(piecewise)
    assert got == [reply]


@given(st.lists(st.integers(0, len(REPLIES) - 1), max_size=8), st.data())
def test_replies_in_a_row_split_anywhere(indexes: list[int], data: st.DataObject) -> None:
    stream = b"".join(REPLIES[i][0] for i in indexes)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser = ReplyParser()
    got: list[Reply] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        parser.receive_data(stream[start:cut])
        got += replies(parser)
        start = cut
    assert got == [REPLIES[i][1] for i in indexes]


@pytest.mark.parametrize(
    "data",
    [
        b"?what\r\n",
        b"\r\n",
        b":12a\r\n",
        b":\r\n",
        b"$-2\r\n",
        b"$3\r\nabcde\r\n",
        b"*-5\r\n",
        b":" + b"9" * 30 + b"\r\n",
    ],
)
def test_anything_else_is_the_servers_fault_and_poisons_the_parser(data: bytes) -> None:
    parser = ReplyParser()
    parser.receive_data(data)
    with pytest.raises(RESPProtocolError):
        parser.next_reply()
    with pytest.raises(RESPProtocolError):
        parser.receive_data(b"+OK\r\n")


def test_every_limit_is_checked_before_buffering() -> None:
    limits = Limits(line=16, bulk=8, elements=2, depth=2, reply=64)
    for data in (
        b"$9\r\n",  # a bulk string over the limit: refused from its length alone
        b"*3\r\n",  # too many elements
        b"*1\r\n*1\r\n*1\r\n*0\r\n",  # nested too deep
        b"+" + b"a" * 40,  # a line over the limit, no CRLF yet
    ):
        parser = ReplyParser(limits)
        parser.receive_data(data)
        with pytest.raises(RESPProtocolError):
            parser.next_reply()
    parser = ReplyParser(limits)
    with pytest.raises(RESPProtocolError):
        parser.receive_data(b"$8\r\n" + b"x" * 100)  # more buffered than a reply may hold
    at_limit = ReplyParser(limits)
    at_limit.receive_data(b"$8\r\n12345678\r\n*2\r\n:1\r\n:2\r\n")
    assert replies(at_limit) == [b"12345678", [1, 2]]
