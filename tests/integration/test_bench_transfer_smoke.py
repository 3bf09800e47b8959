"""The transfer and idle-connection benchmarks (``bench/transfer.py``, ``bench/idle.py``)
run end to end with tiny sizes and report sane figures.

They prove the scripts start and stop their processes, move and check the bytes, and
read the proxy's memory, descriptors and CPU from ``/proc``, not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str, out: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``python -m MODULE ARGS --out OUT``; its result and the one JSON it wrote."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = out.glob("*.json")
    return result, json.loads(path.read_text())


def test_transfer_moves_every_byte_with_bounded_proxy_memory(tmp_path: Path) -> None:
    """8 MiB each way through Tomcat direct, ajpbalancer HTTP and AJP: checksums equal."""
    result, report = _run("bench.transfer", "--size", "8M", out=tmp_path)
    assert report["ok"] and not report["problems"]
    records = report["records"]
    assert {(r["direction"], r["target"]) for r in records} == {
        (d, t)
        for d in ("download", "upload")
        for t in ("tomcat", "ajpbalancer-http", "ajpbalancer-ajp")
    }
    for r in records:
        assert r["ok"], r
        assert r["bytes"] == 8 << 20
        assert r["sha256_got"] == r["sha256_expected"]
        assert r["wall_seconds"] > 0 and r["mb_per_s"] > 0
        if r["target"] == "tomcat":
            assert r["proxy_peak_rss_kib"] is None
        else:
            assert 10 * 1024 < r["proxy_peak_rss_kib"] < 100 * 1024
            assert r["proxy_cpu_seconds"] is not None and r["proxy_cpu_seconds"] >= 0
            assert r["rss_samples"] >= 1
    assert "| download | ajpbalancer → AJP |" in result.stdout


def test_idle_holds_every_connection(tmp_path: Path) -> None:
    """200 keep-alive connections opened, answered, held 1 s, closed: figures present."""
    result, report = _run("bench.idle", "--connections", "200", "--hold", "1", out=tmp_path)
    assert report["ok"] and not report["problems"]
    r = report["result"]
    assert r["connections_open"] == r["connections_asked"] == 200
    assert r["closed_during_hold"] == 0
    assert r["after_open"]["fds"] - r["before"]["fds"] >= 200
    assert r["after_close"]["fds"] < r["after_open"]["fds"] - 150
    assert r["rss_per_connection_kib"] is not None and r["rss_per_connection_kib"] < 256
    assert r["before"]["rss_kib"] > 10 * 1024
    assert r["open_seconds"] > 0
    assert "| RSS per connection |" in result.stdout
