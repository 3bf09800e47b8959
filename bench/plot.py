"""Draw a protocol benchmark's JSON (``bench/protocols.py``) as a PNG.

    python bench/plot.py [RESULT.json | RESULTS_DIR] [-o OUT.png]

Without an argument it draws ``bench/results/latest.json``; given a directory, its
``latest.json`` (or else its newest ``protocols-*.json``). The PNG goes beside the JSON,
same name, unless ``-o`` says otherwise. One column per body size; the top row is
requests/s per target at each concurrency, the bottom row the proxy's CPU time per
request (Tomcat direct has no proxy: its bar is Tomcat's own CPU per request, hatched).
The seed targets (a sticky balancer of two Tomcat nodes) are dotted, in lighter or darker
shades of their proxy's colour.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: bench/ alone is on sys.path
    sys.path.insert(0, str(REPO_ROOT))

from bench._report import size_label  # noqa: E402  (needs REPO_ROOT on sys.path)

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"

COLORS = {
    "tomcat": "#7f7f7f",
    "ajpbalancer-http": "#1f77b4",
    "ajpbalancer-ajp": "#0b3d91",
    "apache-http": "#ff9f4a",
    "apache-ajp": "#d62728",
    "nginx": "#17becf",
    "haproxy": "#9467bd",
    "twisted-proxy": "#2ca02c",
    "ajpbalancer-seed-http": "#6baed6",
    "ajpbalancer-seed-ajp": "#08306b",
    "apache-seed-http": "#fdd0a2",
    "apache-seed-ajp": "#7f0000",
}
LEGEND_COLUMNS = 4
MIN_WIDTH = 12
"""Inches: room for the title and for four columns of legend, however few the sizes."""


def is_seed(name: str) -> bool:
    """Whether `name` is one of the seed targets (``ajpbalancer-seed-ajp``...)."""
    return "-seed-" in name


def find_result(path: Path) -> Path:
    """The JSON to draw for `path`: itself, or a directory's latest or newest result."""
    if path.is_file():
        return path
    latest = path / "latest.json"
    if latest.exists():
        return latest.resolve()
    candidates = sorted(path.glob("protocols-*.json"))
    if not candidates:
        raise SystemExit(f"no protocols-*.json in {path}")
    return candidates[-1]


def plot(report: dict[str, Any], out: Path) -> None:
    """Write the figure of `report` to `out`."""
    cells = report["cells"]
    labels = {name: t["label"] for name, t in report["targets"].items()}
    targets = [name for name in report["targets"] if any(name in c["results"] for c in cells)]
    sizes = sorted({c["size"] for c in cells})
    concurrencies = sorted({c["concurrency"] for c in cells})
    fig, axes = plt.subplots(
        2,
        len(sizes),
        figsize=(max(5.5 * len(sizes) + 1, MIN_WIDTH), 9),
        squeeze=False,
        sharex="col",
    )
    width = 0.8 / max(len(targets), 1)
    for column, size in enumerate(sizes):
        top, bottom = axes[0][column], axes[1][column]
        for index, name in enumerate(targets):
            xs, rps, cpu, hatched = [], [], [], []
            for position, conc in enumerate(concurrencies):
                cell = next(
                    (c for c in cells if c["size"] == size and c["concurrency"] == conc), None
                )
                entry = cell["results"].get(name) if cell else None
                if entry is None:
                    continue
                xs.append(position + (index - (len(targets) - 1) / 2) * width)
                rps.append(entry["rps"])
                proxy_cpu = entry.get("proxy_cpu_us_per_request")
                own = proxy_cpu is None
                cpu.append(entry.get("tomcat_cpu_us_per_request") if own else proxy_cpu)
                hatched.append(own)
            color = COLORS.get(name)
            dots = ".." if is_seed(name) else ""
            top.bar(
                xs,
                rps,
                width,
                label=labels.get(name, name),
                color=color,
                hatch=dots or None,
                edgecolor="white",
            )
            bottom.bar(
                xs,
                [c or 0 for c in cpu],
                width,
                color=color,
                hatch=["//" if h else dots for h in hatched] if hatched else None,
                edgecolor="white",
            )
        top.set_title(f"{size_label(size)} responses")
        top.set_ylabel("requests/s (higher is better)")
        bottom.set_ylabel("proxy CPU µs / request (lower is better)")
        bottom.set_xticks(range(len(concurrencies)), [f"c={c}" for c in concurrencies])
        bottom.set_xlabel("concurrent connections (wrk -t1)")
        for ax in (top, bottom):
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, names, loc="lower center", ncol=min(len(names), LEGEND_COLUMNS), fontsize="small"
    )
    legend_rows = math.ceil(len(names) / LEGEND_COLUMNS)
    bottom_margin = 0.035 + 0.025 * legend_rows
    unavailable = [
        f"{t['label']}: unavailable" for t in report["targets"].values() if not t["available"]
    ]
    machine = report["machine"]
    settings = report["settings"]
    seed = any(is_seed(name) for name in targets)
    fig.suptitle(
        "Tomcat behind ajpbalancer, Apache httpd, nginx, HAProxy and Twisted's proxy "
        + "(one run, targets alternating)\n"
        + ("Dotted: the seed's setup, a sticky balancer of two Tomcat nodes\n" if seed else "")
        + f"{machine['date']} · {machine['cpu_model']} · {machine['nproc']} cores · "
        f"{machine['python']} · Twisted {machine['twisted']} · {machine['apache']} · "
        f"{machine.get('ajpbalancer_build', 'ajpbalancer')} · "
        f"{settings['duration']} s per run"
        + (f"\n{'; '.join(unavailable)}" if unavailable else ""),
        fontsize="medium",
    )
    fig.text(
        0.01,
        bottom_margin - 0.015,
        "Hatched: Tomcat direct, Tomcat's own CPU per request. Shared machine: compare "
        "ratios within this run, not absolute figures.",
        fontsize="x-small",
    )
    fig.tight_layout(rect=(0, bottom_margin, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Draw the result named on the command line (default: the latest in bench/results)."""
    parser = argparse.ArgumentParser(prog="python bench/plot.py", description=__doc__)
    parser.add_argument("result", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("-o", "--output", type=Path, help="PNG to write")
    args = parser.parse_args(argv)
    source = find_result(args.result)
    report = json.loads(source.read_text())
    out = args.output or source.with_suffix(".png")
    plot(report, out)
    print(f"plot: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
