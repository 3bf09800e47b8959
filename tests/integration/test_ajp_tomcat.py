"""The real ``twistd -n ajpbalancer`` in front of real Tomcat 10 AJP connectors (``ajp://``).

The main node of this module, node3 on 127.0.0.4, has ``secretRequired="true"`` and a
secret; one ajpbalancer process with ``ProxyPass = /app ajp://…/app secret=…`` serves
most tests. Tests that need other member parameters (``packetsize``, ``ping``,
``timeout``, a wrong secret) or fresh memory figures start a proxy of their own. Tomcat
reports what it saw through the test webapp (``/app/echo``, ``/app/upload``,
``/app/progress``) and its AJP access log, which names the TCP connection of each request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .ajphelpers import (
    CLIENT_ADDRESS,
    Reply,
    ajp_frontend,
    build_request,
    download_sha256,
    exchange,
    start_proxy,
)
from .conftest import start_nodes
from .proxy import ProxyProcess, free_port
from .test_proxy_tomcat import STREAM_RSS_BOUND_KIB
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]
TomcatFactory = Callable[..., list[Tomcat]]

MiB = 1 << 20
SECRET = "s3cret"
BIG_HEADERS = 6
"""Fields of 7000 bytes each: ~42 KB of request headers, more than an 8 KiB AJP packet
holds, less than 64 KiB, and each field under the frontend's 8190-byte field limit."""
BIG_HEADER_SIZE = 7000
PROGRESS_TIMEOUT = 15.0
"""Seconds a slow-upload test waits for Tomcat to report progress."""


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured_node() -> Iterator[Tomcat]:
    """node3 (127.0.0.4): AJP with ``secretRequired="true"`` and `SECRET`."""
    [node] = start_nodes({"node3": "127.0.0.4"}, ajp_secret=SECRET)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def proxy(secured_node: Tomcat, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """ajpbalancer proxying ``/app`` to node3 over AJP with the right secret."""
    process = start_proxy(
        ajp_frontend(secured_node.ajp_url, f"secret={SECRET}"),
        tmp_path_factory.mktemp("ajp-proxy"),
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def big_packet_node() -> Iterator[Tomcat]:
    """node5 (127.0.0.5): AJP connector with ``packetSize="65536"``, no secret."""
    [node] = start_nodes({"node5": "127.0.0.5"}, ajp_packet_size=65536)
    try:
        yield node
    finally:
        node.close()


def send(
    proxy: ProxyProcess,
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> Reply:
    """One request to the proxy from `CLIENT_ADDRESS`, Host first, then `headers`."""
    fields = [("Host", f"127.0.0.1:{proxy.port}"), *(headers or [])]
    if body is not None:
        fields.append(("Content-Length", str(len(body))))
    return exchange("127.0.0.1", proxy.port, build_request(method, target, fields, body))


def echo(
    proxy: ProxyProcess,
    target: str = "/app/echo",
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> tuple[Reply, dict[str, Any]]:
    """`send`, then the echo servlet's JSON (the status must be 200)."""
    reply = send(proxy, method, target, headers, body)
    return reply, reply.json()


def upload(
    proxy: ProxyProcess, size: int, *, chunked: bool, target: str = "/app/upload"
) -> tuple[dict[str, Any], str]:
    """POST `size` bytes in 64 KiB writes; Tomcat's JSON answer and the body's SHA-256."""
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    expected = hashlib.sha256()
    conn = proxy.connection(timeout=120)
    try:
        conn.putrequest("POST", target)
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
    finally:
        conn.close()
    assert resp.status == 200, body
    return json.loads(body), expected.hexdigest()


def big_headers() -> list[tuple[str, str]]:
    return [(f"X-Big-{i}", chr(ord("a") + i) * BIG_HEADER_SIZE) for i in range(BIG_HEADERS)]


# --- requests -----------------------------------------------------------------------------


def test_get_with_query_reaches_tomcat_with_client_address_and_port(
    proxy: ProxyProcess,
) -> None:
    """Path and query travel apart; remoteAddr/remotePort are the client's, carried by AJP."""
    reply, seen = echo(proxy, "/app/echo/x%20y?a=1&b=%20x&c")
    assert seen["thread"].startswith("ajp-"), seen["thread"]
    assert (seen["method"], seen["uri"], seen["query"]) == (
        "GET",
        "/app/echo/x%20y",
        "a=1&b=%20x&c",
    )
    assert (seen["remoteAddr"], seen["remotePort"]) == (CLIENT_ADDRESS, reply.client_port)
    assert (seen["serverName"], seen["serverPort"]) == ("127.0.0.1", proxy.port)
    assert (seen["scheme"], seen["secure"], seen["protocol"]) == ("http", False, "HTTP/1.1")


def test_head_has_no_body_and_keeps_content_length(proxy: ProxyProcess) -> None:
    """HEAD goes as AJP method 3: no body comes back, Tomcat's Content-Length does."""
    reply = send(proxy, "HEAD", "/app/echo")
    assert (reply.status, reply.body) == (200, b"")
    [length] = reply.header("Content-Length")
    assert int(length) > 0
    assert reply.header("X-Node") == ["node3"]


def test_patch_reaches_tomcat_as_stored_method(proxy: ProxyProcess) -> None:
    """PATCH is not in AJP's method table: it goes as SC_M_JK_STORED + ``stored_method``."""
    _, seen = echo(proxy, method="PATCH", body=b"patch body")
    assert (seen["method"], seen["bodyLength"]) == ("PATCH", 10)
    assert seen["bodySha256"] == hashlib.sha256(b"patch body").hexdigest()


def test_post_with_content_length_arrives_whole(proxy: ProxyProcess) -> None:
    """A 300 KB body (the unsolicited first packet, then GET_BODY_CHUNKs) arrives intact."""
    body = os.urandom(300_000)
    seen = send(proxy, "POST", "/app/upload", body=body).json()
    assert (seen["bodyLength"], seen["bodySha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert seen["contentLength"] == str(len(body))


def test_chunked_post_reaches_tomcat_without_content_length(proxy: ProxyProcess) -> None:
    """A chunked body is de-chunked into body packets; Tomcat sees no Content-Length."""
    seen, digest = upload(proxy, 1 * MiB + 123, chunked=True)
    assert (seen["bodyLength"], seen["bodySha256"]) == (1 * MiB + 123, digest)
    assert seen["contentLength"] is None
    assert seen["transferEncoding"] == "chunked"


def test_50mb_upload_streams_with_bounded_memory(
    secured_node: Tomcat, proxy_factory: ProxyFactory
) -> None:
    """50 MB reach Tomcat with their checksum while the proxy's peak RSS stays bounded."""
    proxy = proxy_factory(ajp_frontend(secured_node.ajp_url, f"secret={SECRET}"))
    seen, digest = upload(proxy, 50 * MiB, chunked=False)
    assert (seen["bodyLength"], seen["bodySha256"]) == (50 * MiB, digest)
    assert proxy.peak_rss_kib() < STREAM_RSS_BOUND_KIB, proxy.peak_rss_kib()


def test_50mb_download_streams_with_bounded_memory(
    secured_node: Tomcat, proxy_factory: ProxyFactory
) -> None:
    """50 MB come back from Tomcat with their checksum, the proxy's peak RSS bounded."""
    proxy = proxy_factory(ajp_frontend(secured_node.ajp_url, f"secret={SECRET}"))
    size = 50 * MiB
    conn = proxy.connection(timeout=120)
    try:
        conn.request("GET", f"/app/download?size={size}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == str(size)
        digest = hashlib.sha256()
        received = 0
        while chunk := resp.read(1 << 16):
            digest.update(chunk)
            received += len(chunk)
    finally:
        conn.close()
    assert received == size
    assert digest.hexdigest() == download_sha256(size)
    assert proxy.peak_rss_kib() < STREAM_RSS_BOUND_KIB, proxy.peak_rss_kib()


def _progress(node: Tomcat, upload_id: str) -> int:
    """Bytes the upload `upload_id` has read so far, asked on node's own HTTP connector."""
    conn = http.client.HTTPConnection(node.address, node.http_port, timeout=5)
    try:
        conn.request("GET", f"/app/progress?id={upload_id}")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, body
    read: int = json.loads(body)["read"]
    return read


def test_slow_upload_is_read_by_tomcat_before_it_ends(
    proxy: ProxyProcess, secured_node: Tomcat
) -> None:
    """Tomcat reads the first half of a body while the client still holds the second.

    The client sends half of 1 MiB with the full Content-Length and stops; Tomcat's
    ``/app/progress`` servlet publishes how much it has read, asked on Tomcat's HTTP
    connector. More than one AJP packet must have been read (so GET_BODY_CHUNK was
    answered from what had arrived), before the rest is sent and the whole body checks.
    """
    size, half = 1 * MiB, 512 * 1024
    body = os.urandom(size)
    upload_id = uuid.uuid4().hex
    head = build_request(
        "POST",
        f"/app/progress?id={upload_id}",
        [("Host", f"127.0.0.1:{proxy.port}"), ("Content-Length", str(size))],
    )
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(head + body[:half])
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        read = _progress(secured_node, upload_id)
        while read < half // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            read = _progress(secured_node, upload_id)
        assert half // 2 <= read <= half, read
        sock.sendall(body[half:])
        resp = http.client.HTTPResponse(sock, method="POST")
        resp.begin()
        answer = resp.read()
    assert resp.status == 200, answer
    seen = json.loads(answer)
    assert (seen["bodyLength"], seen["bodySha256"]) == (size, hashlib.sha256(body).hexdigest())


@pytest.mark.parametrize("code", [204, 304])
def test_status_without_body_passes_without_body(proxy: ProxyProcess, code: int) -> None:
    """204 and 304 come back with no body and no body framing invented by the proxy."""
    reply = send(proxy, "GET", f"/app/status?code={code}")
    assert (reply.status, reply.body) == (code, b"")
    assert reply.header("Transfer-Encoding") == []
    assert reply.header("X-Node") == ["node3"]


def test_set_cookies_and_repeated_headers_stay_separate(proxy: ProxyProcess) -> None:
    """Three Set-Cookie fields stay three, and ``X-Multi`` twice stays twice, in order."""
    reply = send(proxy, "GET", "/app/cookies?n=3")
    assert reply.status == 200
    assert reply.header("Set-Cookie") == [
        "c1=v1; Path=/app",
        "c2=v2; Path=/app",
        "c3=v3; Path=/app",
    ]
    assert reply.header("X-Multi") == ["a", "b"]


def test_large_response_streams_in_many_body_chunks(proxy: ProxyProcess) -> None:
    """1 MiB without Content-Length, flushed in 64 KiB writes (SEND_BODY_CHUNKs of at most
    8184 bytes), reaches the client chunked and byte for byte."""
    size = 1 * MiB
    reply = send(proxy, "GET", f"/app/download?size={size}&chunked=1")
    assert reply.status == 200
    assert reply.header("Transfer-Encoding") == ["chunked"]
    assert reply.header("Content-Length") == []
    assert len(reply.body) == size
    assert hashlib.sha256(reply.body).hexdigest() == download_sha256(size)


REUSE_TARGET = "/app/download?size=1000&chunked=1"
"""A response without Content-Length: the client sees its end (the last chunk) only after
the proxy has read END_RESPONSE and pooled the connection again. With a Content-Length
the client may send its next request first, and the proxy then rightly opens another
connection: reuse would be counted by a race."""


def test_member_connections_are_reused(secured_node: Tomcat, proxy_factory: ProxyFactory) -> None:
    """Ten sequential requests, one client connection each, go over one AJP connection.

    A fresh proxy, so no connection of another test is in its pool; Tomcat's AJP access
    log names the TCP connection each request came on.
    """
    proxy = proxy_factory(ajp_frontend(secured_node.ajp_url, f"secret={SECRET}"))
    marker = f"reuse={uuid.uuid4().hex}"
    for _ in range(10):
        assert send(proxy, "GET", f"{REUSE_TARGET}&{marker}").status == 200
    lines = secured_node.access_log_lines(min_count=10, path_contains=marker)
    assert len(lines) == 10
    assert {line.connector for line in lines} == {"ajp"}
    assert len({line.connection for line in lines}) == 1, [line.connection for line in lines]


# --- member parameters and failures -------------------------------------------------------


@pytest.mark.parametrize("secret", ["wrong", None], ids=["wrong-secret", "no-secret"])
def test_wrong_secret_is_refused_by_tomcat(
    secured_node: Tomcat, proxy_factory: ProxyFactory, secret: str | None
) -> None:
    """Tomcat answers 403 itself and the webapp never runs (no ``X-Node``, not its JSON)."""
    params = f"secret={secret}" if secret is not None else ""
    proxy = proxy_factory(ajp_frontend(secured_node.ajp_url, params))
    reply = send(proxy, "GET", "/app/echo?refused=1")
    assert reply.status == 403, reply.body[:300]
    assert reply.header("X-Node") == []
    assert b'"node"' not in reply.body
    # The proxy is fine afterwards (Tomcat closed that connection; a new one is opened).
    assert send(proxy, "GET", "/app/echo?refused=2").status == 403


def test_tomcat_restart_between_requests_is_invisible_to_a_get(
    tomcat_factory: TomcatFactory, proxy_factory: ProxyFactory
) -> None:
    """A pooled connection whose Tomcat went away and came back does not fail a GET.

    Tomcat is stopped and started again between two requests on the same proxy: the
    connection the first request left in the pool is dead. Whether the proxy notices
    the close first or finds the connection stale when it uses it, the client must get
    the second answer from the restarted Tomcat.
    """
    [node] = tomcat_factory({"node6": "127.0.0.6"})
    proxy = proxy_factory(ajp_frontend(node.ajp_url))
    first, before = echo(proxy, "/app/echo?restart=before")
    node.stop()
    node.start()
    second, after = echo(proxy, "/app/echo?restart=after")
    assert (first.status, second.status) == (200, 200)
    assert before["node"] == after["node"] == "node6"
    assert after["query"] == "restart=after"


def test_big_headers_pass_with_64k_packets(
    big_packet_node: Tomcat, proxy_factory: ProxyFactory
) -> None:
    """~42 KB of request headers fit in one FORWARD_REQUEST with ``packetsize=65536``."""
    proxy = proxy_factory(ajp_frontend(big_packet_node.ajp_url, "packetsize=65536"))
    _, seen = echo(proxy, "/app/echo?big=65536", headers=big_headers())
    received = {name: value for name, value in seen["headers"]}
    for name, value in big_headers():
        assert received[name] == value


def test_big_headers_overflow_8k_packet_gives_400_before_tomcat(
    big_packet_node: Tomcat, proxy_factory: ProxyFactory
) -> None:
    """With the default 8192-byte packet the same request gets ajpbalancer's own 400.

    Nothing reaches Tomcat: a later small request on the same proxy is logged by
    Tomcat, the oversize one never is.
    """
    marker = f"overflow={uuid.uuid4().hex}"
    proxy = proxy_factory(ajp_frontend(big_packet_node.ajp_url))
    reply = send(proxy, "GET", f"/app/echo?{marker}", headers=big_headers())
    assert reply.status == 400
    assert reply.header("X-Node") == []
    assert b"AJP packet" in reply.body, reply.body
    echo(proxy, f"/app/echo?{marker}-after")
    logged = big_packet_node.access_log_lines(min_count=1, path_contains=marker)
    assert [line.path for line in logged] == [f"/app/echo?{marker}-after"]


def test_ping_member_is_served(secured_node: Tomcat, proxy_factory: ProxyFactory) -> None:
    """``ping=500ms``: CPING/CPONG before each request, on a new and a reused connection."""
    proxy = proxy_factory(ajp_frontend(secured_node.ajp_url, f"secret={SECRET} ping=500ms"))
    marker = f"ping={uuid.uuid4().hex}"
    for _ in range(4):
        reply = send(proxy, "GET", f"{REUSE_TARGET}&{marker}")
        assert (reply.status, len(reply.body)) == (200, 1000)
    lines = secured_node.access_log_lines(min_count=4, path_contains=marker)
    assert len(lines) == 4
    assert len({line.connection for line in lines}) == 1


def test_member_on_closed_port_gives_503(proxy_factory: ProxyFactory) -> None:
    """A member refusing connections: 503 Service Unavailable."""
    port = free_port("127.0.0.4")
    proxy = proxy_factory(ajp_frontend(f"ajp://127.0.0.4:{port}"))
    assert send(proxy, "GET", "/app/echo").status == 503


def test_member_slower_than_timeout_gives_504_then_serves(
    secured_node: Tomcat, proxy_factory: ProxyFactory
) -> None:
    """``timeout=1`` and a servlet sleeping 3 s: 504; the next request is served."""
    proxy = proxy_factory(ajp_frontend(secured_node.ajp_url, f"secret={SECRET} timeout=1"))
    assert send(proxy, "GET", "/app/slow?ms=3000").status == 504
    _, seen = echo(proxy, "/app/echo?after=timeout")
    assert seen["query"] == "after=timeout"


def test_balancer_alternates_between_two_ajp_members(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """byrequests over node1 and node2, both ``ajp://``: node1, node2, node1..."""
    node1, node2 = tomcats
    proxy = proxy_factory(f"""
[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /app balancer://cluster/app

[balancer://cluster]
BalancerMember = {node1.ajp_url} route=node1
                 {node2.ajp_url} route=node2
ProxySet = lbmethod=byrequests
""")
    served = [echo(proxy)[1] for _ in range(10)]
    assert [seen["node"] for seen in served] == ["node1", "node2"] * 5
    assert all(seen["thread"].startswith("ajp-") for seen in served)
