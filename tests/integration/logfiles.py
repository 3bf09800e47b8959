"""Reading the access logs of the real servers the integration tests run (Tomcat, httpd).

Servers log a request after its response went out, which the client may see first: the
readers wait, within a bound, for the lines a test expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

POLL = 0.02


def parsed_lines(path: Path, parse: Callable[[str], T | None]) -> Iterator[T]:
    """Every line of the log at ``path`` that ``parse`` understands (none if no file yet)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        entry = parse(line)
        if entry is not None:
            yield entry


def wait_for_entries(
    read: Callable[[], Iterator[T]], keep: Callable[[T], bool], min_count: int, timeout: float
) -> list[T]:
    """The entries ``read`` gives that ``keep`` accepts, once at least ``min_count`` are there
    or ``timeout`` seconds have passed, whichever comes first."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [entry for entry in read() if keep(entry)]
        if len(entries) >= min_count or time.monotonic() > deadline:
            return entries
        time.sleep(POLL)
