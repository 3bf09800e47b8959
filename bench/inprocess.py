"""The proxy's own cost per request, without sockets: HTTP member against AJP member, and
the seed's setup (a sticky balancer of two AJP members with reverse rewriting).

The real frontend, exchange, worker, pool and member connection run over memory
transports (the unit tests' in-memory harness, ``tests/unit/proxyharness.py``): a client
sends wrk's request on a kept-alive connection, the member answers what Tomcat 10
answers (the same head and body, over HTTP/1.1 or as AJP13 packets of 8 KiB), and the
client's bytes are checked at the end. No reactor, no syscalls: what is left is the
Python code of a proxied request, so the difference between the two paths is the
difference between the member protocols' code.

    python -m bench.inprocess                   # CPU µs per request, median of 5 rounds
    python -m bench.inprocess --instructions    # instructions per request (callgrind)
    python -m bench.inprocess --source ...      # the checkout's source, not the installed build

It measures the installed package (the native build when ``pip install .`` could build
one) and says which build it measured; ``--source`` measures the checkout as it is (pure
Python, unless modules were compiled in place).

``--instructions`` runs the loop under ``valgrind --tool=callgrind`` twice (N and 3N
requests) and prints the difference divided by 2N: start-up and imports cancel out, and
the count is the same whatever else the machine is doing (the figures in commit
messages of performance work are these). Needs Debian's ``valgrind``; ~1 minute.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = "--source" in sys.argv or os.environ.get("AJPB_BENCH_SOURCE") == "1"
"""Measure the checkout's source instead of the installed package."""


def _import_ajpbalancer() -> None:
    """Import the installed ajpbalancer (the native build, when one was built), unless
    ``--source`` asks for the checkout; the checkout stays where the harness is found."""
    here = {str(REPO_ROOT), "", str(REPO_ROOT / "bench"), os.getcwd()}
    if not SOURCE and "ajpbalancer" not in sys.modules:  # (the tests import it first)
        saved = sys.path[:]
        sys.path[:] = [p for p in sys.path if p not in here]
        try:
            import ajpbalancer.ajp  # noqa: F401, PLC0415
        except ImportError:
            pass  # not installed: the checkout's source is measured
        finally:
            sys.path[:] = saved
    if str(REPO_ROOT) not in sys.path:  # run as ``python bench/inprocess.py``
        sys.path.insert(0, str(REPO_ROOT))


_import_ajpbalancer()

import ajpbalancer  # noqa: E402
from ajpbalancer._build import build  # noqa: E402
from ajpbalancer.ajp import (  # noqa: E402
    ClientConnection,
    EndResponse,
    ForwardRequest,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)
from bench._report import size_label  # noqa: E402
from tests.unit.proxyharness import Harness  # noqa: E402

CONFIG = """\
[ajpbalancer]
access_log = off

[frontend]
listen = tcp:8080:interface=127.0.0.1
ProxyPass = /http http://127.0.0.2:8080/app
            /ajp ajp://127.0.0.2:8009/app
ProxyPassMatch = ^/seed/(.*)$ balancer://mycluster/app/$1
ProxyPassReverse = / balancer://mycluster/
ProxyPassReverseCookieDomain = 127.0.0.2 localhost
                               127.0.0.3 localhost

[balancer://mycluster]
BalancerMember = ajp://127.0.0.2:8009 route=node1
                 ajp://127.0.0.3:8009 route=node2
ProxySet = stickysession=JSESSIONID|jsessionid
"""
PATHS = ("http", "ajp", "seed")
"""An HTTP member, an AJP member (direct ``ProxyPass``), and the seed's setup: a balancer
of two AJP members with sticky sessions, reached through ``ProxyPassMatch``, with
``ProxyPassReverse`` and ``ProxyPassReverseCookieDomain`` (the requests carry a session
cookie for node1, as a browser with a session does)."""
SIZES = (100, 65536)
REQUEST = b"GET /%s/download?size=%d HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n%s\r\n"
"""What wrk sends: the request line and Host (and, for the seed's setup, the cookie)."""
SESSION = b"Cookie: JSESSIONID=0123456789ABCDEF.node1\r\n"
TOMCAT_HEADERS = ((b"X-Node", b"bench"), (b"Content-Type", b"application/octet-stream"))


def body(size: int) -> bytes:
    """The benchmark webapp's body: bytes 0, 1, 2, ... modulo 256."""
    return bytes(i % 256 for i in range(size))


def http_answer(size: int) -> bytes:
    """Tomcat's HTTP/1.1 answer (its status line has no reason phrase)."""
    return (
        b"HTTP/1.1 200 \r\nX-Node: bench\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\nDate: Wed, 25 Nov 2026 14:20:10 GMT\r\n\r\n" % size
    ) + body(size)


def ajp_answer(size: int) -> bytes:
    """Tomcat's AJP13 answer: SEND_HEADERS, 8 KiB SEND_BODY_CHUNKs, END_RESPONSE."""
    container = ServerConnection()
    container.receive_data(_forward_request_bytes())  # the state machine wants a request
    headers = (*TOMCAT_HEADERS, (b"Content-Length", b"%d" % size))
    return b"".join(
        (
            container.send(SendHeaders(status=200, reason=b"200", headers=headers)),
            container.send(SendBodyChunk(data=body(size))),
            container.send(EndResponse(reuse=True)),
        )
    )


def _forward_request_bytes() -> bytes:
    request = ForwardRequest(
        method=b"GET",
        uri=b"/app/download",
        remote_addr=b"127.0.0.1",
        server_name=b"127.0.0.1",
        server_port=8080,
        is_ssl=False,
        headers=((b"Host", b"127.0.0.1:8080"),),
    )
    return ClientConnection().send(request)


def run(path: str, size: int, count: int) -> float:
    """Proxy ``count`` requests (after one to open the member connection); CPU s used."""
    harness = Harness(CONFIG)
    client, client_transport = harness.client()
    request = REQUEST % (path.encode(), size, SESSION if path == "seed" else b"")
    answer = http_answer(size) if path == "http" else ajp_answer(size)
    client.dataReceived(request)
    member = harness.accept_member()
    member.sent()
    member.reply(answer)
    client_transport.clear()
    answers = received = 0
    started = time.process_time()
    for _ in range(count):
        client.dataReceived(request)
        member.transport.clear()
        member.protocol.dataReceived(answer)
        # What the client got, checked and dropped (a growing buffer would cost more
        # with every request): the same for both paths.
        out = client_transport.value()
        client_transport.clear()
        answers += out.startswith(b"HTTP/1.1 200 ")
        received += len(out)
    used = time.process_time() - started
    if answers != count or received < count * size:
        raise SystemExit(f"{path} {size}: the client did not get {count} whole answers")
    return used


def cpu_table(rounds: int, count: int) -> str:
    lines = [
        "| body | HTTP member µs/req | AJP member µs/req | seed setup (AJP) µs/req | AJP ÷ HTTP |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        cost = {}
        for path in PATHS:
            samples = [run(path, size, count) / count * 1e6 for _ in range(rounds)]
            cost[path] = statistics.median(samples)
        lines.append(
            f"| {size_label(size)} | {cost['http']:.1f} | {cost['ajp']:.1f} | {cost['seed']:.1f} "
            f"| {cost['ajp'] / cost['http']:.2f} |"
        )
    return "\n".join(lines)


def _callgrind(path: str, size: int, count: int) -> int:
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--one",
            f"{path}:{size}:{count}",
            *(["--source"] if SOURCE else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def instruction_table(count: int) -> str:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt install valgrind)")
    run("http", 100, 1)  # compile what changed, so that neither run below pays for it
    lines = [
        "| body | HTTP member instr/req | AJP member instr/req | seed setup (AJP) instr/req "
        "| AJP ÷ HTTP |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        per = {}
        for path in PATHS:
            low, high = _callgrind(path, size, count), _callgrind(path, size, 3 * count)
            per[path] = (high - low) / (2 * count)
        lines.append(
            f"| {size_label(size)} | {per['http']:,.0f} | {per['ajp']:,.0f} | {per['seed']:,.0f} "
            f"| {per['ajp'] / per['http']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--requests", type=int, default=None, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (median shown)")
    parser.add_argument(
        "--source", action="store_true", help="measure the checkout, not the installed package"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # PATH:SIZE:COUNT, for callgrind
    args = parser.parse_args(argv)
    if args.one:
        path, size, count = args.one.split(":")
        run(path, int(size), int(count))
        return
    where = Path(ajpbalancer.__file__).parent
    print(f"measuring the {build()} build of ajpbalancer in {where}")
    if args.instructions:
        print(instruction_table(args.requests or 300))
    else:
        print(cpu_table(args.rounds, args.requests or 5000))


if __name__ == "__main__":
    main()
