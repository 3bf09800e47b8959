"""WebSocket through ajpbalancer to the real Tomcat nodes, and against Apache httpd.

The webapp's Jakarta WebSocket endpoint (``/app/ws/echo``, see ``websockethelpers.py``)
on node1 and node2 is reached through a balancer with ``upgrade=websocket``: over HTTP
members (compared with Apache httpd's ``upgrade=websocket``: the handshake, echoes, close
codes), and over AJP members with ``upgradeurl`` (the upgrade goes to the node's HTTP
connector, every other request over AJP). The sticky route is kept; a 3 MiB message,
100 tunnels at once, a member killed and started again under an open tunnel, and a
client that never reads (the proxy's memory stays bounded) each have a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from .apache import Apache
from .balancerhelpers import STICKY, Cluster, fetch
from .conftest import ProxyFactory
from .proxy import ProxyProcess, free_port
from .tomcat import Tomcat
from .websockethelpers import TIMEOUT, RawWebSocket, ask, connect, run, whoami

ApacheFactory = Callable[..., Apache]
Nodes = tuple[Tomcat, Tomcat]


def cluster(nodes: Nodes, protocol: str) -> Cluster:
    """Both nodes with ``upgrade=websocket`` (AJP members: and their HTTP connector as
    ``upgradeurl``), sticky on JSESSIONID."""
    extra = [f"upgradeurl={n.http_url}" for n in nodes] if protocol == "ajp" else []
    return Cluster(nodes, protocol, STICKY, member_params="upgrade=websocket", member_extra=extra)


def start_proxy(proxy_factory: ProxyFactory, config: Cluster, settings: str = "") -> ProxyProcess:
    text = config.ajpbalancer_config()
    if settings:
        text = "[ajpbalancer]\n" + settings + "\n\n" + text
    return proxy_factory(text)


def poll(check: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Whether ``check()`` turns true within ``timeout`` seconds (checked every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def admin_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as answer:
        return json.loads(answer.read())


def admin_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as answer:
        return str(answer.read().decode())


# -- against Apache httpd --------------------------------------------------------------------


async def _scenario(port: int, route: str) -> dict[str, Any]:
    """What a client sees of a WebSocket session through the proxy on ``port``."""
    seen: dict[str, Any] = {}
    raw = RawWebSocket(port, headers={"Cookie": f"JSESSIONID=x.{route}"})
    try:
        seen["status"] = raw.status
        fields = dict(raw.fields())
        seen["fields"] = sorted(set(fields) - {"date", "server"})
        seen["upgrade"] = fields.get("upgrade", "").lower()
        seen["connection"] = fields.get("connection", "").lower()
        seen["accept"] = fields.get("sec-websocket-accept")
        seen["node"] = fields.get("x-node")
    finally:
        raw.close()
    async with connect(port, f"x.{route}") as ws:
        seen["text"] = await ask(ws, "héllo")
        seen["binary"] = await ask(ws, bytes(range(256)) * 300)
        seen["whoami"] = await ask(ws, "whoami")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, TIMEOUT)
        await ws.close(1000, "client done")
        seen["client_close"] = (ws.close_code, ws.close_reason)
    async with connect(port, f"x.{route}") as ws:
        await ws.send("close:4001:server says bye")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        seen["server_close"] = (closed.value.rcvd.code, closed.value.rcvd.reason)
    return seen


def test_handshake_echo_and_close_codes_equal_apaches(
    tomcats: Nodes, apache_factory: ApacheFactory, proxy_factory: ProxyFactory
) -> None:
    config = cluster(tomcats, "http")
    apache = apache_factory(proxy_config=config.apache_config())
    proxy = start_proxy(proxy_factory, config)
    for node in tomcats:
        through_apache = run(_scenario(apache.port, node.jvm_route))
        through_us = run(_scenario(proxy.port, node.jvm_route))
        assert through_us == through_apache
        assert through_us["status"] == 101
        assert through_us["node"] == node.jvm_route
        assert through_us["whoami"] == f"node={node.jvm_route}"
        assert through_us["client_close"] == (1000, "client done")
        assert through_us["server_close"] == (4001, "server says bye")


# -- AJP members, the sticky route ---------------------------------------------------------


def test_ajp_members_upgrade_over_their_http_connector(
    tomcats: Nodes, proxy_factory: ProxyFactory
) -> None:
    proxy = start_proxy(proxy_factory, cluster(tomcats, "ajp"))
    node1 = tomcats[0]
    tag = f"/app/session?ws-tag={os.getpid()}-{time.monotonic_ns()}"
    answer = fetch(proxy.port, tag, {"Cookie": "JSESSIONID=x.node1"})
    assert answer.status == 200 and answer.node == "node1"
    assert run(whoami(proxy.port, "x.node1")) == "node1"
    lines = node1.access_log_lines(min_count=1, path_contains=tag.split("?")[1])
    assert [line.connector for line in lines] == ["ajp"]
    upgrades = node1.access_log_lines(min_count=1, path_contains="/ws/echo")
    assert {line.connector for line in upgrades} == {"http"}


@pytest.mark.parametrize("protocol", ["http", "ajp"])
def test_the_sticky_route_is_kept(
    tomcats: Nodes, proxy_factory: ProxyFactory, protocol: str
) -> None:
    proxy = start_proxy(proxy_factory, cluster(tomcats, protocol))

    async def routes() -> list[str]:
        return [await whoami(proxy.port, f"s{i}.{n.jvm_route}") for i in range(5) for n in tomcats]

    assert run(routes()) == [n.jvm_route for _ in range(5) for n in tomcats]


@pytest.mark.parametrize("protocol", ["http", "ajp"])
def test_a_3_mib_message_goes_both_ways(
    tomcats: Nodes, proxy_factory: ProxyFactory, protocol: str
) -> None:
    proxy = start_proxy(proxy_factory, cluster(tomcats, protocol))
    message = os.urandom(3 << 20)

    async def echo() -> bytes | str:
        async with connect(proxy.port) as ws:
            return await ask(ws, message)

    assert run(echo()) == message


# -- many, long-lived, misbehaving -----------------------------------------------------------


def test_100_tunnels_at_once(tomcats: Nodes, proxy_factory: ProxyFactory) -> None:
    admin = free_port()
    proxy = start_proxy(
        proxy_factory, cluster(tomcats, "http"), f"admin = tcp:{admin}:interface=127.0.0.1"
    )

    def counts() -> tuple[int, int]:
        members = admin_json(admin, "/status.json")["balancers"][0]["members"]
        return sum(m["busy"] for m in members), sum(m["tunnels"]["open"] for m in members)

    async def hundred() -> list[str | bytes]:
        sockets = [connect(proxy.port) for _ in range(100)]
        opened = await asyncio.gather(*(s.__aenter__() for s in sockets))
        try:
            seen = await asyncio.to_thread(counts)
            assert seen == (100, 100)
            metrics = await asyncio.to_thread(admin_text, admin, "/metrics")
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("ajpbalancer_member_open_tunnels{")
            )
            assert total == 100
            return await asyncio.gather(*(ask(ws, f"m{i}") for i, ws in enumerate(opened)))
        finally:
            await asyncio.gather(*(ws.close() for ws in opened))

    assert run(hundred()) == [f"m{i}" for i in range(100)]
    assert poll(lambda: counts() == (0, 0))


def test_a_member_killed_under_an_open_tunnel_closes_it_and_serves_again_once_restarted(
    tomcat_factory: Callable[..., list[Tomcat]], proxy_factory: ProxyFactory
) -> None:
    (node,) = tomcat_factory({"node3": "127.0.0.4"})
    proxy = proxy_factory(
        "[frontend]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        f"ProxyPass = /app {node.http_url}/app upgrade=websocket retry=0\n"
    )

    async def killed() -> float:
        async with connect(proxy.port) as ws:
            assert await ask(ws, "whoami") == "node=node3"
            started = time.monotonic()
            await asyncio.to_thread(node.kill)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            return time.monotonic() - started

    assert run(killed()) < TIMEOUT
    node.start()
    assert run(whoami(proxy.port)) == "node3"


def test_a_client_that_never_reads_keeps_the_proxys_memory_bounded(
    tomcats: Nodes, proxy_factory: ProxyFactory
) -> None:
    proxy = start_proxy(proxy_factory, cluster(tomcats, "http"))
    run(whoami(proxy.port))  # warm: the first tunnel's code and buffers
    before = proxy.rss_kib()
    raw = RawWebSocket(proxy.port)
    try:
        assert raw.status == 101
        raw.send_text("flood:4000")  # 250 MiB the member sends as fast as it may
        peak = before
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            peak = max(peak, proxy.rss_kib())
            time.sleep(0.2)
        raw.sock.settimeout(TIMEOUT)
        assert raw.sock.recv(65536)  # the flood was flowing: only the client held it back
    finally:
        raw.close()
    assert peak - before < 32 * 1024, f"proxy RSS grew by {(peak - before) // 1024} MiB"


def test_the_access_log_line_is_written_when_the_tunnel_closes(
    tomcats: Nodes, proxy_factory: ProxyFactory
) -> None:
    proxy = start_proxy(proxy_factory, cluster(tomcats, "http"), "access_log = access.log")
    log = Path(proxy.workdir) / "access.log"

    async def session() -> None:
        async with connect(proxy.port, "x.node2") as ws:
            await ask(ws, "12345")

    run(session())
    assert poll(lambda: log.exists() and " tunnel in=" in log.read_text())
    line = next(ln for ln in log.read_text().splitlines() if " tunnel in=" in ln)
    assert '"GET /app/ws/echo HTTP/1.1" 101 ' in line
    assert f" {tomcats[1].http_url} tunnel in=" in line


def test_the_demo_members_greet_and_echo_over_a_websocket(tmp_path: Path) -> None:
    """etc/demo.ini as the README runs it (on free ports): demo2 over HTTP, demo1 over
    AJP with its WebSocket on its upgradeurl, each chosen by the session's route."""
    text = (Path(__file__).resolve().parents[2] / "etc" / "demo.ini").read_text()
    ports = {p: str(free_port()) for p in ("8080", "18009", "18081", "18082")}
    for old, new in ports.items():
        text = text.replace(f":{old}", f":{new}")
    proxy = ProxyProcess(text, tmp_path, port=int(ports["8080"])).start()
    try:

        async def session(route: str) -> list[str | bytes]:
            async with connect(proxy.port, f"X.{route}", path="/echo") as ws:
                greeting = await asyncio.wait_for(ws.recv(), TIMEOUT)
                return [greeting, await ask(ws, "hello"), await ask(ws, b"\x00\x01")]

        for route in ("demo1", "demo2"):
            greeting, text_echo, binary_echo = run(session(route))
            assert greeting == f"connected to demo member {route}: send anything, it comes back"
            assert (text_echo, binary_echo) == ("hello", b"\x00\x01")
    finally:
        proxy.stop()


def test_a_reload_keeps_open_tunnels(tomcats: Nodes, proxy_factory: ProxyFactory) -> None:
    config = cluster(tomcats, "http")
    proxy = start_proxy(proxy_factory, config)

    async def across_a_reload() -> list[str | bytes]:
        async with connect(proxy.port, "x.node1") as ws:
            before = await ask(ws, "before")
            changed = config.ajpbalancer_config().replace("{port}", str(proxy.port))
            proxy.reload(changed.replace("route=node2", "route=node2 loadfactor=2"))
            reloaded = await asyncio.to_thread(poll, lambda: "reloaded " in proxy.log())
            assert reloaded, proxy.log()
            return [before, await ask(ws, "after"), await whoami(proxy.port, "x.node2")]

    assert run(across_a_reload()) == ["before", "after", "node2"]
