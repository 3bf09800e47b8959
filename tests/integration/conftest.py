"""Fixtures of the real-process integration tests: two Tomcat nodes on loopback.

``tomcats`` starts node1 on 127.0.0.2 and node2 on 127.0.0.3, at the same HTTP and AJP
ports on both addresses (18080/18009 when free), once per session and in parallel;
``tomcat_node1`` and ``tomcat_node2`` are its two members. ``tomcat_factory`` makes extra
nodes owned by one test (for kill/pause fault injection, secrets, packet sizes), stopped
when the test ends. ``apache_factory`` starts Apache httpd instances (the reference proxy,
see ``apache.py``) owned by one test. A node or an httpd that cannot start fails the test,
never skips it: CI must go red when Tomcat or Apache cannot run. Every test under this
directory is marked ``integration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .apache import Apache, ApacheError
from .proxy import ProxyProcess
from .redis import RedisError, RedisServer
from .tomcat import Tomcat, TomcatError, find_free_ports, start_all

NODE_ADDRESSES = {"node1": "127.0.0.2", "node2": "127.0.0.3"}
PREFERRED_PORTS = (18080, 18009)
START_ATTEMPTS = 3
"""Ports are probed free before Tomcat binds them; another process may win the race."""

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory with ``integration``."""
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


def start_nodes(names_addresses: dict[str, str], **options: Any) -> list[Tomcat]:
    """Start one node per (name, address), all at the same two free ports, in parallel.

    Retries on fresh ports when a connector could not bind; any other failure fails the
    calling test with the reason and Tomcat's log tail.
    """
    tried: set[int] = set()
    error: TomcatError | None = None
    for _ in range(START_ATTEMPTS):
        nodes: list[Tomcat] = []
        try:
            http_port, ajp_port = find_free_ports(
                list(names_addresses.values()), PREFERRED_PORTS, exclude=tried
            )
            tried.update((http_port, ajp_port))
            nodes = [
                Tomcat(name, address, http_port, ajp_port, **options)
                for name, address in names_addresses.items()
            ]
            start_all(nodes)
            return nodes
        except TomcatError as exc:
            for node in nodes:
                node.close()
            error = exc
            if not exc.bind_failed:
                break
    pairs = len(tried) // 2
    pytest.fail(f"Tomcat could not start ({pairs} port pair(s) tried): {error}", pytrace=False)


@pytest.fixture(scope="session")
def tomcats() -> Iterator[tuple[Tomcat, Tomcat]]:
    """node1 (127.0.0.2) and node2 (127.0.0.3), same ports, started once per session."""
    node1, node2 = start_nodes(NODE_ADDRESSES)
    try:
        yield node1, node2
    finally:
        node1.close()
        node2.close()


@pytest.fixture(scope="session")
def tomcat_node1(tomcats: tuple[Tomcat, Tomcat]) -> Tomcat:
    """node1: 127.0.0.2, jvmRoute node1."""
    return tomcats[0]


@pytest.fixture(scope="session")
def tomcat_node2(tomcats: tuple[Tomcat, Tomcat]) -> Tomcat:
    """node2: 127.0.0.3, jvmRoute node2."""
    return tomcats[1]


@pytest.fixture
def tomcat_factory() -> Iterator[Callable[..., list[Tomcat]]]:
    """Start extra nodes owned by one test: ``tomcat_factory({"node3": "127.0.0.4"}, **kw)``.

    Keyword arguments go to `Tomcat` (``ajp_secret``, ``ajp_packet_size``...). The nodes
    get ports of their own and are stopped, and their bases removed, after the test.
    """
    started: list[Tomcat] = []

    def factory(names_addresses: dict[str, str], **options: Any) -> list[Tomcat]:
        nodes = start_nodes(names_addresses, **options)
        started.extend(nodes)
        return nodes

    try:
        yield factory
    finally:
        for node in started:
            node.close()


# --- Apache httpd, the reference proxy ----------------------------------------------------


@pytest.fixture
def apache_factory(tmp_path: Path) -> Iterator[Callable[..., Apache]]:
    """Start Apache httpd instances owned by one test: ``apache_factory(proxy_config=...)``.

    Arguments go to `Apache` (``listen``, ``port``, ``proxy_config``, ``tls``, ``cert``,
    ``base_dir``). Without ``port`` each instance gets a free one, and a fresh one when
    another process won the race for it. Without ``base_dir`` the ServerRoot is
    ``tmp_path/apacheN``, so its config and logs outlive a failed test. Every instance is
    stopped after the test. httpd missing or not starting fails the test, never skips.
    """
    started: list[Apache] = []

    def factory(*args: Any, **options: Any) -> Apache:
        error: ApacheError | None = None
        fixed_port = len(args) > 1 or options.get("port") is not None
        for _ in range(START_ATTEMPTS):
            kwargs = dict(options)
            if kwargs.get("base_dir") is None:
                kwargs["base_dir"] = tmp_path / f"apache{len(started)}"
            apache = Apache(*args, **kwargs)
            started.append(apache)
            try:
                return apache.start()
            except ApacheError as exc:
                apache.close()
                error = exc
                if not exc.bind_failed or fixed_port:
                    break
        pytest.fail(f"Apache httpd could not start: {error}", pytrace=False)

    try:
        yield factory
    finally:
        for apache in started:
            apache.close()


ProxyFactory = Callable[..., ProxyProcess]


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator[ProxyFactory]:
    """Start ajpbalancer processes (config string with ``{port}``) owned by the test."""
    started: list[ProxyProcess] = []

    def make(config: str, **kw: Any) -> ProxyProcess:
        workdir = tmp_path / f"proxy{len(started)}"
        workdir.mkdir()
        proxy = ProxyProcess(config, workdir, **kw)
        started.append(proxy)
        return proxy.start()

    try:
        yield make
    finally:
        for proxy in started:
            proxy.stop()


# --- redis-server, the runtime state's store ---------------------------------------------


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-server instances owned by one test (``redis_factory(port=None)``),
    stopped by PID after it. A missing or failing redis-server fails the test."""
    started: list[RedisServer] = []

    def factory(port: int | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(started)}", port)
        started.append(server)
        try:
            return server.start()
        except RedisError as exc:
            pytest.fail(f"redis-server could not start: {exc}", pytrace=False)

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
