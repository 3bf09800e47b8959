"""Operating the real process: reload on SIGHUP under load, and dropping privileges."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from .conftest import ProxyFactory
from .proxy import ProxyProcess
from .tomcat import Tomcat

RELOAD_WAIT = 10.0


def routed_to(node: Tomcat) -> str:
    return f"""
[ajpbalancer]
access_log = access.log

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /app {node.http_url}/app
"""


def served_by(proxy: ProxyProcess) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", "/app/echo")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        node: str = json.loads(body)["node"]
        return node
    finally:
        conn.close()


def wait_for(predicate: object, timeout: float = RELOAD_WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_reload_during_a_stream_of_requests_fails_none(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    node1, node2 = tomcats
    proxy = proxy_factory(routed_to(node1))
    results: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        # Keep-alive and fresh connections alike; bounded in count and time.
        deadline = time.monotonic() + 30
        while not stop.is_set() and len(results) < 2000 and time.monotonic() < deadline:
            try:
                results.append(served_by(proxy))
            except BaseException as e:
                errors.append(e)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        assert wait_for(lambda: len(results) >= 20)
        proxy.reload(routed_to(node2))
        assert wait_for(lambda: results[-1] == "node2")
        assert wait_for(lambda: len(results) >= results.index("node2") + 20)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert errors == []
    first = results.index("node2")
    assert set(results[:first]) == {"node1"} and set(results[first:]) == {"node2"}
    assert "reloaded" in proxy.log()


def test_broken_config_on_reload_leaves_routing_as_it_was(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    node1, node2 = tomcats
    proxy = proxy_factory(routed_to(node1))
    proxy.reload(routed_to(node2).replace("ProxyPass", "ProxyPas"))
    assert wait_for(lambda: "reload refused" in proxy.log())
    assert "unknown directive 'ProxyPas'" in proxy.log()
    assert [served_by(proxy) for _ in range(5)] == ["node1"] * 5


def _free_privileged_port() -> int:
    for port in range(81, 1024):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 1024 on 127.0.0.1")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind below 1024 and drop to nobody")
def test_dropped_privileges_still_serve_a_privileged_port(
    tomcats: tuple[Tomcat, Tomcat], tmp_path: Path
) -> None:
    node1, _node2 = tomcats
    workdir = tmp_path / "priv"
    workdir.mkdir()
    workdir.chmod(0o755)  # the pid file and log stay writable by root only: that is fine
    port = _free_privileged_port()
    proxy = ProxyProcess(
        routed_to(node1), workdir, port=port, twistd_args=("-u", "nobody", "-g", "nogroup")
    )
    proxy.start()
    try:
        # twistd listens (privilegedStartService) before it drops privileges: the port
        # may accept a moment before the process is nobody's.
        def uids() -> list[str]:
            status = Path(f"/proc/{proxy.pid}/status").read_text()
            line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            return line.split()[1:]

        assert wait_for(lambda: uids() == ["65534"] * 4), uids()
        assert served_by(proxy) == "node1"
        assert (workdir / "access.log").read_text().count('"GET /app/echo HTTP/1.1" 200') == 1
    finally:
        proxy.stop()
