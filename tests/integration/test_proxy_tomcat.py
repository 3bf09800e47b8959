"""The real ``twistd -n ajpbalancer`` in front of two real Tomcat 10 nodes over HTTP."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from .proxy import ProxyProcess, free_port
from .tomcat import Tomcat

MiB = 1 << 20
# Peak RSS of the proxy while 50 MB pass through it either way. An idle ajpbalancer
# process is ~40 MB; buffering a 50 MB body whole would pass this bound at once.
STREAM_RSS_BOUND_KIB = 90 * 1024

ProxyFactory = Callable[..., ProxyProcess]


def balanced_config(
    node1: Tomcat, node2: Tomcat, extra1: str = "", extra2: str = "", frontend: str = ""
) -> str:
    return f"""
[ajpbalancer]
access_log = access.log

[frontend:www]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /app balancer://cluster/app
{frontend}

[balancer://cluster]
BalancerMember = {node1.http_url} route=node1 {extra1}
                 {node2.http_url} route=node2 {extra2}
ProxySet = lbmethod=byrequests
"""


@pytest.fixture
def balanced(tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory) -> ProxyProcess:
    return proxy_factory(balanced_config(*tomcats))


def echo(
    proxy: ProxyProcess, path: str = "/app/echo", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    resp, body = proxy.get(path, headers)
    assert resp.status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def test_requests_alternate_between_equal_members(balanced: ProxyProcess) -> None:
    nodes = [echo(balanced)["node"] for _ in range(20)]
    assert nodes == ["node1", "node2"] * 10


def test_loadfactor_one_to_three_gives_exactly_one_to_three(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    proxy = proxy_factory(balanced_config(*tomcats, "loadfactor=1", "loadfactor=3"))
    nodes = [echo(proxy)["node"] for _ in range(40)]
    assert nodes.count("node1") == 10
    assert nodes.count("node2") == 30


def test_forwarded_headers_reach_tomcat(balanced: ProxyProcess) -> None:
    seen = echo(balanced, headers={"Host": "www.example.org", "X-Forwarded-For": "10.9.8.7"})
    headers = {name: value for name, value in seen["headers"]}
    assert headers["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
    assert headers["x-forwarded-host"] == "www.example.org"
    assert headers["x-forwarded-server"] == socket.gethostname()
    assert headers["host"] == f"127.0.0.{2 if seen['node'] == 'node1' else 3}:{seen['serverPort']}"


def test_hop_by_hop_headers_do_not_reach_tomcat(balanced: ProxyProcess) -> None:
    seen = echo(
        balanced,
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "secret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
        },
    )
    names = {name for name, _ in seen["headers"]}
    assert not names & {"x-private", "keep-alive", "te"}


def test_preserve_host_passes_the_clients_host(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    proxy = proxy_factory(balanced_config(*tomcats, frontend="ProxyPreserveHost = on"))
    seen = echo(proxy, headers={"Host": "public.example:8443"})
    assert seen["serverName"] == "public.example"
    assert seen["serverPort"] == 8443


def test_add_headers_off_sends_no_forwarded_headers(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    proxy = proxy_factory(balanced_config(*tomcats, frontend="ProxyAddHeaders = off"))
    names = {name for name, _ in echo(proxy)["headers"]}
    assert not any(n.startswith("x-forwarded-") for n in names)


def test_repeated_set_cookie_and_headers_stay_separate(balanced: ProxyProcess) -> None:
    resp, _ = balanced.get("/app/cookies?n=3")
    assert resp.headers.get_all("Set-Cookie") == [
        "c1=v1; Path=/app",
        "c2=v2; Path=/app",
        "c3=v3; Path=/app",
    ]
    assert resp.headers.get_all("X-Multi") == ["a", "b"]


def test_keep_alive_reuses_member_connections(balanced: ProxyProcess) -> None:
    ports = {echo(balanced)["remotePort"] for _ in range(30)}
    # 30 requests, one client connection each; the members see their pooled connections.
    assert len(ports) <= 4


def test_query_string_and_method_pass_unchanged(balanced: ProxyProcess) -> None:
    _resp, body = balanced.get("/app/echo?a=1&b=%20x", method="PATCH")
    seen = json.loads(body)
    assert (seen["method"], seen["query"], seen["uri"]) == ("PATCH", "a=1&b=%20x", "/app/echo")


def test_status_codes_without_body_pass(balanced: ProxyProcess) -> None:
    for code in (204, 304):
        resp, body = balanced.get(f"/app/status?code={code}")
        assert (resp.status, body) == (code, b"")
    resp, body = balanced.get("/app/echo", method="HEAD")
    assert resp.status == 200 and body == b""


def test_50mb_download_streams_with_bounded_memory(balanced: ProxyProcess) -> None:
    size = 50 * MiB
    conn = balanced.connection(timeout=120)
    conn.request("GET", f"/app/download?size={size}")
    resp = conn.getresponse()
    assert resp.status == 200
    digest = hashlib.sha256()
    expected = hashlib.sha256()
    pattern = bytes(i % 251 for i in range(251 * 1024))
    received = 0
    while chunk := resp.read(1 << 16):
        digest.update(chunk)
        received += len(chunk)
    conn.close()
    full, rest = divmod(size, len(pattern))
    for _ in range(full):
        expected.update(pattern)
    expected.update(pattern[:rest])
    assert received == size
    assert digest.hexdigest() == expected.hexdigest()
    assert balanced.peak_rss_kib() < STREAM_RSS_BOUND_KIB, balanced.peak_rss_kib()


def _upload(proxy: ProxyProcess, size: int, *, chunked: bool) -> tuple[dict[str, Any], str]:
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    expected = hashlib.sha256()
    conn = proxy.connection(timeout=120)
    conn.putrequest("POST", "/app/upload")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(size))
    conn.endheaders()
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        expected.update(piece)
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        sent += len(piece)
    if chunked:
        conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200, body
    return json.loads(body), expected.hexdigest()


def test_50mb_upload_streams_with_bounded_memory(balanced: ProxyProcess) -> None:
    seen, digest = _upload(balanced, 50 * MiB, chunked=False)
    assert (seen["bodyLength"], seen["bodySha256"]) == (50 * MiB, digest)
    assert seen["contentLength"] == str(50 * MiB)
    assert balanced.peak_rss_kib() < STREAM_RSS_BOUND_KIB


def test_chunked_upload_reaches_tomcat_chunked(balanced: ProxyProcess) -> None:
    seen, digest = _upload(balanced, 5 * MiB + 123, chunked=True)
    assert (seen["bodyLength"], seen["bodySha256"]) == (5 * MiB + 123, digest)
    assert seen["transferEncoding"] == "chunked"


def test_member_refusing_connections_gives_503(proxy_factory: ProxyFactory) -> None:
    port = free_port("127.0.0.4")
    proxy = proxy_factory(f"""
[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = / http://127.0.0.4:{port}/
""")
    resp, _ = proxy.get("/")
    assert resp.status == 503


def test_member_slower_than_timeout_gives_504(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    proxy = proxy_factory(balanced_config(*tomcats, "timeout=1", "timeout=1"))
    resp, _ = proxy.get("/app/slow?ms=2500")
    assert resp.status == 504
    # The members are fine afterwards: the timed-out connection was dropped, not reused.
    assert echo(proxy)["node"] in ("node1", "node2")


def _garbage_member(address: str, answer: bytes) -> tuple[int, threading.Event]:
    """A member that answers every request with ``answer`` and closes (bounded: 20 s)."""
    server = socket.socket()
    server.bind((address, 0))
    server.listen(8)
    server.settimeout(20)
    done = threading.Event()

    def serve() -> None:
        with server:
            while not done.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(5)
                    try:
                        conn.recv(65536)
                        conn.sendall(answer)
                    except OSError:
                        pass

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1]), done


def test_malformed_member_answer_gives_502(proxy_factory: ProxyFactory) -> None:
    port, done = _garbage_member("127.0.0.5", b"HTTP/1.1 200 OK\r\nNo-Colon-Here\r\n\r\n")
    try:
        proxy = proxy_factory(f"""
[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = / http://127.0.0.5:{port}/
""")
        resp, _ = proxy.get("/")
        assert resp.status == 502
    finally:
        done.set()


def test_access_log_names_the_member(balanced: ProxyProcess) -> None:
    echo(balanced, "/app/echo?log=1")
    line = (balanced.workdir / "access.log").read_text().splitlines()[-1]
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /app/echo?log=1 HTTP/1.1" 200 ' in line
    assert ' "-" "-" ' in line  # no Referer, no User-Agent from http.client
    assert line.split()[-1].rsplit(":", 1)[0] in ("http://127.0.0.2", "http://127.0.0.3")
