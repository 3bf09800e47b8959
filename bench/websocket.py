"""WebSocket benchmark: messages per second and added latency through one tunnel.

One Tomcat 10 node (the integration tests' fixture, tuned as ``bench/protocols.py``
tunes it) serves the test webapp's echo endpoint, ``/app/ws/echo``. It is reached
directly (the baseline) and through three proxies, in one run, taking turns round by
round: ajpbalancer with an HTTP member (``upgrade=websocket``), ajpbalancer with an AJP
member whose WebSockets go to the node's HTTP connector (``upgradeurl``: after the
handshake the tunnel is the same), and Apache httpd 2.4 (mod_proxy_http,
``upgrade=websocket``). Each target gets one WebSocket per round, from a raw client
(pre-masked frames, echoes counted by their bytes, so the client costs the same
whatever it talks to):

- **latency**: ``--pings`` round trips of one ``--size``-byte text message, one at a
  time, the targets taking turns ping by ping: median and 99th percentile; *added
  latency* is a proxy's median minus Tomcat's of the same round;
- **throughput**: ``--messages`` messages sent ``--window`` at a time (a window in one
  write, all its echoes read before the next): messages per second, and the proxy's CPU
  (user + system of its processes, from ``/proc``) per message.

    python -m bench.websocket                      # defaults below
    python -m bench.websocket --messages 2000 --pings 100 --rounds 1   # a smoke test

Results: ``OUT/websocket-STAMP.json`` and ``.md`` (the table printed on stdout); the
figures are the medians over ``--rounds``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/websocket.py``
    sys.path.insert(0, str(REPO_ROOT))

from bench._report import load_line, machine_line, shown_program, write_report  # noqa: E402
from bench.protocols import (  # noqa: E402  (needs REPO_ROOT on sys.path)
    CLK_TCK,
    BenchApache,
    _terminate,
    family_ticks,
    machine_facts,
    start_tomcat,
)
from tests.integration.apache import ApacheError  # noqa: E402
from tests.integration.proxy import ProxyError, ProxyProcess  # noqa: E402

PATH = "/app/ws/echo"
TIMEOUT = 30.0
"""Seconds one socket operation may wait."""
TARGETS = {
    "tomcat": "Tomcat direct (HTTP)",
    "ajpbalancer-http": "ajpbalancer → HTTP member",
    "ajpbalancer-ajp": "ajpbalancer → AJP member, upgradeurl",
    "apache-http": "Apache httpd → HTTP member",
}
WARMUP_MESSAGES = 2000


# --- the client ---------------------------------------------------------------------------


class EchoClient:
    """One WebSocket over a plain socket: the handshake, masked text frames out, their
    echoes (one unmasked frame each, the endpoint answers a text message whole) in."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.sock.sendall(
            (
                f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: Upgrade\r\n"
                f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}"
                "\r\n\r\n"
            ).encode("ascii")
        )
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += data
        head, self.pending = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101 "):
            raise ConnectionError(f"no 101: {head.splitlines()[0]!r}")
        payload = b"x" * size
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if size < 126:
            header = bytes((0x81, 0x80 | size))
        else:
            header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
        self.frame = header + mask + masked
        self.echo_size = (2 if size < 126 else 4) + size
        self._buffer = bytearray(1 << 20)

    def exchange(self, count: int) -> None:
        """Send ``count`` messages in one write; read their echoes."""
        self.sock.sendall(self.frame * count)
        wanted = count * self.echo_size - len(self.pending)
        self.pending = b""
        buffer = self._buffer
        while wanted > 0:
            got = self.sock.recv_into(buffer)
            if not got:
                raise ConnectionError("closed during the echoes")
            wanted -= got
        if wanted < 0:
            raise ConnectionError("more bytes than the echoes")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(bytes((0x88, 0x82)) + b"\0\0\0\0" + (1000).to_bytes(2, "big"))
        self.sock.close()


# --- targets ------------------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    """Where one row's WebSockets go, and the proxy's process (None: Tomcat direct)."""

    name: str
    host: str
    port: int
    pid: int | None = None
    config: str | None = None

    @property
    def label(self) -> str:
        return TARGETS[self.name]


def start_ajpbalancer(name: str, rule: str, workdir: Path, stack: contextlib.ExitStack) -> Target:
    directory = workdir / name
    directory.mkdir()
    config = (
        "# Written by bench/websocket.py\n[ajpbalancer]\naccess_log = off\n\n"
        "[frontend:bench]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        f"ProxyPass = {rule}\n"
    )
    proxy = ProxyProcess(config, directory)
    stack.callback(proxy.stop)
    try:
        proxy.start()
    except ProxyError as exc:
        raise SystemExit(f"{name} did not start: {exc}") from None
    return Target(name, "127.0.0.1", proxy.port, proxy.pid, proxy.config_path.read_text())


def start_apache(http_url: str, stack: contextlib.ExitStack) -> Target:
    config = f"ProxyPass /app {http_url}/app upgrade=websocket\n"
    apache = BenchApache(proxy_config=config)
    stack.callback(apache.close)
    try:
        apache.start()
    except ApacheError as exc:
        raise SystemExit(f"Apache httpd did not start: {exc}") from None
    assert apache.pid is not None
    config = apache.config_path.read_text()
    return Target("apache-http", apache.listen, apache.port, apache.pid, config)


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    messages: int
    window: int
    pings: int
    size: int
    rounds: int
    out: Path


@dataclass(slots=True)
class Record:
    """One target's round: its latency and throughput figures."""

    target: str
    round: int
    rtt_median_ms: float
    rtt_p99_ms: float
    messages_per_second: float
    proxy_cpu_us_per_message: float | None
    added_latency_ms: float | None = None
    samples: dict[str, Any] = field(default_factory=dict)


def round_trips(clients: dict[str, EchoClient], pings: int) -> dict[str, list[float]]:
    """``pings`` round trips on each client, the targets taking turns ping by ping, so
    that whatever else the machine does falls on all of them alike (milliseconds)."""
    rtts: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(pings):
        for name, client in clients.items():
            started = time.perf_counter()
            client.exchange(1)
            rtts[name].append((time.perf_counter() - started) * 1000)
    return rtts


def throughput(
    target: Target, client: EchoClient, settings: Settings
) -> tuple[float, float | None]:
    """Messages per second, and the proxy's CPU µs per message (None for Tomcat)."""
    ticks = None if target.pid is None else family_ticks(target.pid)
    started = time.perf_counter()
    sent = 0
    while sent < settings.messages:
        count = min(settings.window, settings.messages - sent)
        client.exchange(count)
        sent += count
    wall = time.perf_counter() - started
    cpu = None
    if target.pid is not None and ticks is not None:
        cpu = (family_ticks(target.pid) - ticks) / CLK_TCK / sent * 1e6
    return sent / wall, cpu


def run(settings: Settings, targets: Sequence[Target]) -> list[Record]:
    for target in targets:  # warm up: the JVM's JIT, Apache's children, the first tunnel
        client = EchoClient(target.host, target.port, settings.size)
        client.exchange(WARMUP_MESSAGES)
        client.close()
    records: list[Record] = []
    for round_ in range(settings.rounds):
        print(f"round {round_ + 1} ...", file=sys.stderr, flush=True)
        shift = round_ % len(targets)
        order = [*targets[shift:], *targets[:shift]]
        clients = {t.name: EchoClient(t.host, t.port, settings.size) for t in order}
        try:
            for client in clients.values():
                client.exchange(100)  # each tunnel's first bytes
            rtts = round_trips(clients, settings.pings)
            rates = {t.name: throughput(t, clients[t.name], settings) for t in order}
        finally:
            for client in clients.values():
                client.close()
        base = statistics.median(rtts["tomcat"])
        for target in targets:
            times = sorted(rtts[target.name])
            median = statistics.median(times)
            rate, cpu = rates[target.name]
            records.append(
                Record(
                    target=target.name,
                    round=round_,
                    rtt_median_ms=median,
                    rtt_p99_ms=times[min(len(times) - 1, int(len(times) * 0.99))],
                    messages_per_second=rate,
                    proxy_cpu_us_per_message=cpu,
                    added_latency_ms=None if target.name == "tomcat" else median - base,
                    samples={"pings": len(times), "messages": settings.messages},
                )
            )
    return records


def summary(records: Sequence[Record], targets: Sequence[Target]) -> list[dict[str, Any]]:
    """Per target: the median of each figure over the rounds."""
    rows = []
    for target in targets:
        mine = [r for r in records if r.target == target.name]

        def median(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.median(present) if present else None

        rows.append(
            {
                "target": target.name,
                "label": target.label,
                "messages_per_second": median([r.messages_per_second for r in mine]),
                "rtt_median_ms": median([r.rtt_median_ms for r in mine]),
                "rtt_p99_ms": median([r.rtt_p99_ms for r in mine]),
                "added_latency_ms": median([r.added_latency_ms for r in mine]),
                "proxy_cpu_us_per_message": median([r.proxy_cpu_us_per_message for r in mine]),
            }
        )
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    rows = report["summary"]
    tomcat = next(r for r in rows if r["target"] == "tomcat")
    lines = [
        f"WebSocket echo through one tunnel: {s['size']} B text messages; "
        f"{s['messages']:,} sent {s['window']} at a time (msg/s), {s['pings']:,} one at a "
        f"time (round trip); median of {s['rounds']} round(s).",
        "",
        "| target | msg/s | vs Tomcat | round trip ms (median) | p99 ms | added latency ms "
        "| proxy CPU µs/msg |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["messages_per_second"] / tomcat["messages_per_second"]
        lines.append(
            f"| {r['label']} | {r['messages_per_second']:,.0f} | {ratio:.2f} "
            f"| {r['rtt_median_ms']:.3f} | {r['rtt_p99_ms']:.3f} "
            f"| {_fmt(r['added_latency_ms'], '.3f')} "
            f"| {_fmt(r['proxy_cpu_us_per_message'], '.1f')} |"
        )
    m = report["machine"]
    lines.append(machine_line(report, m["tomcat"], m["apache"], load_line(m)))
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="messages per round")
    parser.add_argument("--window", type=int, default=1000, help="messages in flight")
    parser.add_argument("--pings", type=int, default=2_000, help="round trips per round")
    parser.add_argument("--size", type=int, default=64, help="bytes per message (< 65536)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median shown)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if not 1 <= args.size < 65536 or min(args.messages, args.window, args.pings, args.rounds) < 1:
        parser.error("--size 1-65535; --messages, --window, --pings, --rounds at least 1")
    return Settings(args.messages, args.window, args.pings, args.size, args.rounds, args.out)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    started = time.monotonic()
    machine = machine_facts()
    for key in ("nginx", "haproxy", "wrk"):  # not used here
        machine.pop(key, None)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="ajpb-websocket-"))
        stack.callback(shutil.rmtree, workdir, True)
        print("starting Tomcat ...", file=sys.stderr, flush=True)
        tomcat = start_tomcat(stack)
        print("starting ajpbalancer (HTTP, AJP members) and Apache ...", file=sys.stderr)
        targets = [
            Target("tomcat", tomcat.address, tomcat.http_port),
            start_ajpbalancer(
                "ajpbalancer-http",
                f"/app {tomcat.http_url}/app upgrade=websocket",
                workdir,
                stack,
            ),
            start_ajpbalancer(
                "ajpbalancer-ajp",
                f"/app {tomcat.ajp_url}/app upgrade=websocket upgradeurl={tomcat.http_url}",
                workdir,
                stack,
            ),
            start_apache(tomcat.http_url, stack),
        ]
        records = run(settings, targets)
        print("stopping everything ...", file=sys.stderr, flush=True)
    machine["loadavg_end"] = os.getloadavg()
    report: dict[str, Any] = {
        "schema": 1,
        "benchmark": "websocket",
        "command": [shown_program(sys.argv[0]), *sys.argv[1:]],
        "machine": machine,
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "out"},
            "path": PATH,
            "warmup_messages": WARMUP_MESSAGES,
            "configs": {t.name: t.config for t in targets if t.config is not None},
        },
        "records": [asdict(r) for r in records],
        "summary": summary(records, targets),
        "ok": True,
        "wall_seconds": time.monotonic() - started,
    }
    write_report("websocket", report, markdown(report), settings.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
