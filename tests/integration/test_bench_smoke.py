"""The protocol benchmark (``bench/protocols.py``) runs end to end and reports figures.

One-second runs at 4 connections: against Tomcat direct and ajpbalancer over HTTP, and
against Tomcat direct, nginx and HAProxy (the configs the benchmark writes for them); at
32 connections against the seed targets (a sticky balancer of two Tomcat nodes, in
ajpbalancer and in Apache, over AJP and HTTP). They prove the script starts and stops
its processes, drives wrk, parses its output and measures each proxy's CPU, not how fast
anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


SEED_TARGETS = (
    "ajpbalancer-seed-ajp",
    "ajpbalancer-seed-http",
    "apache-seed-ajp",
    "apache-seed-http",
)
"""The seed's setup as benchmark targets."""


def run_quick_benchmark(
    targets: str, out: Path, *, concurrency: int = 4, timeout: float = 120
) -> tuple[dict[str, Any], str]:
    """Run a one-second benchmark of `targets` (100 B, 4 connections); its report and stdout."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "protocols.py"),
            "--quick",
            "--duration",
            "1",
            "--concurrency",
            str(concurrency),
            "--sizes",
            "100",
            "--targets",
            targets,
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return report, result.stdout


def test_quick_benchmark_reports_requests_and_proxy_cpu(tmp_path: Path) -> None:
    """Both targets served requests without errors, and the proxy's CPU/request is known."""
    report, stdout = run_quick_benchmark("tomcat,ajpbalancer-http", tmp_path)
    assert report["targets"]["tomcat"]["available"]
    assert report["targets"]["ajpbalancer-http"]["available"], report["targets"]
    [cell] = report["cells"]
    assert (cell["concurrency"], cell["size"]) == (4, 100)
    tomcat, proxy = cell["results"]["tomcat"], cell["results"]["ajpbalancer-http"]
    assert tomcat["rps"] > 0
    assert proxy["rps"] > 0
    assert tomcat["errors"] == proxy["errors"] == 0
    assert proxy["proxy_cpu_us_per_request"] > 0
    assert proxy["proxy_rss_kib"] > 0
    assert "| ajpbalancer → HTTP |" in stdout


def test_quick_benchmark_of_nginx_and_haproxy(tmp_path: Path) -> None:
    """nginx and HAProxy start from the configs written, proxy without errors, and are
    measured as their whole process family: nginx's master and its one worker, HAProxy's
    one process. Missing packages fail this test (``scripts/test`` installs them)."""
    report, stdout = run_quick_benchmark("tomcat,nginx,haproxy", tmp_path)
    for name in ("tomcat", "nginx", "haproxy"):
        assert report["targets"][name]["available"], report["targets"][name]
    assert "worker_processes 1;" in report["targets"]["nginx"]["config"]
    assert "nbthread 1" in report["targets"]["haproxy"]["config"]
    [cell] = report["cells"]
    for name in ("tomcat", "nginx", "haproxy"):
        entry = cell["results"][name]
        assert entry["rps"] > 0, name
        assert entry["errors"] == 0, name
        assert not entry["short_bodies"], name
    for name in ("nginx", "haproxy"):
        entry = cell["results"][name]
        assert entry["proxy_cpu_us_per_request"] > 0, name
        assert entry["proxy_rss_kib"] > 0, name
    processes = {r["target"]: r["proxy_processes"] for r in report["runs"]}
    assert processes["nginx"] == 2
    assert processes["haproxy"] == 1
    assert "| nginx → HTTP (1 worker) |" in stdout
    assert "| HAProxy → HTTP (1 thread) |" in stdout


def test_quick_benchmark_of_the_seed_setup(tmp_path: Path) -> None:
    """The seed targets start on two Tomcat nodes, route sticky sessions to their node
    (checked before measuring), serve wrk's mix of sticky and unsticky requests without
    errors, and the report gives the seed setup's ratios (ajpbalancer ÷ Apache, AJP ÷ HTTP)."""
    report, stdout = run_quick_benchmark(
        ",".join(("tomcat", *SEED_TARGETS)), tmp_path, concurrency=32, timeout=300
    )
    nodes = report["settings"]["tomcat"]["nodes"]
    assert [(n["name"], n["address"], n["jvm_route"]) for n in nodes] == [
        ("node1", "127.0.0.2", "node1"),
        ("node2", "127.0.0.3", "node2"),
    ]
    assert "x.node1" in report["settings"]["sticky_script"]
    for name in SEED_TARGETS:
        target = report["targets"][name]
        assert target["available"], target
        assert "no session: 6 requests on node1, node2" in target["checks"], target["checks"]
        config = target["config"]
        for directive in ("ProxyPassMatch", "ProxyPassReverse", "ProxyPassReverseCookieDomain"):
            assert directive in config, (name, directive)
        assert "route=node1" in config and "route=node2" in config
        assert "stickysession=JSESSIONID|jsessionid" in config
    assert "[balancer://mycluster]" in report["targets"]["ajpbalancer-seed-ajp"]["config"]
    assert "<Proxy balancer://mycluster>" in report["targets"]["apache-seed-ajp"]["config"]
    [cell] = report["cells"]
    for name in SEED_TARGETS:
        entry = cell["results"][name]
        assert entry["rps"] > 0, name
        assert entry["errors"] == 0, name
        assert not entry["short_bodies"], name
        assert entry["proxy_cpu_us_per_request"] > 0, name
        assert entry["reference"] == "apache-seed-ajp"
    # Both nodes served: their CPU over the four seed runs (10 ms ticks: summed).
    seed_runs = [r for r in report["runs"] if r["target"] in SEED_TARGETS]
    for node in ("node1", "node2"):
        assert sum(r["tomcat_cpu_seconds_by_node"][node] for r in seed_runs) > 0, node
    labels = [bar["label"] for bar in report["bars"]["seed setup"]]
    assert "seed AJP: ajpbalancer ÷ Apache req/s, 100 B" in labels
    assert "seed AJP: proxy CPU/req ajpbalancer ÷ Apache, 100 B" in labels
    assert "seed: ajpbalancer AJP ÷ own HTTP req/s, 100 B" in labels
    assert "| ajpbalancer seed → AJP (2 nodes, sticky) |" in stdout
    assert "| Apache seed → AJP (2 nodes, sticky) |" in stdout
    assert "| seed setup, c=32 |" in stdout
