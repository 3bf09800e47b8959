"""HTTP/1.1 body framing: which reader a message gets, and what each reader accepts.

Readers are fed whole, one byte at a time and with the next message right behind the
body (which must come back untouched); every framing shape used for request smuggling
is refused with the status the code promises.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.h1 import (
    BodyReader,
    ChunkedReader,
    CloseDelimitedReader,
    ContentLengthReader,
    HTTPProtocolError,
    RequestHead,
    ResponseHead,
    request_body_reader,
    response_body_reader,
)
from ajpbalancer.h1._body import MAX_CHUNK_LINE, MAX_TRAILER

NEXT = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"


def feed_all(reader: BodyReader, pieces: Iterable[bytes]) -> tuple[bytes, bytes | None]:
    """Feed ``pieces`` in turn; the body, and what followed it (None if it never ended)."""
    body: list[bytes] = []
    rest: bytes | None = None
    for piece in pieces:
        if rest is not None:
            rest += piece
            continue
        found, rest = reader.feed(piece)
        body += found
    return b"".join(body), rest


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def refusal(reader: BodyReader, pieces: Iterable[bytes]) -> int:
    with pytest.raises(HTTPProtocolError) as info:
        feed_all(reader, pieces)
    return info.value.status


def req(*fields: tuple[bytes, bytes], version: bytes = b"HTTP/1.1") -> RequestHead:
    return RequestHead(b"POST", b"/", version, [(b"Host", b"h"), *fields])


def resp(status: int, *fields: tuple[bytes, bytes]) -> ResponseHead:
    return ResponseHead(b"HTTP/1.1", status, b"", list(fields))


def request_refusal(head: RequestHead) -> int:
    with pytest.raises(HTTPProtocolError) as info:
        request_body_reader(head)
    return info.value.status


def response_refusal(head: ResponseHead, method: bytes = b"GET") -> int:
    with pytest.raises(HTTPProtocolError) as info:
        response_body_reader(head, method)
    return info.value.status


CL = b"Content-Length"
TE = b"Transfer-Encoding"


# -- Content-Length -----------------------------------------------------------------------------


def test_content_length_body_fed_whole_ends_with_nothing_after_it() -> None:
    assert feed_all(ContentLengthReader(5, 400), [b"hello"]) == (b"hello", b"")


def test_content_length_body_fed_one_byte_at_a_time_is_the_same() -> None:
    assert feed_all(ContentLengthReader(5, 400), bytewise(b"hello")) == (b"hello", b"")


def test_content_length_returns_the_next_message_exactly() -> None:
    assert feed_all(ContentLengthReader(5, 400), [b"hello" + NEXT]) == (b"hello", NEXT)


def test_content_length_body_goes_on_until_the_length_is_reached() -> None:
    reader = ContentLengthReader(5, 400)
    assert reader.feed(b"hell") == ([b"hell"], None)
    assert reader.remaining == 1
    assert reader.feed(b"") == ([], None)
    assert reader.feed(b"o!") == ([b"o"], b"!")


def test_eof_inside_a_content_length_body_raises_with_the_readers_status() -> None:
    for status in (400, 502):
        reader = ContentLengthReader(5, status)
        reader.feed(b"hell")
        with pytest.raises(HTTPProtocolError) as info:
            reader.eof()
        assert info.value.status == status


def test_eof_after_a_complete_content_length_body_is_fine() -> None:
    reader = ContentLengthReader(2, 400)
    reader.feed(b"ok")
    reader.eof()


@given(body=st.binary(max_size=200), after=st.binary(max_size=50), data=st.data())
def test_content_length_body_split_anywhere_reads_as_when_whole(
    body: bytes, after: bytes, data: st.DataObject
) -> None:
    whole = body + after
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=10)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    got_body, rest = feed_all(ContentLengthReader(len(body), 400), pieces)
    assert got_body == body
    assert rest == after


# -- close-delimited ----------------------------------------------------------------------------


def test_close_delimited_body_is_everything_until_eof() -> None:
    reader = CloseDelimitedReader()
    assert reader.feed(b"abc") == ([b"abc"], None)
    assert reader.feed(b"") == ([], None)
    assert reader.feed(NEXT) == ([NEXT], None)
    reader.eof()


# -- chunked: valid bodies ----------------------------------------------------------------------

CHUNKED = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n"
CHUNKED_BODY = b"hello 0123456789"


def test_chunked_body_fed_whole_is_decoded() -> None:
    assert feed_all(ChunkedReader(400), [CHUNKED]) == (CHUNKED_BODY, b"")


def test_chunked_body_fed_one_byte_at_a_time_is_decoded() -> None:
    assert feed_all(ChunkedReader(400), bytewise(CHUNKED)) == (CHUNKED_BODY, b"")


def test_chunked_body_returns_the_next_message_exactly() -> None:
    assert feed_all(ChunkedReader(400), [CHUNKED + NEXT]) == (CHUNKED_BODY, NEXT)


def test_chunked_body_fed_one_byte_at_a_time_returns_the_next_message_exactly() -> None:
    assert feed_all(ChunkedReader(400), bytewise(CHUNKED + NEXT)) == (CHUNKED_BODY, NEXT)


def test_chunked_body_does_not_end_before_the_last_chunk_and_trailer_end() -> None:
    reader = ChunkedReader(400)
    for piece in bytewise(CHUNKED[:-1]):
        assert reader.feed(piece)[1] is None
    assert reader.feed(b"\n") == ([], b"")


def test_empty_chunked_body_is_just_the_last_chunk() -> None:
    assert feed_all(ChunkedReader(400), [b"0\r\n\r\n" + NEXT]) == (b"", NEXT)


@pytest.mark.parametrize(
    ("size", "length"),
    [(b"a", 10), (b"A", 10), (b"00000005", 5), (b"1F", 31), (b"1f", 31), (b"0" * 15 + b"3", 3)],
)
def test_chunk_size_is_hex_in_either_case_with_leading_zeros(size: bytes, length: int) -> None:
    data = size + b"\r\n" + b"x" * length + b"\r\n0\r\n\r\n"
    assert feed_all(ChunkedReader(400), [data]) == (b"x" * length, b"")


def test_chunk_data_is_not_buffered_but_passed_on_as_it_arrives() -> None:
    reader = ChunkedReader(400)
    assert reader.feed(b"10\r\nabc") == ([b"abc"], None)
    assert reader.feed(b"defg") == ([b"defg"], None)


def test_trailer_fields_are_consumed_and_not_part_of_the_body() -> None:
    data = b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n" + NEXT
    assert feed_all(ChunkedReader(400), [data]) == (b"abc", NEXT)
    assert feed_all(ChunkedReader(400), bytewise(data)) == (b"abc", NEXT)


VALID_EXTENSIONS = [
    b";a",
    b";a=b",
    b";a=b;c=d",
    b";a;b;c",
    b' ;a="quoted value"',
    b'\t;\ta\t=\t"q"',
    b';a="with \\" escaped quote"',
    b';a="tab\tinside"',
    b';a="\\\\"',
    b";!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz",
    b';a="obs\x80text\xff"',
]


@pytest.mark.parametrize("ext", VALID_EXTENSIONS)
def test_valid_chunk_extension_is_accepted_and_ignored(ext: bytes) -> None:
    data = b"3" + ext + b"\r\nabc\r\n0" + ext + b"\r\n\r\n" + NEXT
    assert feed_all(ChunkedReader(400), [data]) == (b"abc", NEXT)
    assert feed_all(ChunkedReader(400), bytewise(data)) == (b"abc", NEXT)


# -- chunked: malformed bodies ------------------------------------------------------------------

INVALID_SIZE_LINES = [
    b"",
    b" 3",
    b"3 ",
    b"+3",
    b"-3",
    b"0x3",
    b"3g",
    b"g",
    b"3.0",
    b"1" * 17,
    b"3;",
    b"3;=v",
    b"3;a=",
    b"3;a b",
    b"3;a=b c",
    b"3;a=b=c",
    b'3;a="unterminated',
    b'3;a="x"y',
    b"3;a(b)",
    b"3;a=\x00",
    b"3;a\x01",
    b'3;a="\x01"',
    b'3;a="\x7f"',
    b'3;a="\\\x01"',
    b'3;a="\\\x7f"',
    b"3,a",
]


@pytest.mark.parametrize("line", INVALID_SIZE_LINES)
def test_invalid_chunk_size_line_is_refused(line: bytes) -> None:
    data = line + b"\r\nabc\r\n0\r\n\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


@pytest.mark.parametrize(
    "data",
    [
        b"3\nabc\r\n0\r\n\r\n",
        b"3;a=b\nabc\r\n0\r\n\r\n",
        b"3\r\nabc\n0\r\n\r\n",
        b"3\r\nabc\r\n0\n\r\n",
        b"3\r\nabc\r\n0\r\n\n",
        b"3\r\nabc\r\n0\r\nX: 1\n\r\n",
    ],
    ids=["size-line", "extension", "after-data", "last-chunk", "final-crlf", "trailer"],
)
def test_bare_lf_in_chunked_framing_is_refused(data: bytes) -> None:
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


@pytest.mark.parametrize(
    "data",
    [
        b"3\r\r\nabc\r\n0\r\n\r\n",
        b"3;a\rb\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabc\r\r\n0\r\n\r\n",
        b"3\r\nabc\r\n0\r\nX: \r1\r\n\r\n",
    ],
    ids=["size-line", "extension", "after-data", "trailer"],
)
def test_bare_cr_in_chunked_framing_is_refused(data: bytes) -> None:
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


@pytest.mark.parametrize("extra", [b"d", b"defg", b" ", b"\r", b"x\r\n"])
def test_chunk_data_longer_than_its_size_is_refused(extra: bytes) -> None:
    data = b"3\r\nabc" + extra + b"\r\n0\r\n\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


def test_chunk_data_without_its_crlf_is_refused() -> None:
    assert refusal(ChunkedReader(400), [b"3\r\nabc0\r\n\r\n"]) == 400


def test_chunked_errors_carry_the_readers_status() -> None:
    assert refusal(ChunkedReader(502), [b"x\r\n"]) == 502


# -- chunked: limits ---------------------------------------------------------------------------


def size_line_of(length: int) -> bytes:
    """A valid chunk-size line of exactly ``length`` bytes (before its CRLF), size 3."""
    return b"3;e=" + b"v" * (length - 4)


def test_chunk_size_line_at_the_limit_is_accepted() -> None:
    line = size_line_of(MAX_CHUNK_LINE)
    assert MAX_CHUNK_LINE == 4096
    assert len(line) == 4096
    data = line + b"\r\nabc\r\n0\r\n\r\n"
    assert feed_all(ChunkedReader(400), [data]) == (b"abc", b"")
    assert feed_all(ChunkedReader(400), bytewise(data)) == (b"abc", b"")


def test_chunk_size_line_over_the_limit_is_refused() -> None:
    data = size_line_of(MAX_CHUNK_LINE + 1) + b"\r\nabc\r\n0\r\n\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


def test_unterminated_chunk_size_line_is_refused_once_over_the_limit() -> None:
    """The reader does not buffer an endless size line waiting for its LF."""
    reader = ChunkedReader(400)
    # A line at the limit plus the CR of its CRLF may be waiting for the LF...
    assert reader.feed(size_line_of(MAX_CHUNK_LINE) + b"v") == ([], None)
    # ...one more byte and it can no longer be a line within the limit.
    with pytest.raises(HTTPProtocolError) as info:
        reader.feed(b"v")
    assert info.value.status == 400


def trailer_of(total: int) -> list[bytes]:
    """Trailer field lines whose lengths (without CRLF) add up to ``total``."""
    lines = []
    while total > 0:
        length = min(total, 1000)
        lines.append(b"X:" + b"v" * (length - 2))
        total -= length
    return lines


def test_trailer_at_the_limit_is_accepted() -> None:
    assert MAX_TRAILER == 8192
    lines = trailer_of(MAX_TRAILER)
    assert sum(map(len, lines)) == 8192
    data = b"3\r\nabc\r\n0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    assert feed_all(ChunkedReader(400), [data + NEXT]) == (b"abc", NEXT)
    assert feed_all(ChunkedReader(400), bytewise(data + NEXT)) == (b"abc", NEXT)


def test_trailer_over_the_limit_is_refused() -> None:
    lines = trailer_of(MAX_TRAILER + 1)
    data = b"3\r\nabc\r\n0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400


def test_single_trailer_line_over_the_limit_is_refused() -> None:
    data = b"0\r\nX:" + b"v" * MAX_TRAILER + b"\r\n\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


@pytest.mark.parametrize("line", [b"no colon", b" X: folded", b"\tX: folded"])
def test_malformed_trailer_field_is_refused(line: bytes) -> None:
    data = b"0\r\nX: 1\r\n" + line + b"\r\n\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400


# -- chunked: the connection ends -----------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [b"", b"3", b"3\r\n", b"3\r\nab", b"3\r\nabc", b"3\r\nabc\r\n", b"3\r\nabc\r\n0\r\n"],
)
def test_eof_inside_a_chunked_body_raises(cut: bytes) -> None:
    reader = ChunkedReader(502)
    reader.feed(cut)
    with pytest.raises(HTTPProtocolError) as info:
        reader.eof()
    assert info.value.status == 502


def test_eof_after_a_complete_chunked_body_is_fine() -> None:
    reader = ChunkedReader(400)
    reader.feed(CHUNKED)
    reader.eof()


# -- chunked: random splits ---------------------------------------------------------------------

chunk_st = st.binary(min_size=1, max_size=40)
ext_st = st.sampled_from([b"", *VALID_EXTENSIONS])
trailer_st = st.lists(st.sampled_from([b"X-A: 1", b"X-B:", b"Digest: sha=abc"]), max_size=3)


@st.composite
def chunked_messages(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid chunked encoding and the body it carries."""
    chunks = draw(st.lists(chunk_st, max_size=6))
    out = b""
    for chunk in chunks:
        size = b"%x" % len(chunk)
        if draw(st.booleans()):
            size = size.upper()
        out += size + draw(ext_st) + b"\r\n" + chunk + b"\r\n"
    out += b"0" + draw(ext_st) + b"\r\n"
    out += b"".join(line + b"\r\n" for line in draw(trailer_st)) + b"\r\n"
    return out, b"".join(chunks)


@given(message=chunked_messages(), after=st.binary(max_size=40), data=st.data())
def test_chunked_body_split_at_random_points_reads_as_when_whole(
    message: tuple[bytes, bytes], after: bytes, data: st.DataObject
) -> None:
    encoded, body = message
    whole = encoded + after
    assert feed_all(ChunkedReader(400), [whole]) == (body, after)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=12)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert feed_all(ChunkedReader(400), pieces) == (body, after)


# -- which reader a request gets ------------------------------------------------------------


def test_request_without_framing_fields_has_no_body() -> None:
    assert request_body_reader(req()) == (None, None)


def test_request_with_zero_content_length_has_no_body_but_a_length() -> None:
    assert request_body_reader(req((CL, b"0"))) == (None, 0)


def test_request_with_content_length_gets_a_content_length_reader() -> None:
    reader, length = request_body_reader(req((CL, b"5")))
    assert isinstance(reader, ContentLengthReader)
    assert (reader.remaining, length) == (5, 5)


@pytest.mark.parametrize("value", [b"chunked", b"Chunked", b"CHUNKED"])
def test_request_with_chunked_gets_a_chunked_reader(value: bytes) -> None:
    reader, length = request_body_reader(req((TE, value)))
    assert isinstance(reader, ChunkedReader)
    assert length is None


def test_request_content_length_with_leading_zeros_is_accepted() -> None:
    reader, length = request_body_reader(req((CL, b"007")))
    assert isinstance(reader, ContentLengthReader)
    assert length == 7


@pytest.mark.parametrize(
    "fields",
    [
        ((CL, b"5"), (CL, b"5")),
        ((CL, b"5, 5"),),
        ((CL, b"5"), (CL, b"")),
        ((CL, b"5,"),),
        ((CL, b",5"),),
    ],
    ids=["two-equal-fields", "equal-list", "second-empty", "trailing-comma", "leading-comma"],
)
def test_request_content_length_repeated_or_listed_is_refused_even_when_equal(
    fields: tuple[tuple[bytes, bytes], ...],
) -> None:
    """Apache 2.4 answers 400 to each of these (RFC 9112 §6.3 lets a recipient accept
    equal values; a proxy in front of members that may not is safer strict)."""
    assert request_refusal(req(*fields)) == 400


@pytest.mark.parametrize(
    "fields",
    [((TE, b"chunked"), (TE, b"")), ((TE, b"chunked,"),), ((TE, b", chunked"),)],
    ids=["empty-second-field", "trailing-comma", "leading-comma"],
)
def test_request_transfer_encoding_with_an_empty_element_is_refused(
    fields: tuple[tuple[bytes, bytes], ...],
) -> None:
    assert request_refusal(req(*fields)) == 400


@pytest.mark.parametrize("line", [b"X: a\x00b", b"X Y: 1", b"X:\x7f", b": v", b"X\x80: 1"])
def test_trailer_field_with_a_control_byte_or_an_invalid_name_is_refused(line: bytes) -> None:
    data = b"3\r\nabc\r\n0\r\n" + line + b"\r\n\r\n"
    assert refusal(ChunkedReader(400), [data]) == 400
    assert refusal(ChunkedReader(400), bytewise(data)) == 400


def test_trailer_field_with_tab_and_obs_text_in_its_value_is_accepted() -> None:
    data = b"3\r\nabc\r\n0\r\nX: a\tb\x80\r\n\r\n"
    assert feed_all(ChunkedReader(400), [data + NEXT]) == (b"abc", NEXT)


def test_request_with_largest_content_length_accepted() -> None:
    _, length = request_body_reader(req((CL, b"9" * 18)))
    assert length == 10**18 - 1


@pytest.mark.parametrize(
    "fields",
    [
        ((CL, b"5"), (TE, b"chunked")),
        ((TE, b"chunked"), (CL, b"5")),
        ((TE, b"chunked"), (CL, b"0")),
    ],
    ids=["cl-first", "te-first", "cl-zero"],
)
def test_request_with_both_content_length_and_transfer_encoding_is_refused(
    fields: tuple[tuple[bytes, bytes], ...],
) -> None:
    assert request_refusal(req(*fields)) == 400


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"gzip", 400),
        (b"identity", 400),
        (b"chunked, gzip", 400),
        (b"chunked;q=1", 400),
        (b"chunkedx", 400),
        (b"chunked chunked", 400),
        (b"", 400),
        (b",", 400),
        (b"gzip, chunked", 501),
        (b"chunked, chunked", 400),
        (b"identity, chunked", 501),
    ],
)
def test_request_transfer_coding_other_than_exactly_chunked_is_refused(
    value: bytes, status: int
) -> None:
    assert request_refusal(req((TE, value))) == status


def test_request_transfer_encoding_split_across_fields_is_one_list() -> None:
    assert request_refusal(req((TE, b"gzip"), (TE, b"chunked"))) == 501
    assert request_refusal(req((TE, b"chunked"), (TE, b"gzip"))) == 400


def test_request_transfer_encoding_on_http_1_0_is_refused() -> None:
    assert request_refusal(req((TE, b"chunked"), version=b"HTTP/1.0")) == 400


def test_request_content_length_on_http_1_0_is_accepted() -> None:
    _, length = request_body_reader(req((CL, b"3"), version=b"HTTP/1.0"))
    assert length == 3


@pytest.mark.parametrize(
    "fields",
    [((CL, b"5"), (CL, b"6")), ((CL, b"5, 6"),), ((CL, b"5"), (CL, b"05"))],
    ids=["two-fields", "list", "same-number-different-bytes"],
)
def test_request_with_conflicting_content_lengths_is_refused(
    fields: tuple[tuple[bytes, bytes], ...],
) -> None:
    assert request_refusal(req(*fields)) == 400


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b",",
        b"+5",
        b"-5",
        b"0x5",
        b"5 5",
        b"5\t5",
        b"5.0",
        b"1e3",
        b"five",
        b"\xd9\xa5",  # ARABIC-INDIC DIGIT FIVE in UTF-8
        b"1" * 19,
        b"9" * 40,
    ],
)
def test_request_with_invalid_content_length_is_refused(value: bytes) -> None:
    assert request_refusal(req((CL, value))) == 400


# -- which reader a response gets ---------------------------------------------------------------

FRAMINGS: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    "none": (),
    "length": ((CL, b"5"),),
    "zero-length": ((CL, b"0"),),
    "chunked": ((TE, b"chunked"),),
}


def test_head_response_never_has_a_body_whatever_its_status_or_framing() -> None:
    for status in range(100, 600):
        for fields in FRAMINGS.values():
            reader, _ = response_body_reader(resp(status, *fields), b"HEAD")
            assert reader is None, (status, fields)


def test_head_response_reports_the_declared_length() -> None:
    assert response_body_reader(resp(200, (CL, b"5")), b"HEAD") == (None, 5)


def test_informational_204_and_304_responses_never_have_a_body() -> None:
    for status in [*range(100, 200), 204, 304]:
        for fields in FRAMINGS.values():
            reader, _ = response_body_reader(resp(status, *fields), b"GET")
            assert reader is None, (status, fields)


def test_other_responses_are_framed_by_their_fields() -> None:
    for status in range(200, 600):
        if status in (204, 304):
            continue
        assert isinstance(response_body_reader(resp(status), b"GET")[0], CloseDelimitedReader)
        reader, length = response_body_reader(resp(status, *FRAMINGS["length"]), b"GET")
        assert isinstance(reader, ContentLengthReader)
        assert length == 5
        assert response_body_reader(resp(status, *FRAMINGS["zero-length"]), b"GET") == (None, 0)
        reader, length = response_body_reader(resp(status, *FRAMINGS["chunked"]), b"POST")
        assert isinstance(reader, ChunkedReader)
        assert length is None


def test_response_readers_blame_the_member_with_502() -> None:
    reader, _ = response_body_reader(resp(200, (CL, b"5")), b"GET")
    assert reader is not None
    reader.feed(b"abc")
    with pytest.raises(HTTPProtocolError) as info:
        reader.eof()
    assert info.value.status == 502
    chunked, _ = response_body_reader(resp(200, (TE, b"chunked")), b"GET")
    assert chunked is not None
    assert refusal(chunked, [b"zz\r\n"]) == 502


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
@pytest.mark.parametrize("status", [200, 204, 304, 101])
def test_response_with_both_content_length_and_transfer_encoding_is_502(
    method: bytes, status: int
) -> None:
    head = resp(status, (CL, b"5"), (TE, b"chunked"))
    assert response_refusal(head, method) == 502


@pytest.mark.parametrize(
    "fields",
    [
        ((CL, b"5"), (CL, b"6")),
        ((CL, b"-1"),),
        ((CL, b"0x5"),),
        ((CL, b""),),
        ((TE, b"gzip"),),
        ((TE, b"gzip, chunked"),),
        ((TE, b"chunked, chunked"),),
    ],
)
def test_response_with_bad_framing_is_502(fields: tuple[tuple[bytes, bytes], ...]) -> None:
    assert response_refusal(resp(200, *fields)) == 502
