"""The AJP boundary: the secret stays secret, and no client input becomes an attribute.

That Tomcat with ``secretRequired="true"`` serves through the proxy, and refuses a wrong
or missing secret, is proven in ``test_ajp_tomcat.py``. Here: after a run with the right
secret and one with a wrong one (Tomcat refusing it), neither secret appears in the
proxy's log, its access log, its error pages, ``--check`` output, or the admin pages
(balancer-manager, status.json, metrics). And a client sending headers and query
parameters named like AJP attributes gets none of them set as attributes in Tomcat.
"""

from __future__ import annotations

import http.client
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ajphelpers import build_request, exchange
from .proxy import ProxyProcess, free_port, twistd
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]
TomcatFactory = Callable[..., list[Tomcat]]


def secured_config(node: Tomcat, secret: str, admin_port: int) -> str:
    """A balancer of `node` (with `secret`) and a dead member, an access log and the admin."""
    return (
        "[ajpbalancer]\naccess_log = access.log\n"
        f"admin = tcp:{admin_port}:interface=127.0.0.1\n"
        "[frontend]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        "ProxyPass = /app balancer://s/app\n"
        "[balancer://s]\n"
        f"BalancerMember = {node.ajp_url} route={node.jvm_route} secret={secret}\n"
        f"                 ajp://127.0.0.1:{free_port()} route=dead secret={secret}\n"
    )


def http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return b"%d %s\r\n%s\r\n\r\n%s" % (
            resp.status,
            resp.reason.encode(),
            str(resp.msg).encode(),
            resp.read(),
        )
    finally:
        conn.close()


def everything_the_proxy_shows(proxy: ProxyProcess, admin_port: int) -> dict[str, bytes]:
    """Answers (errors included), admin pages, ``--check``, logs: after some traffic."""
    seen: dict[str, bytes] = {}
    for path in ("/app/echo", "/app/echo?x=1", "/app/status?code=500", "/nowhere", "/app/%zz"):
        for attempt in range(3):  # the balancer alternates: the dead member's failover too
            seen[f"GET {path} #{attempt}"] = http_get(proxy.port, path)
    seen["sticky to the dead member"] = http_get(proxy.port, "/app/echo;jsessionid=x.dead")
    for page in ("/balancer-manager", "/status.json", "/metrics"):
        seen[page] = http_get(admin_port, page)
    check = subprocess.run(
        [
            twistd(),
            "-n",
            "--pidfile=",
            "ajpbalancer",
            "--config",
            str(proxy.config_path),
            "--check",
        ],
        cwd=proxy.workdir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    seen["--check"] = check.stdout + check.stderr
    proxy.stop()
    seen["log"] = proxy.log_path.read_bytes()
    seen["access log"] = (proxy.workdir / "access.log").read_bytes()
    return seen


def test_the_secret_never_appears_in_logs_pages_or_check_output(
    tomcat_factory: TomcatFactory, proxy_factory: ProxyFactory
) -> None:
    """Right secret (Tomcat serves) and wrong secret (Tomcat answers 403): neither leaks."""
    right = f"R1ght{uuid.uuid4().hex[:12]}"
    wrong = f"Wr0ng{uuid.uuid4().hex[:12]}"
    [node] = tomcat_factory({"node8": "127.0.0.8"}, ajp_secret=right)
    for secret, expected in ((right, b"200 "), (wrong, b"403 ")):
        admin_port = free_port()
        proxy = proxy_factory(secured_config(node, secret, admin_port))
        seen = everything_the_proxy_shows(proxy, admin_port)
        assert seen["GET /app/echo #0"].startswith(expected) or seen["GET /app/echo #1"].startswith(
            expected
        )
        assert seen["--check"], "no --check output"
        assert b"balancer" in seen["/balancer-manager"]
        assert seen["access log"].count(b"/app/echo") >= 3
        for where, data in seen.items():
            for value in (right, wrong):
                assert value.encode() not in data, f"the secret appears in {where}"
                assert value.lower().encode() not in data.lower(), f"the secret in {where}"


FORGED_HEADERS = [
    ("AJP_REMOTE_PORT", "1"),
    ("AJP_LOCAL_ADDR", "6.6.6.6"),
    ("AJP_SSL_PROTOCOL", "TLSv1.3"),
    ("jakarta.servlet.request.X509Certificate", "forged"),
    ("jakarta.servlet.request.cipher_suite", "forged"),
    ("jakarta.servlet.request.key_size", "4096"),
    ("javax.servlet.request.X509Certificate", "forged"),
    ("javax.servlet.include.request_uri", "/forged"),
    ("jakarta.servlet.include.request_uri", "/forged"),
    ("org.apache.tomcat.util.net.secure_protocol_version", "forged"),
    ("req_attribute", "forged"),
    ("jvm_route", "forged"),
    ("secret", "forged"),
    ("stored_method", "DELETE"),
]
FORGED_VALUES = {"1", "6.6.6.6", "TLSv1.3", "forged", "4096", "/forged", "DELETE"}


def test_no_client_header_or_query_becomes_an_ajp_attribute(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """Headers and query parameters named like attributes reach Tomcat as headers and a
    query string only: no attribute Tomcat lists has a value the client chose."""
    node = tomcats[0]
    proxy = proxy_factory(
        "[ajpbalancer]\naccess_log = off\n[frontend]\n"
        "listen = tcp:{port}:interface=127.0.0.1\n"
        f"ProxyPass = /app {node.ajp_url}/app\n"
    )
    names = [name for name, _ in FORGED_HEADERS]
    query = "&".join(
        ["jvm_route=forged", "AJP_REMOTE_PORT=1", "secret=forged"]
        + [f"attr={name}" for name in names]
    )
    fields = [("Host", f"127.0.0.1:{proxy.port}"), *FORGED_HEADERS]
    reply = exchange("127.0.0.1", proxy.port, build_request("GET", f"/app/echo?{query}", fields))
    assert reply.status == 200, reply.body[:300]
    seen: dict[str, Any] = reply.json()
    attributes: dict[str, Any] = seen["attributes"]
    forged = {k: v for k, v in attributes.items() if str(v) in FORGED_VALUES}
    assert forged == {}, forged
    for name in names:
        if name.startswith(("jakarta.", "javax.", "org.")):
            assert attributes.get(name) is None, (name, attributes.get(name))
    assert seen["method"] == "GET"
    # The client's real port, not the forged one, is what Tomcat sees.
    assert str(seen.get("remotePort")) != "1"


def test_a_check_of_a_config_with_a_secret_does_not_print_it(tmp_path: Path) -> None:
    """``--check`` of a direct ``ajp://`` rule with ``secret=``: the summary omits it."""
    secret = f"Ch3ck{uuid.uuid4().hex[:12]}"
    config = tmp_path / "lb.ini"
    config.write_text(
        "[frontend]\nlisten = tcp:18999:interface=127.0.0.1\n"
        f"ProxyPass = /app ajp://127.0.0.2:8009/app secret={secret}\n"
    )
    result = subprocess.run(
        [twistd(), "-n", "--pidfile=", "ajpbalancer", "--config", str(config), "--check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
