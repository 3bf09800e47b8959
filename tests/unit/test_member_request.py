"""What a member is sent for a client's request: the FORWARD_REQUEST's server name (as
httpd's ``fix_hostname`` leaves ``r->hostname``) and the AJP request attributes."""

from __future__ import annotations

import pytest

from ajpbalancer.connection import ClientInfo
from ajpbalancer.h1 import RequestHead
from ajpbalancer.members._request import OutgoingRequest, ajp_forward

CLIENT = ClientInfo(ip=b"192.0.2.7", port=40000, local_ip=b"10.0.0.1", local_port=8080, tls=None)


def forward_for(*headers: tuple[bytes, bytes]) -> OutgoingRequest:
    return OutgoingRequest(
        head=RequestHead(b"GET", b"/a?b=1", b"HTTP/1.1", list(headers)),
        path=b"/a",
        query=b"b=1",
        length=None,
        chunked=False,
        client=CLIENT,
    )


@pytest.mark.parametrize(
    ("host", "server_name"),
    [
        (b"www.example.org", b"www.example.org"),
        (b"WWW.Example.org.:80", b"www.example.org"),
        (b"Example.org:8443", b"example.org"),
        (b"[::1]:8080", b"::1"),
        (b"[2001:DB8::1]", b"2001:db8::1"),
        (b"h.", b"h"),
        (b".", b"."),
    ],
)
def test_server_name_is_the_host_field_as_httpd_fixes_it(host: bytes, server_name: bytes) -> None:
    request = ajp_forward(forward_for((b"Host", host), (b"Accept", b"*/*")), secret=None)
    assert request.server_name == server_name


def test_server_name_without_a_host_field_is_the_local_address() -> None:
    request = ajp_forward(forward_for((b"Accept", b"*/*")), secret=None)
    assert request.server_name == b"10.0.0.1"
    assert request.server_port == 8080
    assert request.uri == b"/a" and request.query_string == b"b=1"
    assert request.request_attributes == (
        (b"AJP_REMOTE_PORT", b"40000"),
        (b"AJP_LOCAL_ADDR", b"10.0.0.1"),
    )
