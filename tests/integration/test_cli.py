"""The command line as users type it: ``twistd -n ajpbalancer --config FILE [--check]``."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
from pathlib import Path

from .proxy import ProxyProcess, free_port, twistd

ROOT = Path(__file__).resolve().parents[2]

VALID = """
[frontend:www]
listen = tcp:{port}:interface=127.0.0.1
ProxyPass = /static !
            /app balancer://cluster/app

[balancer://cluster]
BalancerMember = http://127.0.0.2:8080 route=node1
                 http://127.0.0.3:8080 route=node2 loadfactor=2
"""

INVALID = """[frontend:www]
listen = tcp:{port}:interface=127.0.0.1
ProxyPass = /app balancer://clustr/app

[balancer://cluster]
BalancerMember = http://127.0.0.2:8080 rout=node1
ProxySet = lbmethod=byrequest
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [twistd(), "-n", "--pidfile=", "ajpbalancer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_prints_a_summary_and_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "lb.ini"
    config.write_text(VALID.replace("{port}", "18999"))
    result = run("--config", str(config), "--check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[frontend:www] listen tcp:18999:interface=127.0.0.1; 2 rules" in result.stdout
    assert result.stdout.strip().endswith("OK: 1 frontend, 2 rules, 1 balancer, 2 members")


def test_check_warns_about_nested_quantifiers_naming_file_line_and_pattern(
    tmp_path: Path,
) -> None:
    """A pattern that backtracks exponentially elsewhere is valid here (RE2 runs it in
    linear time) but worth a look: a warning line, exit status 0."""
    config = tmp_path / "lb.ini"
    text = (
        VALID.replace("{port}", "18999")
        + "\n[frontend:api]\nlisten = tcp:18998:interface=127.0.0.1\n"
        + "ProxyPassMatch = ^/api/(\\w+)*/x$ balancer://cluster/$1\n"
    )
    config.write_text(text)
    line = text.splitlines().index(r"ProxyPassMatch = ^/api/(\w+)*/x$ balancer://cluster/$1") + 1
    result = run("--config", "lb.ini", "--check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [warning] = [x for x in result.stderr.splitlines() if "warning" in x]
    assert warning.startswith(
        f"lb.ini:{line}: ProxyPassMatch: warning: nested quantifier "
        r"'(\w+)*' in '^/api/(\w+)*/x$'"
    ), warning
    assert result.stdout.strip().endswith("OK: 2 frontends, 3 rules, 1 balancer, 2 members")


def test_invalid_config_names_file_line_and_directive_and_nothing_listens(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "lb.ini"
    config.write_text(INVALID.replace("{port}", str(port)))
    for extra in ((), ("--check",)):
        result = run("--config", "lb.ini", *extra, cwd=tmp_path)
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert any(
            re.match(r"lb\.ini:3: ProxyPass: undefined balancer 'clustr'.*cluster", x)
            for x in lines
        ), lines
        assert any(
            x.startswith(
                "lb.ini:6: BalancerMember: unknown parameter 'rout' (did you mean 'route'?)"
            )
            for x in lines
        ), lines
        assert any(x.startswith("lb.ini:7: ProxySet: ") and "byrequest" in x for x in lines), lines
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free: nothing listened


def test_missing_config_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode != 0
    assert "--config is required" in result.stdout + result.stderr


def test_unreadable_config_file_is_reported(tmp_path: Path) -> None:
    result = run("--config", "nope.ini", cwd=tmp_path)
    assert result.returncode == 1
    assert "nope.ini" in result.stderr


def test_demo_config_balances_over_its_builtin_members(tmp_path: Path) -> None:
    """etc/demo.ini, as the README runs it, on free ports so it cannot clash."""
    text = (ROOT / "etc" / "demo.ini").read_text()
    ports = {p: str(free_port()) for p in ("8080", "18009", "18081", "18082")}
    for old, new in ports.items():
        text = text.replace(f":{old}", f":{new}")
    proxy = ProxyProcess(text, tmp_path, port=int(ports["8080"])).start()
    try:
        members = []
        for _ in range(6):
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read().decode()
            assert resp.status == 200
            member = resp.getheader("X-Demo-Member")
            members.append(member)
            assert f"Served by demo member {member}" in body
            if member == "demo1":  # over AJP13: the client address travels in AJP's fields
                assert "over AJP13" in body and "X-Forwarded-For" not in body
            else:
                assert "over HTTP/1.1" in body and "X-Forwarded-For" in body
            cookie = resp.getheader("Set-Cookie") or ""
            assert re.match(rf"JSESSIONID=[0-9A-F]+\.{member}; ", cookie), cookie
            conn.close()
        assert members.count("demo1") == 2 and members.count("demo2") == 4
        for member in ("demo1", "demo2", "demo1"):  # sticky: the route in the cookie wins
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            conn.request("GET", "/", headers={"Cookie": f"JSESSIONID=ABC.{member}"})
            resp = conn.getresponse()
            resp.read()
            assert resp.getheader("X-Demo-Member") == member
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/redirect", headers={"Cookie": "JSESSIONID=ABC.demo2"})
        resp = conn.getresponse()
        resp.read()
        # demo2 redirects to its internal URL; the client sees the public one.
        assert (resp.status, resp.getheader("Location")) == (302, f"http://127.0.0.1:{proxy.port}/")
        conn.close()
    finally:
        proxy.stop()


def test_sample_configs_pass_check(tmp_path: Path) -> None:
    for name in ("lb.ini", "demo.ini"):
        result = run("--config", str(ROOT / "etc" / name), "--check", cwd=tmp_path)
        assert result.returncode == 0, (name, result.stderr)


def test_the_installed_twistd_says_which_build_it_runs() -> None:
    """``twistd ajpbalancer --version``: the version and the build; the installed package
    is the native build wherever scripts/test built it (AJPB_EXPECT_BUILD=native)."""
    out = subprocess.run(
        [twistd(), "ajpbalancer", "--version"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("ajpbalancer ") and line.endswith(" build"), line
    if os.environ.get("AJPB_EXPECT_BUILD") == "native":
        assert "native (mypyc)" in line
