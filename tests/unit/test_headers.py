"""Header hygiene between client and HTTP member, as mod_proxy_http does it.

Hop-by-hop fields and those named in ``Connection`` never cross; framing is recomputed;
``X-Forwarded-*`` are added after ``Connection`` stripping (CVE-2022-31813), merged with
the client's; repeated fields stay separate and in order.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajpbalancer.h1 import Headers, HTTPProtocolError
from ajpbalancer.headers import (
    HOP_BY_HOP,
    connection_tokens,
    request_headers,
    response_headers,
)

CLIENT_IP = b"192.0.2.7"
SERVER = b"proxy.example.org"
MEMBER = b"10.0.0.2:8080"


def forward(
    headers: Headers,
    *,
    preserve_host: bool = False,
    add_forwarded: bool = True,
    body_length: int | None = None,
    chunked: bool = False,
) -> Headers:
    return request_headers(
        headers,
        member_host=MEMBER,
        preserve_host=preserve_host,
        add_forwarded=add_forwarded,
        client_ip=CLIENT_IP,
        server_name=SERVER,
        body_length=body_length,
        chunked=chunked,
    )


def values(headers: Headers, lname: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == lname]


def names(headers: Headers) -> list[bytes]:
    return [n.lower() for n, _ in headers]


HOST = (b"Host", b"www.example.org")


# -- request: hop-by-hop and framing -------------------------------------------------------------


def test_hop_by_hop_set_is_rfc_9110_plus_apaches_historical_fields() -> None:
    assert {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    } == HOP_BY_HOP


def test_every_hop_by_hop_field_is_not_forwarded_whatever_its_case() -> None:
    for name in sorted(HOP_BY_HOP):
        for spelled in (name, name.upper(), name.title()):
            out = forward([HOST, (spelled, b"x"), (b"Accept", b"*/*")])
            assert name not in names(out), spelled
            assert (b"Accept", b"*/*") in out


def test_fields_named_in_connection_are_not_forwarded() -> None:
    out = forward([HOST, (b"Connection", b"X-Secret, keep-alive"), (b"x-secret", b"1")])
    assert b"x-secret" not in names(out)
    assert b"connection" not in names(out)


def test_connection_tokens_from_every_connection_field_count() -> None:
    headers = [
        HOST,
        (b"Connection", b"X-A"),
        (b"X-A", b"1"),
        (b"X-B", b"2"),
        (b"connection", b" ,\tx-b ,"),
    ]
    assert b"x-a" not in names(forward(headers))
    assert b"x-b" not in names(forward(headers))


def test_client_framing_fields_are_dropped_and_content_length_recomputed() -> None:
    out = forward(
        [HOST, (b"Content-Length", b"999"), (b"Transfer-Encoding", b"chunked")], body_length=5
    )
    assert values(out, b"content-length") == [b"5"]
    assert values(out, b"transfer-encoding") == []


def test_zero_length_body_is_sent_with_content_length_zero() -> None:
    assert values(forward([HOST, (b"Content-Length", b"0")], body_length=0), b"content-length") == [
        b"0"
    ]


def test_chunked_body_is_sent_chunked_without_content_length() -> None:
    out = forward([HOST, (b"Transfer-Encoding", b"chunked")], chunked=True)
    assert values(out, b"transfer-encoding") == [b"chunked"]
    assert values(out, b"content-length") == []


def test_request_without_body_gets_no_framing_fields() -> None:
    out = forward([HOST, (b"Content-Length", b"12")])
    assert values(out, b"content-length") == []
    assert values(out, b"transfer-encoding") == []


def test_expect_is_not_forwarded() -> None:
    out = forward([HOST, (b"Expect", b"100-continue")], body_length=3)
    assert b"expect" not in names(out)


def test_end_to_end_fields_pass_in_order_with_their_case_and_repeats() -> None:
    fields = [
        (b"Accept", b"text/html"),
        (b"Cookie", b"a=1"),
        (b"X-Custom", b"  odd  value "),
        (b"Cookie", b"b=2"),
        (b"accept", b"*/*"),
    ]
    out = forward([HOST, *fields], add_forwarded=False)
    assert out == [(b"Host", MEMBER), *fields]


# -- request: Host ---------------------------------------------------------------------------------


def test_host_is_the_members_and_comes_first() -> None:
    out = forward([(b"Accept", b"*/*"), HOST])
    assert out[0] == (b"Host", MEMBER)
    assert values(out, b"host") == [MEMBER]


def test_preserve_host_passes_the_clients_host() -> None:
    out = forward([(b"Accept", b"*/*"), (b"hOsT", b"www.example.org:8443")], preserve_host=True)
    assert out[0] == (b"Host", b"www.example.org:8443")
    assert values(out, b"host") == [b"www.example.org:8443"]


def test_preserve_host_without_a_client_host_falls_back_to_the_members() -> None:
    assert forward([], preserve_host=True)[0] == (b"Host", MEMBER)


def test_connection_naming_host_does_not_remove_host() -> None:
    out = forward([HOST, (b"Connection", b"Host")], preserve_host=True)
    assert values(out, b"host") == [HOST[1]]


# -- request: X-Forwarded-* ------------------------------------------------------------------------


def test_forwarded_fields_are_added_after_the_clients_fields() -> None:
    out = forward([HOST, (b"Accept", b"*/*")])
    assert out == [
        (b"Host", MEMBER),
        (b"Accept", b"*/*"),
        (b"X-Forwarded-For", CLIENT_IP),
        (b"X-Forwarded-Host", HOST[1]),
        (b"X-Forwarded-Server", SERVER),
    ]


def test_clients_x_forwarded_for_is_merged_before_ours() -> None:
    out = forward([HOST, (b"X-Forwarded-For", b"203.0.113.1")])
    assert values(out, b"x-forwarded-for") == [b"203.0.113.1, " + CLIENT_IP]


def test_repeated_client_x_forwarded_for_fields_are_merged_in_order_then_ours() -> None:
    out = forward(
        [HOST, (b"X-Forwarded-For", b"203.0.113.1"), (b"x-forwarded-for", b"198.51.100.2")]
    )
    assert values(out, b"x-forwarded-for") == [b"203.0.113.1, 198.51.100.2, " + CLIENT_IP]


def test_clients_x_forwarded_host_and_server_are_merged_before_ours() -> None:
    out = forward([HOST, (b"X-Forwarded-Host", b"outer.example"), (b"X-Forwarded-Server", b"edge")])
    assert values(out, b"x-forwarded-host") == [b"outer.example, " + HOST[1]]
    assert values(out, b"x-forwarded-server") == [b"edge, " + SERVER]


@pytest.mark.parametrize(
    "name", [b"X-Forwarded-For", b"X-Forwarded-Host", b"X-Forwarded-Server", b"x-forwarded-for"]
)
def test_connection_cannot_remove_our_forwarded_fields(name: bytes) -> None:
    """CVE-2022-31813: ``Connection: X-Forwarded-For`` must not strip what we add."""
    out = forward([HOST, (b"Connection", name)])
    assert values(out, b"x-forwarded-for") == [CLIENT_IP]
    assert values(out, b"x-forwarded-host") == [HOST[1]]
    assert values(out, b"x-forwarded-server") == [SERVER]


def test_client_forwarded_field_named_in_connection_is_replaced_by_ours_alone() -> None:
    out = forward(
        [HOST, (b"X-Forwarded-For", b"6.6.6.6"), (b"Connection", b"close, X-Forwarded-For")]
    )
    assert values(out, b"x-forwarded-for") == [CLIENT_IP]


def test_x_forwarded_host_is_the_clients_original_host_even_when_host_is_replaced() -> None:
    out = forward([(b"Host", b"public.example:8080")])
    assert out[0] == (b"Host", MEMBER)
    assert values(out, b"x-forwarded-host") == [b"public.example:8080"]


def test_no_x_forwarded_host_is_invented_without_a_client_host() -> None:
    out = forward([])
    assert values(out, b"x-forwarded-host") == []
    assert values(out, b"x-forwarded-for") == [CLIENT_IP]


def test_clients_x_forwarded_host_survives_a_request_without_host() -> None:
    """An HTTP/1.0 request may lack Host: the client's X-Forwarded-Host is not lost then."""
    out = forward([(b"X-Forwarded-Host", b"outer.example")])
    assert values(out, b"x-forwarded-host") == [b"outer.example"]


def test_without_proxy_add_headers_forwarded_fields_pass_through_untouched() -> None:
    fields = [
        (b"X-Forwarded-For", b"203.0.113.1"),
        (b"X-Forwarded-For", b"198.51.100.2"),
        (b"X-Forwarded-Host", b"outer.example"),
    ]
    out = forward([HOST, *fields], add_forwarded=False)
    assert out == [(b"Host", MEMBER), *fields]


# -- Connection tokens -----------------------------------------------------------------------------


def test_connection_tokens_are_lower_cased_and_trimmed() -> None:
    headers = [(b"Connection", b"Keep-Alive ,\tX-Foo,,"), (b"CONNECTION", b"close")]
    assert connection_tokens(headers) == {b"keep-alive", b"x-foo", b"close"}


def test_no_connection_field_means_no_tokens() -> None:
    assert connection_tokens([(b"Accept", b"*/*")]) == set()


def test_every_separator_inside_a_connection_token_is_refused_with_400() -> None:
    for char in b' \t"()/:;<=>?@[\\]{}':  # a comma separates tokens: not in the list
        token = b"x" + bytes([char]) + b"y"
        with pytest.raises(HTTPProtocolError) as info:
            connection_tokens([(b"Connection", token)])
        assert info.value.status == 400, chr(char)


def test_bad_connection_token_refuses_the_request() -> None:
    with pytest.raises(HTTPProtocolError) as info:
        forward([HOST, (b"Connection", b"keep-alive, a=b")])
    assert info.value.status == 400


@given(
    fields=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    *sorted(HOP_BY_HOP),
                    b"Host",
                    b"Content-Length",
                    b"Expect",
                    b"Accept",
                    b"Cookie",
                    b"X-Forwarded-For",
                    b"X-Other",
                ]
            ),
            st.sampled_from([b"x", b"close", b"x-other", b"1"]),
        ),
        max_size=12,
    ),
    preserve_host=st.booleans(),
)
def test_forwarded_request_never_carries_hop_by_hop_fields_and_has_one_host_first(
    fields: Headers, preserve_host: bool
) -> None:
    out = forward(fields, preserve_host=preserve_host)
    assert names(out).count(b"host") == 1
    assert out[0][0] == b"Host"
    assert not HOP_BY_HOP & set(names(out)) - {b"transfer-encoding"}
    assert b"expect" not in names(out)
    assert values(out, b"x-forwarded-for")[-1].endswith(CLIENT_IP)


# -- responses -------------------------------------------------------------------------------------


def test_every_hop_by_hop_and_framing_field_is_removed_from_responses() -> None:
    for name in [*sorted(HOP_BY_HOP), b"content-length"]:
        for spelled in (name, name.upper(), name.title()):
            out = response_headers([(b"Content-Type", b"text/plain"), (spelled, b"x")])
            assert out == [(b"Content-Type", b"text/plain")], spelled


def test_response_fields_named_in_connection_are_removed() -> None:
    out = response_headers([(b"Connection", b"X-Internal"), (b"x-internal", b"1"), (b"A", b"b")])
    assert out == [(b"A", b"b")]


def test_malformed_connection_tokens_from_a_member_are_tolerated() -> None:
    out = response_headers([(b"Connection", b'close, "odd", , a b'), (b"A", b"b")])
    assert out == [(b"A", b"b")]


def test_repeated_set_cookie_fields_stay_separate_and_byte_for_byte() -> None:
    cookies = [
        (b"Set-Cookie", b"JSESSIONID=ABC.node1; Path=/app; HttpOnly"),
        (b"Content-Type", b"text/html"),
        (b"set-cookie", b"pref=a,b; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Domain=.EXAMPLE.org"),
        (b"SET-COOKIE", b'q="quoted;value"; Secure; SameSite=None'),
    ]
    assert response_headers(cookies) == cookies


def test_response_fields_keep_their_order_case_and_values() -> None:
    fields = [
        (b"Location", b"http://10.0.0.2:8080/app/x"),
        (b"X-a", b"1"),
        (b"Vary", b"Accept"),
        (b"vary", b"Cookie"),
    ]
    assert response_headers([(b"Keep-Alive", b"timeout=5"), *fields]) == fields
