"""The smuggling table against the real ``twistd`` process in front of real Tomcat nodes.

Each shape of ``tests/unit/test_smuggling.py`` is sent whole over a socket to ajpbalancer
with Tomcat behind it over HTTP and over AJP; the client gets the status of the table,
and Tomcat's access log proves that nothing reached it (the table's targets all contain
``smuggled``, which no line of the log may).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.unit.test_smuggling import SHAPES

from .proxy import ProxyProcess
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]
READ_TIMEOUT = 5.0
PROTOCOLS: dict[int, str] = {}
"""The member protocol behind each proxy port (for unique marker requests)."""


def exchange(port: int, request: bytes) -> tuple[bytes, bool]:
    """Send ``request`` whole; the answer, and whether the proxy then closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                return data, True
            data += piece
        sock.settimeout(1.0)
        try:
            while piece := sock.recv(65536):
                data += piece
        except TimeoutError:
            return data, False
        return data, True


@pytest.fixture(scope="module", params=["http", "ajp"])
def proxied(
    request: pytest.FixtureRequest,
    tomcats: tuple[Tomcat, Tomcat],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[int, Tomcat]:
    node1 = tomcats[0]
    url = node1.http_url if request.param == "http" else node1.ajp_url
    config = (
        "[ajpbalancer]\naccess_log = off\n[frontend]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        f"ProxyPass = /app {url}/app\n"
    )
    workdir = tmp_path_factory.mktemp(f"smuggling-{request.param}")
    proxy = ProxyProcess(config, workdir).start()
    request.addfinalizer(proxy.stop)
    PROTOCOLS[proxy.port] = request.param
    return proxy.port, node1


@pytest.mark.parametrize("name", list(SHAPES))
def test_shape_is_refused_and_never_reaches_tomcat(proxied: tuple[int, Tomcat], name: str) -> None:
    port, node = proxied
    shape = SHAPES[name]
    data, closed = exchange(port, shape.request)
    assert data.startswith(b"HTTP/1.1 %d " % shape.status), data[:200]
    assert closed is shape.closes
    # Tomcat logs a request once answered, and its log is buffered: a marker request sent
    # after the shape is waited for; by then a shape that reached Tomcat would be logged.
    marker = f"/app/echo?marker={PROTOCOLS[port]}-{name}"
    exchange(port, f"GET {marker} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert node.access_log_lines(min_count=1, timeout=15.0, path_contains=marker)
    leaked = [line for line in node.access_log_lines() if "smuggled" in line.path]
    assert leaked == []
