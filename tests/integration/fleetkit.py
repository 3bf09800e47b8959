"""Helpers of the runtime-state tests: proxies with an admin listener, their status.json,
balancer-manager changes posted as a browser posts them, and bounded waiting."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from .proxy import ProxyProcess, free_port

WAIT = 10.0
"""Longest a test waits for something the fleet should do within a second or so."""

M1 = "http://127.0.0.2:9"
M2 = "http://127.0.0.3:9"
"""Members no request goes to: the runtime-state tests look at state, not traffic."""

T = TypeVar("T")


def wait_for(what: Callable[[], T], why: str, timeout: float = WAIT) -> T:
    """Poll ``what`` every 50 ms until it returns something true, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {why} (last: {value!r})")
        time.sleep(0.05)


def config(
    admin_port: int,
    state: str | None,
    *,
    members: tuple[str, str] = (M1, M2),
    routes: tuple[str, str] = ("node1", "node2"),
    factors: tuple[str, str] = ("1", "1"),
    workers: int = 1,
    extra: str = "",
) -> str:
    persist = "" if state is None else f"BalancerPersist = on\nstate = {state}\n"
    return f"""
[ajpbalancer]
workers = {workers}
admin = tcp:{admin_port}:interface=127.0.0.1
access_log = off
{persist}{extra}
[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /app balancer://cluster/app

[balancer://cluster]
BalancerMember = {members[0]} route={routes[0]} loadfactor={factors[0]}
                 {members[1]} route={routes[1]} loadfactor={factors[1]}
"""


class Admin:
    """A proxy and its admin listener."""

    def __init__(self, proxy: ProxyProcess, port: int) -> None:
        self.proxy = proxy
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/status.json", timeout=10) as reply:
            doc: dict[str, Any] = json.load(reply)
        return doc

    def member(self, name: str) -> dict[str, Any]:
        members = self.status()["balancers"][0]["members"]
        found: dict[str, Any] = next(m for m in members if m["name"] == name)
        return found

    def post(self, **fields: str) -> int:
        """A balancer-manager change (with the balancer's nonce and the page's Referer)."""
        nonce = self.status()["balancers"][0]["nonce"]
        body = urllib.parse.urlencode({"b": "cluster", **fields, "nonce": nonce}).encode()
        request = urllib.request.Request(
            f"{self.url}/balancer-manager",
            data=body,
            headers={"Referer": f"{self.url}/balancer-manager"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)


def admin_port() -> int:
    return free_port()
