"""Listen backlog benchmark: N sequential connects, as fast as the client makes them.

With Twisted's default backlog of 50, 1000 sequential connects to
ajpbalancer took 15 s (SYNs dropped when the accept queue overflowed, each costing the
client a 1 s retransmission); Apache, with its ``ListenBacklog`` of 511, took 0.05 s.
This measures, one after the other, ajpbalancer listening with ``backlog=50`` (the old
default), with its default (511, Apache's) and with ``backlog=4096``, and Apache httpd
2.4 when it is installed (the integration tests' fixture): ``--connections`` connects made back to
back, each closed at once (no request), ``--rounds`` times, and reports for each round
the total time, the connects that stalled (took a second or more, or whose SYN was sent
again: ``tcpi_total_retrans``) and the slowest connect.

No target gets a request: the client only connects. The proxies are started by this
script on loopback, stopped by PID when it ends, fails or is interrupted. See
``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/backlog.py``
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration.apache import Apache, ApacheError, http_proxy  # noqa: E402
from tests.integration.proxy import ProxyError, ProxyProcess  # noqa: E402

STALL = 1.0
"""Seconds: a connect this slow waited for a SYN retransmission (Linux's initial RTO)."""


@dataclass
class Round:
    seconds: float
    stalls: int
    slowest: float


def _retransmitted(sock: socket.socket) -> bool:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return bool(struct.unpack_from("I", info, 100)[0])  # tcpi_total_retrans


def connects(port: int, count: int) -> Round:
    """``count`` connections to 127.0.0.1:``port`` one after another, each closed at once."""
    stalls = 0
    slowest = 0.0
    began = time.monotonic()
    for _ in range(count):
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            took = time.monotonic() - start
            stalls += took >= STALL or _retransmitted(sock)
            slowest = max(slowest, took)
    return Round(time.monotonic() - began, stalls, slowest)


def proxy_config(backlog: str) -> str:
    return f"""
[ajpbalancer]
access_log = off

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1{backlog}
ProxyPass = / http://127.0.0.1:9/
"""


def measure(name: str, port: int, args: argparse.Namespace) -> list[str]:
    time.sleep(args.settle)
    rows = []
    for number in range(1, args.rounds + 1):
        result = connects(port, args.connections)
        rows.append(
            f"| {name} | {number} | {result.seconds:.2f} | {result.stalls} | "
            f"{result.slowest * 1000:.0f} |"
        )
        time.sleep(args.settle)  # let the target take the last ones and close them
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__)
    parser.add_argument("--connections", type=int, default=1000, help="connects per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--no-apache", action="store_true", help="leave Apache httpd out")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [
        f"{args.connections} sequential connects per round, each closed at once; "
        f"stalled: {STALL:g} s or more, or SYN sent again",
        "",
        "| target | round | seconds | stalled | slowest (ms) |",
        "|---|---|---|---|---|",
    ]
    with (
        tempfile.TemporaryDirectory(prefix="ajpb-backlog-") as work,
        contextlib.ExitStack() as stack,
    ):
        for name, backlog in (
            ("ajpbalancer, backlog=50 (Twisted's default)", ":backlog=50"),
            ("ajpbalancer, default backlog (511)", ""),
            ("ajpbalancer, backlog=4096", ":backlog=4096"),
        ):
            directory = Path(work) / str(len(rows))
            directory.mkdir()
            proxy = ProxyProcess(proxy_config(backlog), directory)
            stack.callback(proxy.stop)
            try:
                proxy.start()
            except ProxyError as exc:
                rows.append(f"| {name} | - | did not start: {str(exc).splitlines()[0]} | | |")
                continue
            rows += measure(name, proxy.port, args)
            proxy.stop()
        if not args.no_apache:
            apache = Apache(proxy_config=http_proxy("http://127.0.0.1:9"))
            stack.callback(apache.close)
            try:
                apache.start()
            except ApacheError as exc:
                rows.append(f"| Apache httpd | - | unavailable: {str(exc).splitlines()[0]} | | |")
            else:
                rows += measure("Apache httpd (ListenBacklog 511)", apache.port, args)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
