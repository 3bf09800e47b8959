"""What every benchmark shares: size labels, how a program is named in results, and
writing the JSON and Markdown reports under ``bench/results/``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def size_label(size: int) -> str:
    """``1 GiB``, ``64 KiB``, ``100 B``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def shown_program(program: str) -> str:
    """``program`` relative to the checkout: results name no machine paths."""
    for path in (Path(program).absolute(), Path(program).resolve()):  # .venv's python: a link
        if path.is_relative_to(ROOT):
            return str(path.relative_to(ROOT))
    return Path(program).name


def machine_line(report: dict[str, Any], *details: str) -> str:
    """The report's closing line: machine, software (``details``), wall time."""
    machine = report["machine"]
    parts = [
        machine["date"],
        machine["cpu_model"],
        f"{machine['nproc']} cores",
        machine["python"],
        f"Twisted {machine['twisted']}",
        machine.get("ajpbalancer_build", "ajpbalancer (build not recorded)"),
        *details,
    ]
    return f"\n{', '.join(parts)}; wall time {report['wall_seconds']:.0f} s."


def load_line(machine: dict[str, Any]) -> str:
    """The machine's load average at the start and at the end."""
    return f"load {machine['loadavg_start'][0]:.1f} → {machine['loadavg_end'][0]:.1f}"


def write_report(
    kind: str, report: dict[str, Any], table: str, out: Path, *, latest: bool = False
) -> Path:
    """Write ``KIND-STAMP.json`` and ``.md`` under ``out`` (and point ``latest.json`` at
    them if asked); print the table."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = out / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    path.with_suffix(".md").write_text(table)
    if latest:
        link = out / "latest.json"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(path.name)
    print(table)
    print(f"results: {path}", file=sys.stderr)
    return path


def finish(
    kind: str, report: dict[str, Any], table: str, out: Path, problems: Sequence[str]
) -> int:
    """Write the report (`write_report`) and say what failed: the benchmark's exit status,
    1 when any of `problems` was found."""
    write_report(kind, report, table, out)
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


def target_list(known: Collection[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type for ``--targets a,b``: the names given, each one of `known`, in
    `known`'s order."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(v.strip() for v in text.split(",") if v.strip())
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown target(s) {', '.join(unknown) or '(none)'}; known: {', '.join(known)}"
            )
        return tuple(n for n in known if n in names)

    return parse
