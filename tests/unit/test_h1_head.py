"""HTTP/1.1 message heads: strict parsing, limits, serialising, and finding the head's end.

Every shape a request smuggler relies on (bare CR/LF, obs-fold, whitespace before the
colon, odd bytes in names, values or the target) must be refused with the right status;
every limit is crossed by one byte and met exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.h1 import (
    DEFAULT_LIMITS,
    HeadLimits,
    HTTPProtocolError,
    RequestHead,
    ResponseHead,
    find_head_end,
    header_get,
    header_values,
    parse_request_head,
    parse_response_head,
    serialize_request_head,
    serialize_response_head,
)

TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CTL_BUT_HTAB = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])


def head(*lines: bytes) -> bytes:
    """A head made of ``lines``, each ended by CRLF, plus the empty line."""
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def request(*fields: bytes, line: bytes = b"GET / HTTP/1.1") -> bytes:
    return head(line, b"Host: example.org", *fields)


def response(*fields: bytes, line: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return head(line, *fields)


def refused(parse: Callable[[bytes], object], data: bytes) -> int:
    """The status of the error parsing ``data`` raises."""
    with pytest.raises(HTTPProtocolError) as info:
        parse(data)
    return info.value.status


# -- request heads: what is accepted ------------------------------------------------------


def test_request_line_and_fields_are_parsed() -> None:
    parsed = parse_request_head(request(b"Accept: */*", line=b"POST /a/b?c=d HTTP/1.1"))
    assert parsed == RequestHead(
        b"POST", b"/a/b?c=d", b"HTTP/1.1", [(b"Host", b"example.org"), (b"Accept", b"*/*")]
    )


def test_http_1_0_request_is_accepted() -> None:
    assert parse_request_head(head(b"GET / HTTP/1.0")).version == b"HTTP/1.0"


def test_request_without_fields_has_empty_header_list() -> None:
    assert parse_request_head(head(b"GET / HTTP/1.1")).headers == []


def test_field_names_keep_their_case_as_sent() -> None:
    parsed = parse_request_head(request(b"X-MiXeD-cAsE: 1"))
    assert parsed.headers[1][0] == b"X-MiXeD-cAsE"


def test_optional_whitespace_around_value_is_stripped_inner_kept() -> None:
    parsed = parse_request_head(request(b"X-A: \t a \t b \t "))
    assert parsed.headers[1] == (b"X-A", b"a \t b")


def test_empty_field_value_is_accepted() -> None:
    assert parse_request_head(request(b"X-Empty:")).headers[1] == (b"X-Empty", b"")


def test_repeated_fields_stay_separate_and_in_order() -> None:
    parsed = parse_request_head(request(b"Cookie: a=1", b"X-Other: x", b"Cookie: b=2"))
    assert parsed.headers[1:] == [(b"Cookie", b"a=1"), (b"X-Other", b"x"), (b"Cookie", b"b=2")]


def test_htab_and_obs_text_are_allowed_in_values() -> None:
    parsed = parse_request_head(request(b"X-A: a\tb\x80\xff"))
    assert parsed.headers[1] == (b"X-A", b"a\tb\x80\xff")


def test_every_tchar_is_allowed_in_a_field_name() -> None:
    for byte in TCHAR:
        name = bytes([byte])
        assert parse_request_head(request(name + b": v")).headers[1] == (name, b"v")


def test_every_tchar_is_allowed_in_a_method() -> None:
    for byte in TCHAR:
        method = bytes([byte])
        assert parse_request_head(head(method + b" / HTTP/1.1")).method == method


def test_every_visible_ascii_byte_but_hash_is_allowed_in_the_target() -> None:
    for byte in range(0x21, 0x7F):
        if byte == ord("#"):
            continue
        target = b"/" + bytes([byte])
        assert parse_request_head(head(b"GET " + target + b" HTTP/1.1")).target == target


def test_a_fragment_in_the_target_is_refused() -> None:
    with pytest.raises(HTTPProtocolError) as info:
        parse_request_head(head(b"GET /a#frag HTTP/1.1"))
    assert info.value.status == 400


def test_header_get_is_case_insensitive_and_returns_the_first() -> None:
    headers = [(b"X-A", b"1"), (b"x-a", b"2")]
    assert header_get(headers, b"x-a") == b"1"
    assert header_get(headers, b"x-b") is None
    assert RequestHead(b"GET", b"/", b"HTTP/1.1", headers).get(b"x-a") == b"1"
    assert ResponseHead(b"HTTP/1.1", 200, b"OK", headers).get(b"x-a") == b"1"


def test_header_values_splits_commas_across_repeated_fields_and_drops_empties() -> None:
    headers = [(b"Via", b" a , ,b"), (b"Other", b"x"), (b"VIA", b"c,\t")]
    assert header_values(headers, b"via") == [b"a", b"b", b"c"]
    assert header_values(headers, b"none") == []


# -- request heads: smuggling shapes refused -----------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\n\r\n",
    ],
    ids=["after-request-line", "between-fields", "before-empty-line"],
)
def test_bare_lf_is_refused(data: bytes) -> None:
    assert refused(parse_request_head, data) == 400


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET /\r HTTP/1.1\r\n\r\n",
    ],
    ids=["after-request-line", "between-fields", "inside-value", "inside-target"],
)
def test_bare_cr_is_refused(data: bytes) -> None:
    assert refused(parse_request_head, data) == 400


@pytest.mark.parametrize("fold", [b" ", b"\t", b"  \t"])
def test_obs_fold_continuation_line_is_refused(fold: bytes) -> None:
    assert refused(parse_request_head, request(b"X-A: a", fold + b"b")) == 400


@pytest.mark.parametrize("before_colon", [b" ", b"\t", b"  "])
def test_whitespace_between_name_and_colon_is_refused(before_colon: bytes) -> None:
    data = request(b"Content-Length" + before_colon + b": 5")
    assert refused(parse_request_head, data) == 400


def test_every_non_tchar_byte_in_a_field_name_is_refused() -> None:
    for byte in range(256):
        if byte in TCHAR or byte in b"\r\n:":
            continue
        data = request(b"X" + bytes([byte]) + b"Y: v")
        assert refused(parse_request_head, data) == 400, hex(byte)


@pytest.mark.parametrize(
    "line", [b": v", b"NoColon", b"X-A v", b"\x00: v"], ids=["empty", "no-colon", "space", "nul"]
)
def test_field_line_without_a_token_name_and_colon_is_refused(line: bytes) -> None:
    assert refused(parse_request_head, request(line)) == 400


def test_every_control_byte_but_htab_in_a_value_is_refused() -> None:
    for byte in CTL_BUT_HTAB:
        if byte in b"\r\n":
            continue  # those end the line: tested as bare CR and LF
        data = request(b"X-A: a" + bytes([byte]) + b"b")
        assert refused(parse_request_head, data) == 400, hex(byte)


def test_every_control_space_or_non_ascii_byte_in_the_target_is_refused() -> None:
    for byte in [*range(0x00, 0x21), *range(0x7F, 0x100)]:
        if byte in b"\r\n":
            continue
        data = head(b"GET /a" + bytes([byte]) + b"b HTTP/1.1")
        assert refused(parse_request_head, data) == 400, hex(byte)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"GET",
        b"GET /",
        b"GET  / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b" GET / HTTP/1.1",
        b"GET / / HTTP/1.1",
        b"GET\t/\tHTTP/1.1",
        b"GET / http/1.1",
        b"GET / HTTP/1",
        b"GET / HTTP/1.1.1",
        b"GET / HTTP/11",
        b"GET / HTTPS/1.1",
        b"G(T / HTTP/1.1",
        b"G\x00T / HTTP/1.1",
    ],
)
def test_malformed_request_line_is_refused_with_400(line: bytes) -> None:
    assert refused(parse_request_head, head(line)) == 400


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/0.9", b"HTTP/3.0", b"HTTP/1.2"])
def test_unsupported_http_version_is_refused_with_505(version: bytes) -> None:
    assert refused(parse_request_head, head(b"GET / " + version)) == 505


# -- request heads: limits -------------------------------------------------------------------


def line_of(length: int) -> bytes:
    """A valid request line exactly ``length`` bytes long."""
    fixed = b"GET / HTTP/1.1"
    return b"GET /" + b"a" * (length - len(fixed)) + b" HTTP/1.1"


def field_of(length: int) -> bytes:
    """A valid field line (name, colon, space, value) exactly ``length`` bytes long."""
    return b"X-Long: " + b"v" * (length - len(b"X-Long: "))


def test_default_limits_are_apaches() -> None:
    assert (DEFAULT_LIMITS.max_line, DEFAULT_LIMITS.max_field, DEFAULT_LIMITS.max_fields) == (
        8190,
        8190,
        100,
    )


def test_request_line_at_the_limit_is_accepted() -> None:
    assert len(line_of(8190)) == 8190
    assert len(parse_request_head(head(line_of(8190))).target) == 8190 - 13


def test_request_line_over_the_limit_is_refused_with_414() -> None:
    assert refused(parse_request_head, head(line_of(8191))) == 414


def test_field_line_at_the_limit_is_accepted() -> None:
    assert len(field_of(8190)) == 8190
    assert parse_request_head(request(field_of(8190))).headers[1][0] == b"X-Long"


def test_field_line_over_the_limit_is_refused_with_431() -> None:
    assert refused(parse_request_head, request(field_of(8191))) == 431


def test_field_limit_counts_the_whole_line_including_whitespace() -> None:
    line = b"X-A:" + b" " * 8186 + b"v"
    assert len(line) == 8191
    assert refused(parse_request_head, request(line)) == 431


def test_one_hundred_fields_are_accepted() -> None:
    fields = [b"X-%d: v" % i for i in range(99)]  # plus Host
    assert len(parse_request_head(request(*fields)).headers) == 100


def test_one_hundred_and_one_fields_are_refused_with_431() -> None:
    fields = [b"X-%d: v" % i for i in range(100)]
    assert refused(parse_request_head, request(*fields)) == 431


def test_custom_limits_are_honoured() -> None:
    limits = HeadLimits(max_line=20, max_field=10, max_fields=2)
    assert parse_request_head(head(line_of(20), b"A: 1234567", b"B: 2"), limits)
    with pytest.raises(HTTPProtocolError) as info:
        parse_request_head(head(line_of(21)), limits)
    assert info.value.status == 414
    with pytest.raises(HTTPProtocolError) as info:
        parse_request_head(head(line_of(20), b"A: 12345678"), limits)
    assert info.value.status == 431
    with pytest.raises(HTTPProtocolError) as info:
        parse_request_head(head(line_of(20), b"A: 1", b"B: 2", b"C: 3"), limits)
    assert info.value.status == 431


def test_max_head_is_the_largest_head_the_other_limits_allow() -> None:
    limits = HeadLimits(max_line=20, max_field=10, max_fields=2)
    biggest = head(line_of(20), b"A: 1234567", b"B: 1234567")
    assert len(biggest) == limits.max_head
    assert parse_request_head(biggest, limits).headers[1] == (b"B", b"1234567")


# -- finding the end of a head --------------------------------------------------------------


def test_find_head_end_needs_more_data_until_the_empty_line() -> None:
    data = request(b"A: 1")
    for cut in range(len(data)):
        assert find_head_end(data[:cut], 1000, 431) == -1, cut
    assert find_head_end(data, 1000, 431) == len(data)


def test_find_head_end_leaves_trailing_bytes_alone() -> None:
    data = request(b"A: 1")
    assert find_head_end(data + b"garbage\r\n\r\nmore", 1000, 431) == len(data)


def test_find_head_end_accepts_a_head_exactly_at_the_limit() -> None:
    data = request(b"A: 1")
    assert find_head_end(data, len(data), 431) == len(data)


def test_find_head_end_refuses_a_complete_head_one_byte_over_the_limit() -> None:
    data = request(b"A: 1")
    with pytest.raises(HTTPProtocolError) as info:
        find_head_end(data, len(data) - 1, 431)
    assert info.value.status == 431


def test_find_head_end_waits_for_an_incomplete_head_up_to_the_limit() -> None:
    assert find_head_end(b"x" * 100, 100, 431) == -1


def test_find_head_end_refuses_an_incomplete_head_over_the_limit_with_the_given_status() -> None:
    for status in (431, 502):
        with pytest.raises(HTTPProtocolError) as info:
            find_head_end(b"x" * 101, 100, status)
        assert info.value.status == status


def test_find_head_end_works_on_a_bytearray() -> None:
    data = request()
    assert find_head_end(bytearray(data + b"x"), 1000, 431) == len(data)


# -- properties over random input ----------------------------------------------------------

name_st = st.text(alphabet=TCHAR.decode(), min_size=1, max_size=20).map(str.encode)
value_st = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c == 0x09 or 0x20 <= c != 0x7F).strip(b" \t")
)
fields_st = st.lists(st.tuples(name_st, value_st), max_size=12)
target_st = st.text(
    alphabet="".join(chr(c) for c in range(0x21, 0x7F) if c != ord("#")), min_size=1, max_size=40
).map(lambda t: ("/" + t).encode())


@given(method=name_st, target=target_st, fields=fields_st)
def test_serialized_request_head_parses_back_to_the_same_values(
    method: bytes, target: bytes, fields: list[tuple[bytes, bytes]]
) -> None:
    data = serialize_request_head(method, target, fields)
    assert parse_request_head(data) == RequestHead(method, target, b"HTTP/1.1", fields)


@given(
    status=st.integers(100, 999),
    reason=st.text(alphabet=" \tabcXYZ-", max_size=20).map(str.encode),
    fields=fields_st,
)
def test_serialized_response_head_parses_back_to_the_same_values(
    status: int, reason: bytes, fields: list[tuple[bytes, bytes]]
) -> None:
    data = serialize_response_head(b"HTTP/1.1", status, reason, fields)
    assert parse_response_head(data) == ResponseHead(b"HTTP/1.1", status, reason, fields)


@given(fields=fields_st, garbage=st.binary(max_size=30), data=st.data())
def test_head_split_at_random_points_is_found_and_parsed_as_when_whole(
    fields: list[tuple[bytes, bytes]], garbage: bytes, data: st.DataObject
) -> None:
    whole = serialize_request_head(b"GET", b"/x", fields) + garbage
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=8)))
    expected_end = find_head_end(whole, DEFAULT_LIMITS.max_head, 431)
    buf = b""
    end = -1
    for start, stop in zip([0, *cuts], [*cuts, len(whole)], strict=True):
        buf += whole[start:stop]
        end = find_head_end(buf, DEFAULT_LIMITS.max_head, 431)
        if end >= 0:
            break
    assert end == expected_end
    assert parse_request_head(buf[:end]) == parse_request_head(whole[:expected_end])


# -- response heads ---------------------------------------------------------------------------


def test_status_line_and_fields_are_parsed() -> None:
    parsed = parse_response_head(response(b"Set-Cookie: a=1", line=b"HTTP/1.1 404 Not Found"))
    assert parsed == ResponseHead(b"HTTP/1.1", 404, b"Not Found", [(b"Set-Cookie", b"a=1")])


@pytest.mark.parametrize("line", [b"HTTP/1.1 204", b"HTTP/1.1 204 "])
def test_status_line_without_reason_phrase_is_accepted(line: bytes) -> None:
    parsed = parse_response_head(response(line=line))
    assert (parsed.status, parsed.reason) == (204, b"")


def test_http_1_0_response_is_accepted() -> None:
    assert parse_response_head(response(line=b"HTTP/1.0 200 OK")).version == b"HTTP/1.0"


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/2.0 200 OK",
        b"HTTP/0.9 200 OK",
        b"HTTP/1.1",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 2x0 OK",
        b"HTTP/1.1  200 OK",
        b"http/1.1 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1 200 O\x00K",
        b"HTTP/1.1 200 O\x7fK",
    ],
)
def test_malformed_status_line_from_member_is_502(line: bytes) -> None:
    assert refused(parse_response_head, response(line=line)) == 502


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\nX: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX(: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    ],
    ids=["bare-lf", "bare-cr", "obs-fold", "space-before-colon", "bad-name", "nul", "no-colon"],
)
def test_malformed_field_from_member_is_502(data: bytes) -> None:
    assert refused(parse_response_head, data) == 502


def test_oversize_field_from_member_is_502_not_431() -> None:
    assert parse_response_head(response(field_of(8190))).headers[0][0] == b"X-Long"
    assert refused(parse_response_head, response(field_of(8191))) == 502


def test_too_many_fields_from_member_is_502_not_431() -> None:
    assert len(parse_response_head(response(*[b"X: v"] * 100)).headers) == 100
    assert refused(parse_response_head, response(*[b"X: v"] * 101)) == 502


def test_oversize_status_line_from_member_is_502() -> None:
    line = b"HTTP/1.1 200 " + b"r" * (8190 - 13)
    assert len(parse_response_head(response(line=line)).reason) == 8190 - 13
    assert refused(parse_response_head, response(line=line + b"r")) == 502


# -- serialising --------------------------------------------------------------------------------


def test_request_head_is_serialized_as_http_1_1_with_fields_in_order() -> None:
    data = serialize_request_head(b"GET", b"/x", [(b"Host", b"h"), (b"A", b"1"), (b"A", b"2")])
    assert data == b"GET /x HTTP/1.1\r\nHost: h\r\nA: 1\r\nA: 2\r\n\r\n"


def test_response_head_is_serialized_with_its_version_and_status() -> None:
    data = serialize_response_head(b"HTTP/1.0", 302, b"Found", [(b"Location", b"/y")])
    assert data == b"HTTP/1.0 302 Found\r\nLocation: /y\r\n\r\n"
