"""The WebSocket benchmark (``bench/websocket.py``) runs end to end with tiny counts and
reports sane figures for every target: it proves the script starts and stops Tomcat,
ajpbalancer and Apache, gets a 101 from each and counts every echo, not how fast
anything is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_websocket_benchmark_measures_every_target(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.websocket",
            *("--messages", "3000", "--window", "100", "--pings", "50", "--rounds", "1"),
            *("--out", str(tmp_path)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = tmp_path.glob("websocket-*.json")
    report = json.loads(path.read_text())
    rows = {row["target"]: row for row in report["summary"]}
    assert set(rows) == {"tomcat", "ajpbalancer-http", "ajpbalancer-ajp", "apache-http"}
    for name, row in rows.items():
        assert row["messages_per_second"] > 0 and row["rtt_median_ms"] > 0, row
        if name == "tomcat":
            assert row["added_latency_ms"] is None and row["proxy_cpu_us_per_message"] is None
        else:
            assert row["added_latency_ms"] is not None
            assert row["proxy_cpu_us_per_message"] is not None
    assert "upgrade=websocket upgradeurl=" in report["settings"]["configs"]["ajpbalancer-ajp"]
    assert "| ajpbalancer → HTTP member |" in result.stdout
