"""The Apache httpd fixture, proven in front of the real Tomcat nodes.

Apache is the reference of the differential tests, so this module also pins down how a
request looks to Tomcat, and a response to the client, through Apache 2.4 (Debian's
2.4.71 here). What it showed, the baseline the differential tests compare against:

Through mod_proxy_http (``ProxyPass /app http://node1/app``):

- Tomcat sees Apache's address (127.0.0.1) as ``remoteAddr`` and a port of Apache's own
  connection; the client is only in ``X-Forwarded-For``. Apache appends to a client's
  ``X-Forwarded-For`` (``6.6.6.6, 127.0.0.1``) and adds ``X-Forwarded-Host`` (the
  client's Host, ``127.0.0.1:PORT``) and ``X-Forwarded-Server`` (the ``ServerName``,
  without port). ``Host`` is the member's ``host:port`` (no ``ProxyPreserveHost``).
- Headers named in the client's ``Connection`` are dropped, and Apache sends its own
  ``Connection: Keep-Alive`` last. Repeated request headers arrive joined into one
  ``one, two`` (Apache's core merges them while reading the request, before any proxy
  module runs). Tomcat's HTTP connector reports every header name in lower case.
- Tomcat 10 sends no reason phrase and Apache relays that: ``HTTP/1.1 200 `` (a space,
  then nothing). ``Content-Length`` from Tomcat reaches the client.

Through mod_proxy_ajp (``ProxyPass /app ajp://node1/app``):

- Tomcat sees the client itself: ``remoteAddr`` and ``remotePort`` are the client's
  address and TCP port (the port travels as the ``AJP_REMOTE_PORT`` request attribute,
  which Tomcat consumes, so ``attributes`` stays empty), ``localAddr``/``localPort`` are
  Apache's listener, ``serverName``/``serverPort`` come from the client's Host (port 80
  when Host has none), so ``requestUrl`` is the public URL. No ``X-Forwarded-*`` is added;
  a client's own ``X-Forwarded-For`` passes untouched.
- Headers go as the client sent them: names keep their case (``X-Rep``), except those
  AJP sends as codes (``host``, ``connection``, ``accept``...), which Tomcat reports in
  lower case; repeated headers joined with ``, `` as above; hop-by-hop headers and those
  named in ``Connection`` are forwarded too (``Connection: keep-alive, X-Hop`` and
  ``X-Hop`` reach Tomcat).
- Tomcat's AJP connector sends the status code as the reason phrase and Apache relays
  it: ``HTTP/1.1 200 200``, ``HTTP/1.1 403 403``.
- Tomcat sends ``Content-Length`` in SEND_HEADERS (seen with a raw AJP request), but
  mod_proxy_ajp drops it and lets the core frame the body by what is actually sent: the
  client gets ``Transfer-Encoding: chunked`` (a HEAD answer has neither). With the
  request variable ``ap_trust_cgilike_cl`` set (``SetEnv ap_trust_cgilike_cl 1``) the
  member's ``Content-Length`` reaches the client.
- TLS (mod_ssl, any client certificate not asked for): ``scheme`` https, ``secure`` true,
  and Tomcat exposes ``jakarta.servlet.request.cipher_suite`` (OpenSSL's name of the
  cipher the client negotiated, ``TLS_AES_256_GCM_SHA384``), ``...key_size`` (``256``),
  ``...ssl_session_id`` (hex) and ``org.apache.tomcat.util.net.secure_protocol_version``
  (``TLSv1.3``). The server answers ``Server: Apache/2.4.71 (Debian) OpenSSL/3.0.x``.
- Secrets: with ``secretRequired`` on Tomcat, a matching ``secret=`` works; a wrong or
  missing one gets Tomcat's own 403 HTML page (``HTTP/1.1 403 403``), without the
  webapp's ``X-Node`` header: the request never reached the webapp.

mod_proxy_balancer with byrequests and two equal AJP members starts with the first one
and then alternates (node1, node2, node1...): ties go to the first member in config order.
The access log names the member (``BALANCER_WORKER_NAME``, the member URL without path)
and its route.

Apache itself starts in about 0.05 s here. A TLS instance logs warnings at startup about
`certs.make_cert`'s certificate (AH01906: it is a CA; AH01909: "does NOT include an ID
which matches the server name", the ``ServerName`` being the IP 127.0.0.1) and, on this
box, AH01882 (mod_ssl built against a newer OpenSSL than the one loaded); none of them
matters to the tests.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .apache import (
    Apache,
    ApacheError,
    ajp_balancer,
    ajp_proxy,
    group_members,
    http_proxy,
    posix_shm_of,
)
from .certs import make_cert
from .tomcat import Tomcat

ApacheFactory = Callable[..., Apache]

CLIENT_ADDRESS = "127.0.0.9"
"""A loopback address no server uses, so that the client is told apart from Apache."""

SSL_ATTRIBUTES = (
    "jakarta.servlet.request.cipher_suite",
    "jakarta.servlet.request.key_size",
    "jakarta.servlet.request.ssl_session_id",
    "org.apache.tomcat.util.net.secure_protocol_version",
)


def echo(
    conn: http.client.HTTPConnection,
    path: str = "/app/echo",
    headers: list[tuple[str, str]] | None = None,
) -> tuple[http.client.HTTPResponse, dict[str, Any], int]:
    """``GET path`` on `conn`, headers sent in order: response, echo JSON, client port."""
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        assert conn.sock is not None
        client_port: int = conn.sock.getsockname()[1]
    finally:
        conn.close()
    assert resp.status == 200, body
    seen: dict[str, Any] = json.loads(body)
    return resp, seen, client_port


def header_values(seen: dict[str, Any], name: str) -> list[str]:
    """Values of request header `name` (any case) as Tomcat saw them, in order."""
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


def raw_exchange(apache: Apache, request: bytes) -> bytes:
    """Send `request` to a plain-HTTP Apache and read until it closes."""
    with socket.create_connection((apache.listen, apache.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --- the fixture itself -------------------------------------------------------------------


def test_apache_serves_status_and_logs_client_port(apache_factory: ApacheFactory) -> None:
    """A started instance answers ``/server-status`` and logs the client's TCP port."""
    apache = apache_factory(proxy_config="")
    assert apache.url == f"http://127.0.0.1:{apache.port}"
    conn = apache.connection(source_address=(CLIENT_ADDRESS, 0))
    try:
        conn.request("GET", "/server-status?auto&from=client")
        resp = conn.getresponse()
        body = resp.read()
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
    finally:
        conn.close()
    assert resp.status == 200
    assert b"ServerMPM: event" in body
    [line] = apache.access_log_lines(min_count=1, target_contains="from=client")
    assert (line.remote_addr, line.remote_port) == (CLIENT_ADDRESS, client_port)
    assert line.local_port == apache.port
    assert (line.method, line.status, line.worker) == ("GET", 200, None)
    assert "AH00489" in apache.error_log_tail()  # "configured -- resuming normal operations"


def test_stop_ends_parent_and_children(apache_factory: ApacheFactory) -> None:
    """`stop` leaves no process of the instance; as root, children run unprivileged."""
    apache = apache_factory(proxy_config="")
    pid = apache.pid
    assert pid is not None
    members = group_members(pid)
    assert pid in members and len(members) >= 2, members
    if os.geteuid() == 0:
        children = [p for p in members if p != pid]
        assert all(os.stat(f"/proc/{p}").st_uid != 0 for p in children)
    apache.stop()
    assert not apache.running
    assert group_members(pid) == []


def test_kill_ends_the_group_and_unlinks_its_shared_memory(
    apache_factory: ApacheFactory,
) -> None:
    """`kill` (SIGKILL) leaves no process and no ``/dev/shm`` object of the instance."""
    apache = apache_factory(proxy_config=ajp_balancer([("ajp://127.0.0.2:1", "r1")]), tls=True)
    pid = apache.pid
    assert pid is not None
    shm = posix_shm_of(pid)
    assert shm, "slotmem_shm and shmcb map named shared memory"
    apache.kill()
    assert not apache.running
    assert group_members(pid) == []
    assert [path for path in shm if path.exists()] == []


def test_config_error_is_reported_with_apache_message() -> None:
    """A directive httpd rejects raises `ApacheError` quoting ``apache2 -t`` and the line."""
    apache = Apache(proxy_config="ProxyPass /app ajp://127.0.0.2:1/app nosuchparam=1")
    try:
        with pytest.raises(ApacheError, match="apache2 -t rejected") as info:
            apache.start()
        assert not apache.running
    finally:
        apache.close()
    message = str(info.value)
    assert "unknown Worker parameter" in message
    assert "ProxyPass /app ajp://127.0.0.2:1/app nosuchparam=1" in message


def test_port_in_use_is_reported_as_bind_failure() -> None:
    """A port another socket listens on ends the start with ``bind_failed``."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        apache = Apache(port=holder.getsockname()[1], proxy_config="")
        try:
            with pytest.raises(ApacheError) as info:
                apache.start()
        finally:
            apache.close()
    assert info.value.bind_failed, info.value


# --- mod_proxy_http -----------------------------------------------------------------------


def test_http_proxy_sends_x_forwarded_headers(
    tomcat_node1: Tomcat, apache_factory: ApacheFactory
) -> None:
    """Tomcat sees Apache as the peer and the client in ``X-Forwarded-For``."""
    apache = apache_factory(proxy_config=http_proxy(tomcat_node1.http_url))
    resp, seen, _ = echo(apache.connection(source_address=(CLIENT_ADDRESS, 0)))
    assert seen["node"] == "node1"
    assert resp.getheader("X-Node") == "node1"
    assert seen["thread"].startswith("http-")
    assert seen["remoteAddr"] == "127.0.0.1"
    assert header_values(seen, "X-Forwarded-For") == [CLIENT_ADDRESS]
    assert header_values(seen, "X-Forwarded-Host") == [f"127.0.0.1:{apache.port}"]
    assert header_values(seen, "X-Forwarded-Server") == ["127.0.0.1"]
    assert header_values(seen, "Host") == [f"127.0.0.2:{tomcat_node1.http_port}"]


def test_http_proxy_header_handling(tomcat_node1: Tomcat, apache_factory: ApacheFactory) -> None:
    """Repeats joined, ``Connection`` tokens dropped, XFF appended, names lower-cased."""
    apache = apache_factory(proxy_config=http_proxy(tomcat_node1.http_url))
    resp, seen, _ = echo(
        apache.connection(),
        headers=[
            ("X-Rep", "one"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "dropped"),
            ("X-Rep", "two"),
            ("X-Forwarded-For", "6.6.6.6"),
        ],
    )
    assert ["x-rep", "one, two"] in seen["headers"]
    assert header_values(seen, "X-Hop") == []
    assert header_values(seen, "Connection") == ["Keep-Alive"]
    assert header_values(seen, "X-Forwarded-For") == ["6.6.6.6, 127.0.0.1"]
    assert all(name == name.lower() for name, _ in seen["headers"])
    assert resp.reason == ""
    assert resp.getheader("Content-Length") is not None


# --- mod_proxy_ajp ------------------------------------------------------------------------


def test_ajp_proxy_forwards_client_address_and_port(
    tomcat_node1: Tomcat, apache_factory: ApacheFactory
) -> None:
    """Over AJP Tomcat sees the client's own address and port, and no X-Forwarded-*."""
    apache = apache_factory(proxy_config=ajp_proxy(tomcat_node1.ajp_url))
    _, seen, client_port = echo(apache.connection(source_address=("127.0.0.1", 0)), "/app/echo?x=1")
    assert seen["node"] == "node1"
    assert seen["thread"].startswith("ajp-")
    assert (seen["remoteAddr"], seen["remotePort"]) == ("127.0.0.1", client_port)
    assert (seen["localAddr"], seen["localPort"]) == ("127.0.0.1", apache.port)
    assert (seen["serverName"], seen["serverPort"]) == ("127.0.0.1", apache.port)
    assert seen["requestUrl"] == f"http://127.0.0.1:{apache.port}/app/echo"
    assert (seen["scheme"], seen["secure"]) == ("http", False)
    assert seen["query"] == "x=1"
    assert [n for n, _ in seen["headers"] if n.lower().startswith("x-forwarded")] == []
    [logged] = tomcat_node1.access_log_lines(min_count=1, path_contains="/app/echo?x=1")[-1:]
    assert logged.connector == "ajp"
    assert (logged.remote_addr, logged.remote_port) == ("127.0.0.1", client_port)
    [line] = apache.access_log_lines(min_count=1, target_contains="/app/echo")
    assert line.remote_port == client_port


def test_ajp_proxy_header_handling(tomcat_node1: Tomcat, apache_factory: ApacheFactory) -> None:
    """Names keep their case, repeats joined, hop-by-hop passed; reason is the code."""
    apache = apache_factory(proxy_config=ajp_proxy(tomcat_node1.ajp_url))
    resp, seen, _ = echo(
        apache.connection(),
        headers=[
            ("X-Rep", "one"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "kept"),
            ("X-Rep", "two"),
            ("X-Forwarded-For", "6.6.6.6"),
        ],
    )
    assert ["X-Rep", "one, two"] in seen["headers"]
    assert ["X-Hop", "kept"] in seen["headers"]
    assert ["connection", "keep-alive, X-Hop"] in seen["headers"]
    assert ["X-Forwarded-For", "6.6.6.6"] in seen["headers"]
    assert ["host", f"127.0.0.1:{apache.port}"] in seen["headers"]
    assert resp.reason == "200"


@pytest.mark.parametrize(
    ("config", "framing"),
    [("", "Transfer-Encoding: chunked"), ("SetEnv ap_trust_cgilike_cl 1\n", "Content-Length: 28")],
)
def test_ajp_content_length_reaches_client_only_when_trusted(
    tomcat_node1: Tomcat, apache_factory: ApacheFactory, config: str, framing: str
) -> None:
    """mod_proxy_ajp drops Tomcat's Content-Length unless ``ap_trust_cgilike_cl`` is set."""
    apache = apache_factory(proxy_config=config + ajp_proxy(tomcat_node1.ajp_url))
    request = b"GET /app/status?code=200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head = raw_exchange(apache, request).partition(b"\r\n\r\n")[0].decode().split("\r\n")
    assert framing in head
    assert not {"Content-Length", "Transfer-Encoding"} & {
        line.split(":")[0] for line in head if line != framing
    }


def test_ajp_error_status_line_carries_code_as_reason(
    tomcat_node1: Tomcat, apache_factory: ApacheFactory
) -> None:
    """``HTTP/1.1 418 418`` through AJP; ``HTTP/1.1 418 `` through HTTP."""
    ajp = apache_factory(proxy_config=ajp_proxy(tomcat_node1.ajp_url))
    via_http = apache_factory(proxy_config=http_proxy(tomcat_node1.http_url))
    request = b"GET /app/status?code=418 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert raw_exchange(ajp, request).startswith(b"HTTP/1.1 418 418\r\n")
    assert raw_exchange(via_http, request).startswith(b"HTTP/1.1 418 \r\n")


def test_tls_apache_over_ajp_marks_request_secure(
    tomcat_node1: Tomcat, apache_factory: ApacheFactory, tmp_path: Path
) -> None:
    """Behind TLS, Tomcat sees https, ``secure`` and the SSL attributes of the client's TLS."""
    key, cert = make_cert(tmp_path, "localhost", san_ip=["127.0.0.1"], san_dns=["localhost"])
    apache = apache_factory(
        proxy_config=ajp_proxy(tomcat_node1.ajp_url), tls=True, cert=(key, cert)
    )
    assert apache.url == f"https://127.0.0.1:{apache.port}"
    context = ssl.create_default_context(cafile=str(cert))  # trusts only this certificate
    conn = http.client.HTTPSConnection("127.0.0.1", apache.port, context=context, timeout=30)
    conn.connect()
    assert isinstance(conn.sock, ssl.SSLSocket)
    cipher = conn.sock.cipher()
    assert cipher is not None
    cipher_name, protocol, key_bits = cipher
    _, seen, client_port = echo(conn)
    assert (seen["scheme"], seen["secure"]) == ("https", True)
    assert seen["remotePort"] == client_port
    assert seen["requestUrl"] == f"https://127.0.0.1:{apache.port}/app/echo"
    attributes = seen["attributes"]
    assert set(SSL_ATTRIBUTES) <= set(attributes), attributes
    assert attributes["jakarta.servlet.request.cipher_suite"] == cipher_name
    assert attributes["jakarta.servlet.request.key_size"] == str(key_bits)
    assert attributes["org.apache.tomcat.util.net.secure_protocol_version"] == protocol
    assert int(attributes["jakarta.servlet.request.ssl_session_id"], 16) >= 0
    assert "jakarta.servlet.request.X509Certificate" not in attributes


def test_tls_without_cert_makes_a_self_signed_one(apache_factory: ApacheFactory) -> None:
    """``tls=True`` alone serves TLS with a certificate for ``localhost`` made at start."""
    apache = apache_factory(proxy_config="", tls=True)
    assert apache.cert is not None
    key, cert = apache.cert
    assert key.is_file() and cert.is_file()
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("localhost", apache.port, context=context, timeout=30)
    try:
        conn.request("GET", "/server-status?auto")
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert resp.status == 200


# --- mod_proxy_balancer -------------------------------------------------------------------


def test_ajp_balancer_alternates_between_nodes(
    tomcats: tuple[Tomcat, Tomcat], apache_factory: ApacheFactory
) -> None:
    """byrequests over two equal AJP members: node1, node2, node1... from a fresh start."""
    node1, node2 = tomcats
    apache = apache_factory(
        proxy_config=ajp_balancer([(node1.ajp_url, "node1"), (node2.ajp_url, "node2")])
    )
    served = []
    for _ in range(6):
        conn = apache.connection()
        try:
            conn.request("GET", "/app/")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        assert resp.status == 200, body
        served.append(resp.getheader("X-Node"))
    assert served == ["node1", "node2"] * 3
    lines = apache.access_log_lines(min_count=6, target_contains="/app/")
    assert [line.route for line in lines] == served
    assert [line.worker for line in lines[:2]] == [node1.ajp_url, node2.ajp_url]


# --- AJP secret ---------------------------------------------------------------------------


def test_ajp_secret_must_match_tomcat(
    tomcat_factory: Callable[..., list[Tomcat]], apache_factory: ApacheFactory
) -> None:
    """``secret=`` equal to Tomcat's is served; a wrong or missing secret gets 403."""
    [node] = tomcat_factory({"node3": "127.0.0.4"}, ajp_secret="s3cret")
    request = b"GET /app/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answers = {
        secret: raw_exchange(
            apache_factory(proxy_config=ajp_proxy(node.ajp_url, secret=secret)), request
        )
        for secret in ("s3cret", "wrong", None)
    }
    assert answers["s3cret"].startswith(b"HTTP/1.1 200 200\r\n")
    assert b"X-Node: node3\r\n" in answers["s3cret"]
    for secret in ("wrong", None):
        head = answers[secret].partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 403 403\r\n"), (secret, head)
        assert b"X-Node" not in head
