"""The real ``twistd -n ajpbalancer`` with ``ssl:`` and ``unix:`` frontends, and TLS members.

Frontends: a ``listen`` line of each endpoint kind serves the Tomcat balancer, and one
frontend may listen on several endpoints at once. Members: an ``https://`` target is
spoken to over TLS; with ``verify=off`` any certificate is accepted, by default the
certificate must be trusted, and an untrusted one ends in 502 before anything of the
member's answer reaches the client.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .certs import make_cert
from .proxy import ProxyProcess, free_port
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]

MEMBER_ADDRESS = "127.0.0.6"
MEMBER_BODY = b"hello from the TLS member\n"
MEMBER_SHUTDOWN_TIMEOUT = 10.0
UNIX_PATH_MAX = 107
"""sun_path holds 108 bytes, the terminating NUL included."""


@pytest.fixture
def frontend_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1`` (key, cert)."""
    directory = tmp_path / "frontend-cert"
    directory.mkdir()
    return make_cert(directory, "localhost", san_ip=["127.0.0.1"], san_dns=["localhost"])


def cluster_config(node1: Tomcat, node2: Tomcat, listen: str) -> str:
    """The two Tomcat nodes as a balancer behind ``/app``, the frontend on ``listen``.

    ``listen`` may hold several endpoints, one per line.
    """
    listen_lines = "\n         ".join(listen.splitlines())
    return f"""
[frontend:www]
listen = {listen_lines}
ProxyPass = /app balancer://cluster/app

[balancer://cluster]
BalancerMember = {node1.http_url} route=node1
                 {node2.http_url} route=node2
"""


def ssl_listen(port: int | str, key: Path, cert: Path) -> str:
    return f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts exactly ``cert`` and checks the host name."""
    context = ssl.create_default_context(cafile=str(cert))
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    return context


def get_echo(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
    """``GET /app/echo`` on ``conn``: the status and the body."""
    try:
        conn.request("GET", "/app/echo")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def https_connection(port: int, cert: Path) -> http.client.HTTPSConnection:
    """A connection to ``localhost:port`` that trusts only ``cert`` and checks the name."""
    return http.client.HTTPSConnection("localhost", port, context=client_context(cert), timeout=30)


def raw_http_over_unix(path: Path, request: bytes) -> bytes:
    """Send ``request`` on a unix stream socket; everything read until the peer closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(path))
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- frontends -----------------------------------------------------------------------------


def test_ssl_frontend_serves_the_balancer_over_tls(
    tomcats: tuple[Tomcat, Tomcat],
    proxy_factory: ProxyFactory,
    frontend_cert: tuple[Path, Path],
) -> None:
    """An ``ssl:`` listen line terminates TLS with the configured key and certificate.

    The client trusts only that certificate and checks the host name, so a 200 proves the
    frontend presented it, and the balancer behind it answered from a Tomcat node.
    """
    key, cert = frontend_cert
    proxy = proxy_factory(cluster_config(*tomcats, ssl_listen("{port}", key, cert)))
    status, body = get_echo(https_connection(proxy.port, cert))
    assert status == 200, body
    seen = json.loads(body)
    assert seen["node"] in ("node1", "node2")
    assert seen["uri"] == "/app/echo"


def test_frontend_with_tcp_and_ssl_listen_lines_serves_on_both(
    tomcats: tuple[Tomcat, Tomcat],
    proxy_factory: ProxyFactory,
    frontend_cert: tuple[Path, Path],
) -> None:
    """Two ``listen`` lines of one frontend: plain HTTP on one port, TLS on the other."""
    key, cert = frontend_cert
    tls_port = free_port()
    listen = f"tcp:{{port}}:interface=127.0.0.1\n{ssl_listen(tls_port, key, cert)}"
    proxy = proxy_factory(cluster_config(*tomcats, listen))
    plain_status, plain = get_echo(proxy.connection())
    tls_status, tls = get_echo(https_connection(tls_port, cert))
    assert (plain_status, tls_status) == (200, 200), (plain, tls)
    # byrequests with equal members alternates: both listeners feed the one balancer.
    assert {json.loads(plain)["node"], json.loads(tls)["node"]} == {"node1", "node2"}


def test_unix_frontend_serves_the_balancer(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    """A ``unix:PATH`` listen line, the frontend's only one, answers HTTP on that socket."""
    path = tmp_path / "fe.sock"
    assert len(str(path).encode()) <= UNIX_PATH_MAX, path
    proxy_factory(cluster_config(*tomcats, f"unix:{path}"), unix_socket=path)
    answer = raw_http_over_unix(
        path, b"GET /app/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    seen = json.loads(body)
    assert seen["node"] in ("node1", "node2")
    assert seen["uri"] == "/app/echo"


# -- https:// members ------------------------------------------------------------------------


class _MemberHandler(BaseHTTPRequestHandler):
    """Answers every GET with `MEMBER_BODY` and a Content-Length, keeping the connection."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck peer (handshake or request) frees its thread in bounded time

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _TLSMember)
        server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(MEMBER_BODY)))
        self.end_headers()
        self.wfile.write(MEMBER_BODY)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _TLSMember(ThreadingHTTPServer):
    """An HTTP/1.1 server behind TLS; remembers the paths it served."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], key_path: Path, cert_path: Path) -> None:
        super().__init__(address, _MemberHandler)
        self.requests: list[str] = []
        self.cert_path = cert_path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        # The handshake happens on the first read, in the handler's thread with its
        # timeout, so a failed or stuck handshake never blocks the accept loop.
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # handshake refused by the proxy: expected in the verify=on test


@pytest.fixture
def tls_member(tmp_path: Path) -> Iterator[_TLSMember]:
    """A TLS member on 127.0.0.6 with a self-signed certificate valid for that address.

    The certificate names the member's address, so the only thing a verifying client can
    hold against it is that nobody trusts its issuer.
    """
    directory = tmp_path / "member-cert"
    directory.mkdir()
    key, cert = make_cert(directory, MEMBER_ADDRESS, san_ip=[MEMBER_ADDRESS])
    server = _TLSMember((MEMBER_ADDRESS, 0), key, cert)
    thread = threading.Thread(target=server.serve_forever, name="tls-member", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(MEMBER_SHUTDOWN_TIMEOUT)
        assert not thread.is_alive()


def member_config(member: _TLSMember, params: str = "") -> str:
    port = member.server_address[1]
    return f"""
[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = / https://{MEMBER_ADDRESS}:{port}/ {params}
"""


def test_https_member_with_verify_off_is_spoken_to_over_tls(
    tls_member: _TLSMember, proxy_factory: ProxyFactory
) -> None:
    """``verify=off``: the proxy accepts the untrusted certificate and relays the answer."""
    proxy = proxy_factory(member_config(tls_member, "verify=off"))
    resp, body = proxy.get("/hello")
    assert resp.status == 200
    assert body == MEMBER_BODY
    assert tls_member.requests == ["/hello"]


def test_https_member_with_untrusted_certificate_gives_502(
    tls_member: _TLSMember, proxy_factory: ProxyFactory
) -> None:
    """By default the member's certificate is verified: an untrusted one is a 502.

    The certificate is right for the member's address but self-signed, so the TLS
    handshake fails on the proxy's side, the member never sees the request, and nothing
    of its answer reaches the client.
    """
    proxy = proxy_factory(member_config(tls_member))
    resp, body = proxy.get("/hello")
    assert resp.status == 502, (resp.status, body, proxy.log())
    assert MEMBER_BODY not in body
    assert tls_member.requests == []
    proxy.stop()  # flushes its log
    assert "certificate verify failed" in proxy.log()


def test_https_member_with_trusted_certificate_is_verified_and_relayed(
    tls_member: _TLSMember,
    proxy_factory: ProxyFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Default verification passes when the member's issuer is trusted and names its IP.

    The proxy process trusts only the member's certificate (OpenSSL's ``SSL_CERT_FILE``,
    with an empty ``SSL_CERT_DIR``), so this is the counterpart of the 502 above: the
    same member, verified this time, and its answer relayed.
    """
    empty = tmp_path / "no-ca-dir"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_member.cert_path))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    proxy = proxy_factory(member_config(tls_member, "verify=on"))
    resp, body = proxy.get("/trusted")
    assert resp.status == 200, (body, proxy.log())
    assert body == MEMBER_BODY
    assert tls_member.requests == ["/trusted"]
