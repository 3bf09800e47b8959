"""The pipelining benchmark (``bench/pipeline.py``) runs end to end at a small scale.

20 client connections to ajpbalancer, each a GET the benchmark's slow member holds and
1 MiB of pipelined GETs behind it (on loopback the kernel's socket buffers take it all),
one round, a few seconds. This proves that the script starts and stops its member and
proxy, gets one request per connection to the member, writes the pipelined bytes, reads
the proxy's memory and descriptors from ``/proc`` before, loaded and after close, and
that the proxy's memory per connection stays within what the frontend's read-ahead
bound allows, while each client offered it more than that. A functional bound, not a
timing one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ajpbalancer.h1 import READ_AHEAD

REPO_ROOT = Path(__file__).resolve().parents[2]

CONNECTIONS = 20
PIPELINED = 1 << 20
PER_CONNECTION_BOUND_KIB = 512
"""What one such connection may cost the proxy, generously: ``READ_AHEAD`` (32 KiB) held
plus one socket read (64 KiB) on top, the connection's and its exchange's objects (an
idle keep-alive connection costs ~4 KiB, ``bench/idle.py``) and the member connection's,
and the allocator's rounding. Before the read-ahead bound a connection cost ~850 KiB
with 1 MiB pipelined (the proxy read it all)."""


def _run_pipeline(out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pipeline",
            "--connections",
            str(CONNECTIONS),
            "--pipelined",
            str(PIPELINED),
            "--targets",
            "ajpbalancer",
            "--rounds",
            "1",
            "--settle-timeout",
            "10",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = out.glob("pipeline-*.json")
    report: dict[str, Any] = json.loads(path.read_text())
    return result, report


def test_pipelined_connections_cost_the_proxy_a_bounded_amount(tmp_path: Path) -> None:
    """Every slow request reached the member and nothing was answered early; each client
    offered the proxy more than `PER_CONNECTION_BOUND_KIB`; the proxy's RSS grew by
    less than that per connection; RSS after close is reported."""
    result, report = _run_pipeline(tmp_path)
    assert report["ok"] and not report["problems"], report["problems"]
    [target] = report["results"]
    assert target["target"] == "ajpbalancer" and target["available"]
    [record] = target["rounds"]
    assert record["connections_open"] == CONNECTIONS
    assert record["held_by_member"] == CONNECTIONS
    assert record["answered_early"] == 0
    assert len(record["written"]) == CONNECTIONS
    # Each client offered the proxy more than the bound: reading it all would break it.
    assert min(record["written"]) > PER_CONNECTION_BOUND_KIB * 1024 > 2 * READ_AHEAD
    assert target["before"]["rss_kib"] > 10 * 1024
    assert record["loaded"]["fds"] - target["before"]["fds"] >= CONNECTIONS
    figures = target["figures"]
    assert figures["growth_per_connection_kib"] < PER_CONNECTION_BOUND_KIB
    assert record["after_close"]["rss_kib"] > 0
    assert figures["left_after_close_kib"] is not None
    assert record["after_close"]["fds"] < record["loaded"]["fds"] - CONNECTIONS
    assert "| ajpbalancer | 1 |" in result.stdout
    assert "RSS after close MiB" in result.stdout
    assert "Bar: ajpbalancer's RSS grows by less than 60 MB" in result.stdout
