"""The admin listener against a careless operator or a hostile page, and
its page as machine-compatible with httpd's: host names, routes, slow requests, links."""

from __future__ import annotations

import re

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from ajpbalancer.admin import admin_site
from ajpbalancer.admin._site import AdminSite, default_hosts
from ajpbalancer.config import parse
from tests.unit.test_admin import CONFIG, M1, M2, Admin, make_admin, member_fields, request

HOSTS = frozenset({"127.0.0.1", "localhost", "lb1.example.org"})


@pytest.fixture
def admin() -> Admin:
    return make_admin()


@pytest.fixture
def guarded() -> Admin:
    a = make_admin()
    a.site = admin_site(a.harness.reactor, lambda: a.harness.runtime, a.metrics, hosts=HOSTS)
    return a


# --- host names (DNS rebinding) --------------------------------------------------------


@pytest.mark.parametrize("path", ["/status.json", "/balancer-manager", "/metrics", "/"])
def test_a_request_for_another_host_name_is_refused_whatever_the_path(
    guarded: Admin, path: str
) -> None:
    reply = request(guarded.site, "GET", path, {"Host": "evil.example:8081"})
    assert reply.status == 403
    assert "not a name of this admin listener" in reply.text
    assert guarded.nonce() not in reply.text


def test_a_change_naming_another_host_everywhere_is_refused_with_a_valid_nonce(
    guarded: Admin,
) -> None:
    before = guarded.state()
    evil = "http://evil.example:8081/balancer-manager"
    reply = guarded.post(
        member_fields(w_status_D="1", nonce=guarded.nonce()),
        referer=evil,
        headers={"Host": "evil.example:8081", "Origin": "http://evil.example:8081"},
    )
    assert reply.status == 403
    assert guarded.state() == before


@pytest.mark.parametrize("host", ["127.0.0.1:8081", "LOCALHOST:8081", "lb1.example.org."])
def test_the_listeners_own_names_are_served(guarded: Admin, host: str) -> None:
    assert request(guarded.site, "GET", "/status.json", {"Host": host}).status == 200


def test_default_names_are_loopback_the_admin_address_and_this_host() -> None:
    settings = parse(
        "[ajpbalancer]\nadmin = tcp:8081:interface=10.1.2.3\nadmin_users = x\n"
        + CONFIG.split("[ajpbalancer]")[1].replace("access_log = off\n", ""),
        "lb.ini",
    ).settings
    hosts = default_hosts(settings)
    assert {"localhost", "127.0.0.1", "::1", "10.1.2.3"} <= hosts
    configured = parse(
        "[ajpbalancer]\nadmin = tcp:8081:interface=127.0.0.1\nadmin_hosts = lb1 LB2.example\n"
        + CONFIG.split("[ajpbalancer]")[1],
        "lb.ini",
    ).settings
    assert default_hosts(configured) == frozenset({"lb1", "lb2.example"})


# --- routes -------------------------------------------------------------------------------


def test_a_member_cannot_take_another_members_route(admin: Admin) -> None:
    before = admin.state()
    reply = admin.post(member_fields(M1, w_wr="node2", w_lf="2", nonce=admin.nonce()))
    assert reply.status == 400
    assert "route 'node2' is member http://127.0.0.3:8080's" in reply.text
    assert admin.state() == before


def test_routes_may_be_swapped_through_a_free_one(admin: Admin) -> None:
    assert admin.post(member_fields(M1, w_wr="spare", nonce=admin.nonce())).status == 200
    assert admin.post(member_fields(M2, w_wr="node1", nonce=admin.nonce())).status == 200
    assert admin.post(member_fields(M1, w_wr="node2", nonce=admin.nonce())).status == 200
    assert (admin.member(M1).route, admin.member(M2).route) == ("node2", "node1")


# --- slow requests ------------------------------------------------------------------------


def connect(site: AdminSite) -> tuple[object, StringTransport]:
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    assert proto is not None
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 50000),
    )
    proto.makeConnection(transport)
    return proto, transport


def test_a_header_trickled_once_a_second_is_cut(admin: Admin) -> None:
    assert isinstance(admin.site, AdminSite)
    clock = admin.harness.reactor
    proto, transport = connect(admin.site)
    head = b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    sent = 0
    for byte in head:
        proto.dataReceived(bytes([byte]))  # type: ignore[attr-defined]
        sent += 1
        clock.advance(1.0)
        if transport.disconnecting:
            break
    assert transport.disconnecting
    assert 20 <= sent <= 22  # mod_reqtimeout's header=20-40,MinRate=500
    assert transport.value().startswith(b"HTTP/1.1 408 ")


def test_a_connection_that_sends_nothing_is_closed_silently(admin: Admin) -> None:
    assert isinstance(admin.site, AdminSite)
    _, transport = connect(admin.site)
    admin.harness.reactor.advance(19.9)
    assert not transport.disconnecting
    admin.harness.reactor.advance(0.2)
    assert transport.disconnecting and transport.value() == b""


def test_a_body_trickled_once_a_second_is_cut(admin: Admin) -> None:
    assert isinstance(admin.site, AdminSite)
    clock = admin.harness.reactor
    proto, transport = connect(admin.site)
    proto.dataReceived(  # type: ignore[attr-defined]
        b"POST /balancer-manager HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
    )
    for _ in range(25):
        proto.dataReceived(b"a")  # type: ignore[attr-defined]
        clock.advance(1.0)
    assert transport.disconnecting
    assert transport.value().startswith(b"HTTP/1.1 408 ")


def test_a_prompt_request_is_answered_and_the_connection_kept(admin: Admin) -> None:
    assert isinstance(admin.site, AdminSite)
    proto, transport = connect(admin.site)
    proto.dataReceived(b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # type: ignore[attr-defined]
    assert transport.value().startswith(b"HTTP/1.1 200 ")
    admin.harness.reactor.advance(19.0)
    assert not transport.disconnecting


# --- httpd's page, as tools read it ------------------------------------------------------


def test_the_version_line_states_apache_2_4_compatibility(admin: Admin) -> None:
    page = admin.get("/balancer-manager").text
    assert "<dt>Server Version: Apache/2.4.0 (compatible; ajpbalancer/0.1.0)</dt>" in page
    assert "<dt>Balancer changes will NOT be persisted on restart.</dt>" in page


def test_links_are_httpds_first_the_balancers_then_each_members(admin: Admin) -> None:
    page = admin.get("/balancer-manager").text
    links = [h.replace("&amp;", "&") for h in re.findall(r'<a href="([^"]*)"', page)]
    nonce = admin.nonce()
    assert links[:3] == [
        f"/balancer-manager?b=c&nonce={nonce}",
        f"/balancer-manager?b=c&w={M1}&nonce={nonce}",
        f"/balancer-manager?b=c&w={M2}&nonce={nonce}",
    ]


def test_a_member_named_as_httpd_writes_it_is_found(admin: Admin) -> None:
    a = make_admin(CONFIG.replace("http://127.0.0.2:8080", "http://127.0.0.2:80"))
    reply = a.post(member_fields("HTTP://127.0.0.2", w_status_D="1", nonce=a.nonce()))
    assert reply.status == 200
    assert a.member("http://127.0.0.2:80").letters == "D"


def test_ansible_posts_the_links_query_as_its_form(admin: Admin) -> None:
    """apache2_mod_proxy posts ``b=…&w=URL&nonce=…`` unencoded plus four flags."""
    body = f"b=c&w={M1}&nonce={admin.nonce()}&w_status_D=1&w_status_N=0&w_status_H=0&w_status_I=0"
    assert admin.post(body).status == 200
    assert admin.member(M1).letters == "D"


def test_links_keep_the_path_the_page_was_asked_on_as_httpd_does(admin: Admin) -> None:
    page = admin.get("/balancer-manager/").text
    assert f'href="/balancer-manager/?b=c&amp;w={M1}&amp;nonce={admin.nonce()}"' in page
