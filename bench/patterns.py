r"""What ``ProxyPassMatch`` costs per request, by engine, and what routing costs per path.

    python -m bench.patterns            # prints four tables (about 20 s)
    python -m bench.patterns --quick    # fewer rounds and sizes (a smoke test)

1. The pathological pattern ``^/api/(\w+)*/x$`` against ``/api/`` + N
   letters + ``!``: Python's ``re`` (what ajpbalancer used), RE2 (what it uses now) and
   the ``regex`` package (its fallback for what RE2 refuses) under the per-request limit.
2. Other patterns that backtrack exponentially, RE2 against ``regex`` under the limit:
   the longest a single request can hold the reactor.
3. Ordinary patterns: nanoseconds per ``search`` of each engine, as the router calls it.
4. ``normalise`` + ``Router.match`` per request for paths plain and not: the hot path.

Times are wall-clock, the best of a few rounds (one round for Python's ``re`` on the
pathological pattern), on whatever else the machine is doing: compare rows of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

import regex

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/patterns.py``
    sys.path.insert(0, str(REPO_ROOT))

from ajpbalancer.config import parse  # noqa: E402
from ajpbalancer.patterns import MATCH_BUDGET, Engine, MatchTimeoutError, RulePattern  # noqa: E402
from ajpbalancer.routing import Router, normalise  # noqa: E402

PATHOLOGICAL = r"^/api/(\w+)*/x$"
RE_LIMIT = 24
"""Python's ``re`` is timed up to this many letters only (each one more doubles it)."""

EXPONENTIAL = (
    (r"^/(a|aa)+$", b"/" + b"a" * 60 + b"!"),
    (r"^/(a|a)*b", b"/" + b"a" * 60),
    (r"^/(\w+/?)*$", b"/" + b"abc/" * 30 + b"!"),
)

ORDINARY = (r"^/app/(.*)$", r"\.jsp$", r"^/api/(\w+)/(\d+)$", r"^(/.*)$", r"^/nomatch/(.*)$")
ORDINARY_PATH = b"/app/echo/some/longer/path/here.html"

CONFIG = """\
[frontend]
listen = tcp:8080
ProxyPass = /app/echo/secret !
            /app http://127.0.0.2:8080/app
"""
ROUTED_PATHS = (
    "/app/echo",
    "/app/file.html",
    "/app//echo",
    "/app/echo/x;jsessionid=ABC.node1",
    "/app/%65cho/caf%C3%A9",
    "/app/echo/secret;x/x",
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _once(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _regex_under_limit(pattern: str, subject: bytes) -> tuple[float, bool]:
    """Seconds ``regex`` spent on ``subject`` under MATCH_BUDGET, and whether it timed out."""
    compiled = regex.compile(pattern.encode(), regex.DOTALL | regex.VERSION0)
    start = time.perf_counter()
    try:
        compiled.search(subject, timeout=MATCH_BUDGET)
    except TimeoutError:
        return time.perf_counter() - start, True
    return time.perf_counter() - start, False


def pathological_table(letters: tuple[int, ...]) -> str:
    rows = [
        f"| letters | Python re ms | RE2 ms | regex ms (limit {MATCH_BUDGET * 1000:g} ms) |",
        "|---:|---:|---:|---:|",
    ]
    python_re = re.compile(PATHOLOGICAL, re.DOTALL)
    re2 = RulePattern(PATHOLOGICAL)
    assert re2.engine is Engine.RE2
    for n in letters:
        subject = b"/api/" + b"a" * n + b"!"
        text = subject.decode("latin-1")
        slow = _ms(_once(partial(python_re.search, text))) if n <= RE_LIMIT else "(days)"
        fast = _ms(min(_once(partial(re2.search, subject)) for _ in range(5)))
        spent, timed_out = _regex_under_limit(PATHOLOGICAL, subject)
        fallback = _ms(spent) + (" timeout" if timed_out else "")
        rows.append(f"| {n} | {slow} | {fast} | {fallback} |")
    return "\n".join(rows)


def exponential_table() -> str:
    rows = [
        "| pattern | subject bytes | RE2 ms | regex ms (under the limit) |",
        "|---|---:|---:|---:|",
    ]
    for pattern, subject in EXPONENTIAL:
        re2 = RulePattern(pattern)
        fast = _ms(min(_once(partial(re2.search, subject)) for _ in range(5)))
        spent, timed_out = _regex_under_limit(pattern, subject)
        fallback = _ms(spent) + (" timeout" if timed_out else "")
        rows.append(f"| `{pattern}` | {len(subject)} | {fast} | {fallback} |")
    timeout = RulePattern(r"^/(?!z)(a|aa)+$")
    worst = 0.0
    for _ in range(10):
        start = time.perf_counter()
        with contextlib.suppress(MatchTimeoutError):
            timeout.search(b"/" + b"a" * 60 + b"!", MATCH_BUDGET)
        worst = max(worst, time.perf_counter() - start)
    rows.append(f"| `^/(?!z)(a\\|aa)+$` (router's limit, worst of 10) | 62 | - | {_ms(worst)} |")
    return "\n".join(rows)


def _per_call_ns(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e9


def ordinary_table(number: int) -> str:
    rows = [
        "| pattern | Python re ns | RE2 ns (RulePattern) | regex ns (with timeout) |",
        "|---|---:|---:|---:|",
    ]
    text = ORDINARY_PATH.decode("latin-1")
    for pattern in ORDINARY:
        python_re = re.compile(pattern, re.DOTALL)
        re2 = RulePattern(pattern)
        fallback = regex.compile(pattern.encode(), regex.DOTALL | regex.VERSION0)
        cells = (
            _per_call_ns(partial(python_re.search, text), number, 3),
            _per_call_ns(partial(re2.search, ORDINARY_PATH), number, 3),
            _per_call_ns(partial(fallback.search, ORDINARY_PATH, timeout=MATCH_BUDGET), number, 3),
        )
        rows.append(f"| `{pattern}` | " + " | ".join(f"{c:,.0f}" for c in cells) + " |")
    return "\n".join(rows)


def routing_table(number: int) -> str:
    router = Router(parse(CONFIG, "bench.ini").frontends[0].rules)
    rows = [
        "| path | normalise ns | Router.match ns (normalise included) | result |",
        "|---|---:|---:|---|",
    ]
    for path in ROUTED_PATHS:
        match = router.match(path)
        result = "excluded (404)" if match is None else match.path
        cost = _per_call_ns(partial(normalise, path), number, 3)
        both = _per_call_ns(partial(router.match, path), number, 3)
        rows.append(f"| `{path}` | {cost:,.0f} | {both:,.0f} | `{result}` |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke test)")
    args = parser.parse_args(argv)
    number = 2_000 if args.quick else 100_000
    letters = (16, 20) if args.quick else (16, 20, 22, 24, 30, 1000, 8000)
    sections = (
        (
            "The pathological pattern `^/api/(\\w+)*/x$` on `/api/` + N letters + `!`",
            pathological_table(letters),
        ),
        ("Exponential patterns: RE2 against the backtracking fallback", exponential_table()),
        (f"Ordinary patterns on `{ORDINARY_PATH.decode()}`", ordinary_table(number)),
        ("Routing per request (`/app/echo/secret !`, `/app http://…/app`)", routing_table(number)),
    )
    for title, table in sections:
        print(f"### {title}\n\n{table}\n")


if __name__ == "__main__":
    main()
