"""Active health checks of the real ``twistd -n ajpbalancer`` against real Tomcat 10 nodes.

What only real processes can show: every ``hcmethod`` passes against a live Tomcat over
HTTP and over AJP (and fails against a closed port); a node that stops is taken out by its
checks, with no client-visible failure, and comes back only once a check passed. The
proxy's log says when a member failed or passed its check; it is flushed at every line,
so a response read after a member came back proves the "passed" line was written first.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable

from .conftest import ProxyFactory
from .proxy import ProxyProcess, free_port
from .tomcat import Tomcat

HC = "hcinterval=1 hcfails=1 hcpasses=1"
WAIT = 10.0
"""Bound on every wait for the proxy to notice a change (checks run every second)."""


def failed_line(url: str, method: str) -> str:
    return f"member {url} failed its health check ({method}:"


def passed_line(url: str, method: str) -> str:
    return f"member {url} passed its health check ({method}:"


def get_node(proxy: ProxyProcess, path: str) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return resp.status, None
        node: str = json.loads(body)["node"]
        return resp.status, node
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.1)


def test_every_hcmethod_passes_against_live_tomcat_and_fails_against_a_closed_port(
    tomcat_node1: Tomcat, proxy_factory: ProxyFactory
) -> None:
    closed = free_port("127.0.0.2")
    http_up, ajp_up = tomcat_node1.http_url, tomcat_node1.ajp_url
    http_down, ajp_down = f"http://127.0.0.2:{closed}", f"ajp://127.0.0.2:{closed}"
    members = []
    for method in ("GET", "HEAD", "OPTIONS", "TCP"):
        for base in (http_up, ajp_up, http_down, ajp_down):
            members.append(f"{base} hcmethod={method} hcuri=/app/ {HC}")
    for base in (ajp_up, ajp_down):
        members.append(f"{base} hcmethod=CPING {HC}")
    sections = "\n".join(
        f"[balancer://b{n}]\nBalancerMember = {member}\n" for n, member in enumerate(members)
    )
    proxy = proxy_factory(
        "[ajpbalancer]\naccess_log = off\n"
        "[frontend]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        "ProxyPass = /b0 balancer://b0/app\n" + sections
    )
    methods = ("GET", "HEAD", "OPTIONS", "TCP")
    expected_failures = [failed_line(u, m) for m in methods for u in (http_down, ajp_down)]
    expected_failures.append(failed_line(ajp_down, "CPING"))
    wait_for(
        lambda: all(line in proxy.log() for line in expected_failures),
        "every check of the closed port failed",
    )
    time.sleep(2.5)  # two more rounds of checks of the live members
    log = proxy.log()
    for url in (http_up, ajp_up):
        assert f"member {url} failed" not in log, log


def test_stopped_node_is_taken_out_by_its_checks_and_back_only_after_one_passed(
    tomcat_factory: Callable[..., list[Tomcat]], proxy_factory: ProxyFactory
) -> None:
    up, down = tomcat_factory({"hcnode1": "127.0.0.4", "hcnode2": "127.0.0.5"})
    proxy = proxy_factory(
        f"""
[ajpbalancer]
access_log = access.log

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /h balancer://overhttp/app
            /a balancer://overajp/app

[balancer://overhttp]
BalancerMember = {up.http_url} route=hcnode1 hcmethod=GET hcuri=/app/ {HC}
                 {down.http_url} route=hcnode2 hcmethod=GET hcuri=/app/ {HC}

[balancer://overajp]
BalancerMember = {up.ajp_url} route=hcnode1 hcmethod=CPING {HC}
                 {down.ajp_url} route=hcnode2 hcmethod=CPING {HC}
"""
    )
    down_lines = [
        (down.http_url, "GET", "/h/echo"),
        (down.ajp_url, "CPING", "/a/echo"),
    ]
    for _url, _method, path in down_lines:
        assert {get_node(proxy, path)[1] for _ in range(4)} == {"hcnode1", "hcnode2"}

    down.stop()
    seen: list[tuple[int, str | None]] = []
    deadline = time.monotonic() + WAIT
    while not all(failed_line(u, m) in proxy.log() for u, m, _ in down_lines):
        assert time.monotonic() < deadline, proxy.log()
        for _url, _method, path in down_lines:
            seen.append(get_node(proxy, path))
    for _url, _method, path in down_lines:
        for _ in range(10):
            seen.append(get_node(proxy, path))
            assert seen[-1] == (200, "hcnode1")
    assert all(status == 200 for status, _ in seen), seen  # failover hid the stopped node

    # While the node starts, clients keep coming; each answer from it must come after
    # the proxy logged that the node passed its check on that balancer.
    stop = threading.Event()
    problems: list[str] = []
    back: set[str] = set()

    def clients() -> None:
        while not stop.is_set():
            for url, method, path in down_lines:
                status, node = get_node(proxy, path)
                if status != 200:
                    problems.append(f"{path}: {status}")
                elif node == "hcnode2":
                    if passed_line(url, method) not in proxy.log():
                        problems.append(f"{path} reached hcnode2 before it passed a check")
                    back.add(path)
            time.sleep(0.05)

    thread = threading.Thread(target=clients, daemon=True)
    thread.start()
    try:
        down.start()
        wait_for(lambda: len(back) == len(down_lines), "both balancers use hcnode2 again")
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not problems, problems
    log = proxy.log()
    for url, method, _path in down_lines:
        assert log.count(failed_line(url, method)) == 1, log
        assert log.count(passed_line(url, method)) == 1, log
