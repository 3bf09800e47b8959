"""The protocol benchmark (``bench/protocols.py``) runs end to end and reports figures.

A one-second run against Tomcat direct and ajpbalancer over HTTP only: it proves the
script starts and stops its processes, drives wrk, parses its output and measures the
proxy's CPU, not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_reports_requests_and_proxy_cpu(tmp_path: Path) -> None:
    """Both targets served requests without errors, and the proxy's CPU/request is known."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "protocols.py"),
            "--quick",
            "--duration",
            "1",
            "--concurrency",
            "4",
            "--sizes",
            "100",
            "--targets",
            "tomcat,ajpbalancer-http",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
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
    assert "| ajpbalancer → HTTP |" in result.stdout
