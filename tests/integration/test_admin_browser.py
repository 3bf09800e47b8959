"""balancer-manager driven in a real headless browser, against the real proxy and Tomcat.

Debian's ``chromium`` (``scripts/test`` installs it) runs headless through Playwright with
a fresh profile; the page is served by the real ``twistd -n ajpbalancer`` process in front
of the two Tomcat nodes. What only a browser proves: the forms as the page writes them,
submitted as a browser submits them (with its own Referer and Origin), change routing;
the same form without its nonce, or posted from another origin, is refused and changes
nothing. A missing browser fails the tests, never skips them.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from .proxy import ProxyProcess, free_port
from .test_proxy_tomcat import ProxyFactory, echo
from .tomcat import Tomcat

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Headless Debian chromium with a profile of its own (Playwright's download is unused)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context
        finally:
            context.close()


class Cluster:
    """The proxy with its admin listener, in front of node1 and node2."""

    def __init__(self, proxy: ProxyProcess, admin_port: int, node1: Tomcat, node2: Tomcat):
        self.proxy = proxy
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.node1 = node1
        self.node2 = node2

    def nodes(self, count: int) -> list[str]:
        return [echo(self.proxy)["node"] for _ in range(count)]

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.admin}/status.json", timeout=10) as reply:
            doc: dict[str, Any] = json.load(reply)
        return doc

    def flags(self, node: Tomcat) -> str:
        members = self.status()["balancers"][0]["members"]
        flags: str = next(m["flags"] for m in members if m["name"] == node.http_url)
        return flags


@pytest.fixture
def cluster(tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory) -> Cluster:
    node1, node2 = tomcats
    admin_port = free_port()
    proxy = proxy_factory(
        f"""
[ajpbalancer]
access_log = access.log
admin = tcp:{admin_port}:interface=127.0.0.1

[frontend:www]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /app balancer://cluster/app

[balancer://cluster]
BalancerMember = {node1.http_url} route=node1
                 {node2.http_url} route=node2
"""
    )
    return Cluster(proxy, admin_port, node1, node2)


def open_member_form(page: Page, cluster: Cluster, node: Tomcat) -> None:
    """Open the page, then the member's form through its link, as an operator does."""
    page.goto(f"{cluster.admin}/balancer-manager")
    page.get_by_role("link", name=node.http_url, exact=True).click()
    page.wait_for_selector("#w_status_D1")
    assert page.locator("h3", has_text="Edit worker settings for").inner_text() == (
        f"Edit worker settings for {node.http_url}"
    )


def test_disabling_node1_through_the_form_sends_new_requests_to_node2_only(
    cluster: Cluster, browser: BrowserContext
) -> None:
    assert sorted(set(cluster.nodes(4))) == ["node1", "node2"]
    page = browser.new_page()
    open_member_form(page, cluster, cluster.node1)
    page.check("#w_status_D1")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("input[type=submit]")
    assert posted.value.status == 200
    assert f"member {cluster.node1.http_url}: +D" in page.inner_text("p.message")
    row = page.locator("tr", has=page.get_by_role("link", name=cluster.node1.http_url))
    assert "Init Dis" in row.inner_text()
    assert cluster.flags(cluster.node1) == "D"
    assert cluster.nodes(20) == ["node2"] * 20


def test_the_form_without_its_nonce_is_refused_and_changes_nothing(
    cluster: Cluster, browser: BrowserContext
) -> None:
    page = browser.new_page()
    open_member_form(page, cluster, cluster.node1)
    page.evaluate("document.getElementById('nonce').remove()")
    page.check("#w_status_D1")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("input[type=submit]")
    assert posted.value.status == 403
    assert "nonce" in page.inner_text("body")
    assert cluster.flags(cluster.node1) == ""
    assert sorted(set(cluster.nodes(4))) == ["node1", "node2"]


def test_the_form_with_a_wrong_nonce_is_refused_and_changes_nothing(
    cluster: Cluster, browser: BrowserContext
) -> None:
    page = browser.new_page()
    open_member_form(page, cluster, cluster.node1)
    page.evaluate("document.getElementById('nonce').value = '00000000-0000-0000-0000-000000000000'")
    page.check("#w_status_D1")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("input[type=submit]")
    assert posted.value.status == 403
    assert cluster.flags(cluster.node1) == ""


def test_a_form_from_another_origin_is_refused_even_with_the_nonce(
    cluster: Cluster, browser: BrowserContext
) -> None:
    nonce = cluster.status()["balancers"][0]["nonce"]
    page = browser.new_page()
    # A page served from the proxy's frontend origin (another port), as a compromised
    # application page would be, posting the whole right form to the admin listener.
    page.goto(f"http://127.0.0.1:{cluster.proxy.port}/app/echo")
    page.set_content(
        f'<form method="POST" action="{cluster.admin}/balancer-manager">'
        f'<input name="b" value="cluster"><input name="w" value="{cluster.node1.http_url}">'
        f'<input name="w_status_D" value="1"><input name="nonce" value="{nonce}">'
        '<input type="submit" id="go"></form>'
    )
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("#go")
    assert posted.value.status == 403
    assert cluster.flags(cluster.node1) == ""


def test_the_balancer_form_changes_the_balancers_parameters(
    cluster: Cluster, browser: BrowserContext
) -> None:
    page = browser.new_page()
    page.goto(f"{cluster.admin}/balancer-manager")
    page.get_by_role("link", name="balancer://cluster").click()
    page.wait_for_selector("#b_lbm")
    page.select_option("#b_lbm", "bybusyness")
    page.fill("#b_ss", "JSESSIONID|jsessionid")
    page.check("#b_sforce1")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("input[type=submit]")
    assert posted.value.status == 200
    balancer = cluster.status()["balancers"][0]
    assert balancer["lbmethod"] == "bybusyness"
    assert balancer["stickysession"] == ["JSESSIONID", "jsessionid"]
    assert balancer["nofailover"] is True
