"""A hung or killed store under load: every proxy keeps serving, no request waits on it.

Two proxies in front of the two Tomcat nodes share runtime state through a real
redis-server. Client threads keep requests going (bounded in count and time) while the
store is stopped with ``SIGSTOP`` and later killed; every request must be answered 200
and none may take anywhere near the store's 2 s time limit (the bound here is 1 s, for a
loaded two-core machine; the figures are in ``bench/README.md``). A change made on the
balancer-manager meanwhile applies at once on its proxy and reaches the other when the
store is back. ``workers = 2`` per proxy: the supervisor talks to the store, the workers
follow through the shared memory.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .conftest import ProxyFactory
from .fleetkit import Admin, admin_port, config, wait_for
from .proxy import ProxyProcess
from .redis import RedisServer
from .tomcat import Tomcat

RedisFactory = Callable[..., RedisServer]

MAX_LATENCY = 1.0
"""Seconds no request may reach while the store hangs (its own time limit is 2 s)."""
MAX_REQUESTS = 4000
"""Per client thread and load run: every loop is bounded in count as well as in time."""


@dataclass
class Load:
    """Client threads sending GETs on kept-alive connections until stopped."""

    proxy: ProxyProcess
    threads: int = 2
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    nodes: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _running: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        conn = self.proxy.connection(timeout=10)
        try:
            for _ in range(MAX_REQUESTS):
                if self._stop.is_set():
                    return
                started = time.monotonic()
                try:
                    conn.request("GET", "/app/echo")
                    resp = conn.getresponse()
                    body = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    self.errors.append(repr(e))
                    conn.close()
                    conn = self.proxy.connection(timeout=10)
                    continue
                self.latencies.append(time.monotonic() - started)
                self.statuses.append(resp.status)
                if resp.status == 200:
                    self.nodes.append((started, json.loads(body)["node"]))
        finally:
            conn.close()

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._running.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(timeout=15)

    def check(self) -> None:
        assert self.errors == []
        assert self.statuses and set(self.statuses) == {200}
        assert max(self.latencies) < MAX_LATENCY, f"slowest {max(self.latencies):.3f}s"


def pair(
    tomcats: tuple[Tomcat, Tomcat],
    proxy_factory: ProxyFactory,
    redis: RedisServer,
    workers: int = 1,
) -> tuple[Admin, Admin]:
    node1, node2 = tomcats
    admins = []
    for _ in range(2):
        port = admin_port()
        text = config(
            port, f"{redis.url}/0", members=(node1.http_url, node2.http_url), workers=workers
        )
        admins.append(Admin(proxy_factory(text), port))
    for admin in admins:
        wait_for(lambda a=admin: a.status()["state"]["connected"], "connected to the store")
    return admins[0], admins[1]


def test_a_hung_store_delays_no_request_and_changes_apply_locally_then_everywhere(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    node1 = tomcats[0]
    redis = redis_factory()
    a, b = pair(tomcats, proxy_factory, redis)
    with Load(a.proxy) as load_a, Load(b.proxy) as load_b:
        time.sleep(0.5)
        redis.pause()
        time.sleep(0.5)
        changed = time.monotonic()
        assert a.post(w=node1.http_url, w_status_D="1") == 200  # applies here at once
        assert time.monotonic() - changed < MAX_LATENCY
        wait_for(lambda: not a.status()["state"]["connected"], "the hang is noticed")
        time.sleep(1.0)
        assert b.member(node1.http_url)["flags"] == ""  # the store cannot tell b yet
        redis.resume()
        wait_for(lambda: b.member(node1.http_url)["flags"] == "D", "b follows", timeout=15)
        time.sleep(0.3)
    for load in (load_a, load_b):
        load.check()
    after = [node for when, node in load_a.nodes if when > changed + 0.2]
    assert after and set(after) == {"node2"}
    assert a.status()["state"]["connected"]
    assert "no answer from the store within 2s" in a.proxy.log()


def test_a_killed_store_delays_no_request_and_the_fleet_keeps_its_state(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    node1 = tomcats[0]
    redis = redis_factory()
    a, b = pair(tomcats, proxy_factory, redis)
    assert a.post(w=node1.http_url, w_lf="3") == 200
    wait_for(lambda: b.member(node1.http_url)["loadfactor"] == 3.0, "shared")
    with Load(a.proxy) as load_a, Load(b.proxy) as load_b:
        time.sleep(0.3)
        redis.kill()
        time.sleep(1.5)
        assert b.post(w=node1.http_url, w_status_N="1") == 200  # made while the store is gone
        redis_factory(port=redis.port)
        wait_for(lambda: a.member(node1.http_url)["flags"] == "N", "a follows", timeout=15)
    for load in (load_a, load_b):
        load.check()
    for admin in (a, b):
        m = admin.member(node1.http_url)
        assert (m["loadfactor"], m["flags"]) == (3.0, "N")


def test_workers_2_per_proxy_follow_the_store(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    node1 = tomcats[0]
    redis = redis_factory()
    a, b = pair(tomcats, proxy_factory, redis, workers=2)
    wait_for(lambda: "serving" in b.proxy.log(), "workers serving")
    assert a.post(w=node1.http_url, w_status_D="1") == 200
    wait_for(lambda: b.member(node1.http_url)["flags"] == "D", "b's supervisor follows")
    nodes = []
    for _ in range(20):  # new connections: the kernel hands them to either worker
        conn = b.proxy.connection(timeout=10)
        conn.request("GET", "/app/echo")
        resp = conn.getresponse()
        nodes.append(json.loads(resp.read())["node"])
        conn.close()
    assert set(nodes) == {"node2"}
    assert a.post(w=node1.http_url, w_status_D="0") == 200
    wait_for(lambda: b.member(node1.http_url)["flags"] == "", "b's supervisor follows")
    b.proxy.reload(b.proxy.config_path.read_text())  # a reload keeps what the store says
    time.sleep(1.0)
    seen = set()
    for _ in range(20):
        conn = b.proxy.connection(timeout=10)
        conn.request("GET", "/app/echo")
        seen.add(json.loads(conn.getresponse().read())["node"])
        conn.close()
    assert seen == {"node1", "node2"}
