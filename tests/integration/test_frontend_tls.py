"""TLS policy of ``ssl:`` frontends against the real process: versions and client certificates.

TLS 1.0 and 1.1 clients are refused by the proxy's handshake, TLS 1.2 and 1.3 clients are
served; with ``SSLVerifyClient`` the client's certificate reaches Tomcat over AJP as
``jakarta.servlet.request.X509Certificate``, as mod_proxy_ajp sends it, and ``require``
refuses a client without one.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from .certs import make_cert
from .proxy import ProxyProcess
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    made = {}
    for cn in ("localhost", "client"):
        directory = tmp_path / cn
        directory.mkdir()
        made[cn] = make_cert(directory, cn, san_ip=["127.0.0.1"], san_dns=[cn])
    return made


def config(node: Tomcat, key: Path, cert: Path, extra: str = "") -> str:
    return f"""
[ajpbalancer]
access_log = off
[frontend]
listen = ssl:{{port}}:interface=127.0.0.1:privateKey={key}:certKey={cert}
ProxyPass = /app {node.ajp_url}/app
{extra}
"""


def client(
    cert: Path, version: ssl.TLSVersion, client_cert: tuple[Path, Path] | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(cert))
    context.check_hostname = False
    # Let this client offer old versions at all (OpenSSL's security level 0), one at a time.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    if client_cert is not None:
        key, crt = client_cert
        context.load_cert_chain(str(crt), str(key))
    return context


def echo(port: int, context: ssl.SSLContext) -> dict[str, object]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("GET", "/app/echo")
        resp = conn.getresponse()
        assert resp.status == 200
        answer: dict[str, object] = json.loads(resp.read())
        return answer
    finally:
        conn.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_before_1_2_is_refused(
    tomcat_node1: Tomcat,
    proxy_factory: ProxyFactory,
    certs: dict[str, tuple[Path, Path]],
    version: ssl.TLSVersion,
) -> None:
    key, cert = certs["localhost"]
    proxy = proxy_factory(config(tomcat_node1, key, cert))
    with pytest.raises(ssl.SSLError) as info:
        echo(proxy.port, client(cert, version))
    # The server's alert, not this client failing to offer the version.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(info.value)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_served(
    tomcat_node1: Tomcat,
    proxy_factory: ProxyFactory,
    certs: dict[str, tuple[Path, Path]],
    version: ssl.TLSVersion,
) -> None:
    key, cert = certs["localhost"]
    proxy = proxy_factory(config(tomcat_node1, key, cert))
    seen = echo(proxy.port, client(cert, version))
    assert seen["secure"] is True


def test_client_certificate_reaches_tomcat_over_ajp(
    tomcat_node1: Tomcat, proxy_factory: ProxyFactory, certs: dict[str, tuple[Path, Path]]
) -> None:
    key, cert = certs["localhost"]
    client_key, client_cert = certs["client"]
    extra = f"SSLVerifyClient = optional\nSSLCACertificateFile = {client_cert}\n"
    proxy = proxy_factory(config(tomcat_node1, key, cert, extra))
    context = client(cert, ssl.TLSVersion.TLSv1_3, (client_key, client_cert))
    seen = json.dumps(echo(proxy.port, context))
    assert '"jakarta.servlet.request.X509Certificate": "CN=client"' in seen
    anonymous = json.dumps(echo(proxy.port, client(cert, ssl.TLSVersion.TLSv1_3)))
    assert "CN=client" not in anonymous


def test_required_client_certificate_refuses_a_client_without_one(
    tomcat_node1: Tomcat, proxy_factory: ProxyFactory, certs: dict[str, tuple[Path, Path]]
) -> None:
    key, cert = certs["localhost"]
    client_cert = certs["client"][1]
    extra = f"SSLVerifyClient = require\nSSLCACertificateFile = {client_cert}\n"
    proxy = proxy_factory(config(tomcat_node1, key, cert, extra))
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        echo(proxy.port, client(cert, ssl.TLSVersion.TLSv1_2))
