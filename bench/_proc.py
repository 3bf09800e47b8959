"""What a benchmark reads of a process from ``/proc``: memory figures and descriptors."""

from __future__ import annotations

import os
from pathlib import Path


def status_kib(pid: int, key: str, name: str = "status") -> int:
    """A ``/proc/PID/status`` (or ``smaps_rollup``, with ``name``) figure in KiB
    (``VmRSS``, ``VmHWM``, ``Pss``); 0 if unreadable."""
    try:
        text = Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    """File descriptors open in `pid` (entries of ``/proc/PID/fd``); 0 if unreadable."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0
