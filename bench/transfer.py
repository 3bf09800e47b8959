"""Large-transfer benchmark: 1 GiB down and up through ajpbalancer, with its memory bounded.

The target: a 1 GB upload and a 1 GB download through the proxy with the proxy's RSS
under 100 MB, at a throughput the README states. This starts one Tomcat 10 node on
127.0.0.2 (the integration tests' fixture, as ``bench/protocols.py`` tunes it) and two
``twistd -n ajpbalancer`` processes in front of it, one with ``ProxyPass / http://...``
and one with ``ProxyPass / ajp://...``. For each of {download, upload} x {Tomcat direct,
ajpbalancer HTTP, ajpbalancer AJP} it moves ``--size`` bytes with a streaming client
(64 KiB reads or writes, hashed as they go):

- download: ``GET /app/download?size=N`` (byte i is ``i % 251``), the SHA-256 of what
  arrived compared with the one computed here;
- upload: ``POST /app/upload`` with ``Content-Length: N`` and the same bytes, the
  SHA-256 and length Tomcat reports compared with the ones sent.

While a transfer runs, a thread samples the proxy's ``VmRSS`` every 0.1 s; the peak
(``VmHWM``, reset before each transfer through ``/proc/PID/clear_refs`` where the kernel
allows it) and the proxy's CPU seconds (``utime + stime`` from ``/proc/PID/stat``) are
recorded with the MB/s and the wall time. The exit status is 1 if a checksum differs, a
transfer failed, or a proxy's peak RSS reached ``--max-rss`` (100 MiB).

Results: ``OUT/transfer-STAMP.json`` and ``OUT/transfer-STAMP.md`` (the table printed
on stdout). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/transfer.py``
    sys.path.insert(0, str(REPO_ROOT))

from bench._ajpbalancer import start_proxy as start_ajpbalancer  # noqa: E402
from bench._report import finish, load_line, machine_line, shown_program, size_label  # noqa: E402  (needs REPO_ROOT on sys.path)
from bench.protocols import (  # noqa: E402  (needs REPO_ROOT on sys.path)
    CLK_TCK,
    _terminate,
    family_ticks,
    machine_facts,
    start_tomcat,
)
from tests.integration.proxy import ProxyError, ProxyProcess  # noqa: E402
from tests.integration.tomcat import Tomcat  # noqa: E402

CHUNK = 64 * 1024
"""Bytes per read or write of the client."""
MOD = 251
"""Byte i of a download (and of an upload here) is ``i % MOD``, as Tomcat's test webapp."""
_PATTERN = bytes(i % MOD for i in range(CHUNK + MOD))
"""`CHUNK` bytes of the pattern start at any offset below `MOD` in here."""

DEFAULT_SIZE = 1 << 30
MAX_RSS_MIB = 100
"""The bound on the proxy's resident memory during a 1 GB transfer."""
SAMPLE_INTERVAL = 0.1
ABORT_RSS_MIB = 2048
"""A proxy past this much RSS is not going to meet the bound: the transfer is stopped."""
DEFAULT_TIMEOUT = 900.0
"""Seconds one transfer may take in all before it is abandoned."""
IO_TIMEOUT = 60.0
"""Seconds one socket operation may wait."""
WARMUP_SIZE = 16 << 20
"""Bytes moved each way once per target before measuring (JIT, pools, buffers)."""
LISTEN_BACKLOG = 511

TARGETS: dict[str, str] = {
    "tomcat": "Tomcat direct (HTTP)",
    "ajpbalancer-http": "ajpbalancer → HTTP",
    "ajpbalancer-ajp": "ajpbalancer → AJP",
}
DIRECTIONS = ("download", "upload")


# --- sizes, pattern, /proc ----------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``1073741824``, ``256M``, ``1G``, ``8MiB``: bytes (K, M, G are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1G, 256M, 8M, 65536)")
    value = int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2).upper()]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def pattern_chunks(size: int) -> Iterator[memoryview]:
    """The `size` bytes of the pattern, as memoryviews of at most `CHUNK` bytes."""
    view = memoryview(_PATTERN)
    pos = 0
    while pos < size:
        n = min(CHUNK, size - pos)
        offset = pos % MOD
        yield view[offset : offset + n]
        pos += n


def pattern_sha256(size: int) -> str:
    """SHA-256 of the first `size` bytes of the pattern."""
    digest = hashlib.sha256()
    for chunk in pattern_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def status_kib(pid: int, key: str) -> int | None:
    """A ``/proc/PID/status`` figure in KiB (``VmRSS``, ``VmHWM``), None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset `pid`'s VmHWM to its current RSS (``clear_refs`` 5, Linux ≥ 4.0); ok?"""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """A thread reading a process's VmRSS every `SAMPLE_INTERVAL` s, keeping the peak."""

    def __init__(self, pid: int, abort_kib: int) -> None:
        self.pid = pid
        self.abort_kib = abort_kib
        self.samples = 0
        self.peak_kib = 0
        self.exceeded = threading.Event()
        """Set when the RSS passes `abort_kib`: the client stops the transfer."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL)

    def sample(self) -> None:
        rss = status_kib(self.pid, "VmRSS")
        if rss is None:
            return
        self.samples += 1
        self.peak_kib = max(self.peak_kib, rss)
        if rss >= self.abort_kib:
            self.exceeded.set()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


# --- the client ---------------------------------------------------------------------------


class TransferError(Exception):
    """A transfer did not complete: the status, a short body, a timeout, RSS too high."""


@dataclass(slots=True)
class Deadline:
    """When a transfer is given up, and what else stops it (the sampler's flag)."""

    at: float
    abort: threading.Event | None = None

    def check(self, what: str) -> None:
        if time.monotonic() > self.at:
            raise TransferError(f"{what}: out of time")
        if self.abort is not None and self.abort.is_set():
            raise TransferError(f"{what}: stopped, the proxy's RSS passed {ABORT_RSS_MIB} MiB")


def download(host: str, port: int, prefix: str, size: int, deadline: Deadline) -> dict[str, Any]:
    """GET `size` bytes, read in `CHUNK` pieces and hashed; their count and SHA-256."""
    conn = http.client.HTTPConnection(host, port, timeout=IO_TIMEOUT)
    try:
        conn.request("GET", f"{prefix}/app/download?size={size}")
        response = conn.getresponse()
        if response.status != 200:
            raise TransferError(f"GET answered {response.status}: {response.read(500)!r}")
        digest = hashlib.sha256()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        received = 0
        while True:
            deadline.check(f"download at {received} bytes")
            n = response.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
            received += n
        return {"bytes": received, "sha256": digest.hexdigest()}
    finally:
        conn.close()


def upload(host: str, port: int, prefix: str, size: int, deadline: Deadline) -> dict[str, Any]:
    """POST `size` bytes in `CHUNK` pieces; the length and SHA-256 Tomcat read."""
    conn = http.client.HTTPConnection(host, port, timeout=IO_TIMEOUT)
    try:
        conn.putrequest("POST", f"{prefix}/app/upload", skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        sent = 0
        for chunk in pattern_chunks(size):
            deadline.check(f"upload at {sent} bytes")
            conn.send(chunk)
            sent += len(chunk)
        response = conn.getresponse()
        body = response.read(1 << 16)
        if response.status != 200:
            raise TransferError(f"POST answered {response.status}: {body[:500]!r}")
        answer = json.loads(body)
        return {"bytes": int(answer["bodyLength"]), "sha256": str(answer["bodySha256"])}
    finally:
        conn.close()


# --- the processes ------------------------------------------------------------------------


def ajpbalancer_config(member: str) -> str:
    """Everything to `member`, no access log (`OPTIONAL_LINES` follow, where accepted)."""
    return (
        "# Written by bench/transfer.py\n"
        "[ajpbalancer]\n"
        "access_log = off\n"
        "\n"
        "[frontend:bench]\n"
        f"listen = tcp:{{port}}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}\n"
        f"ProxyPass = / {member}/\n"
    )


OPTIONAL_LINES = {"LimitRequestBody": "LimitRequestBody = 0"}
"""Request bodies unlimited (1 GiB is the default limit where the directive exists)."""


@dataclass(slots=True)
class Target:
    """Where one row's transfers go, and the proxy process measured (None: Tomcat direct)."""

    name: str
    host: str
    port: int
    proxy: ProxyProcess | None = None
    config: str | None = None
    dropped: list[str] = field(default_factory=list)
    """Optional directives the installed ajpbalancer does not know (left out)."""

    @property
    def label(self) -> str:
        return TARGETS[self.name]


def start_proxy(name: str, member: str, workdir: Path, stack: contextlib.ExitStack) -> Target:
    """``twistd -n ajpbalancer`` in front of `member`; SystemExit with its log if it fails."""
    try:
        proxy, dropped = start_ajpbalancer(
            ajpbalancer_config(member), OPTIONAL_LINES, workdir / name
        )
    except ProxyError as exc:
        raise SystemExit(f"{name} did not start: {exc}") from None
    stack.callback(proxy.stop)
    target = Target(name, "127.0.0.1", proxy.port, proxy, proxy.config_path.read_text())
    target.dropped = dropped
    return target


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run measures."""

    size: int
    max_rss_mib: int
    timeout: float
    warmup: bool
    directions: tuple[str, ...]
    out: Path


@dataclass(slots=True)
class Record:
    """One measured transfer."""

    target: str
    direction: str
    size: int
    ok: bool = False
    error: str | None = None
    bytes: int = 0
    sha256_expected: str = ""
    sha256_got: str = ""
    wall_seconds: float = 0.0
    mb_per_s: float = 0.0
    mib_per_s: float = 0.0
    proxy_peak_rss_kib: int | None = None
    """VmHWM after the transfer (reset before it when `hwm_reset`), else the sampled peak."""
    proxy_sampled_peak_rss_kib: int | None = None
    proxy_rss_before_kib: int | None = None
    proxy_rss_after_kib: int | None = None
    hwm_reset: bool = False
    rss_samples: int = 0
    proxy_cpu_seconds: float | None = None
    tomcat_cpu_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def transfer(
    target: Target, direction: str, settings: Settings, tomcat: Tomcat, expected: str
) -> Record:
    """One measured transfer through `target`, with the proxy's memory and CPU."""
    record = Record(target.name, direction, settings.size, sha256_expected=expected)
    proxy_pid = target.proxy.pid if target.proxy is not None else None
    assert tomcat.pid is not None
    tomcat_before = family_ticks(tomcat.pid)
    proxy_before = 0
    if proxy_pid is not None:
        record.hwm_reset = reset_peak_rss(proxy_pid)
        record.proxy_rss_before_kib = status_kib(proxy_pid, "VmRSS")
        proxy_before = family_ticks(proxy_pid)
    sampler = RssSampler(proxy_pid or os.getpid(), ABORT_RSS_MIB * 1024)
    deadline = Deadline(time.monotonic() + settings.timeout, sampler.exceeded)
    move: Callable[[str, int, str, int, Deadline], dict[str, Any]] = (
        download if direction == "download" else upload
    )
    started = time.monotonic()
    try:
        with sampler:
            result = move(target.host, target.port, "", settings.size, deadline)
    except (OSError, http.client.HTTPException, TransferError, ValueError, KeyError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        result = {"bytes": 0, "sha256": ""}
    record.wall_seconds = time.monotonic() - started
    record.bytes = result["bytes"]
    record.sha256_got = result["sha256"]
    record.tomcat_cpu_seconds = (family_ticks(tomcat.pid) - tomcat_before) / CLK_TCK
    if proxy_pid is not None:
        record.proxy_cpu_seconds = (family_ticks(proxy_pid) - proxy_before) / CLK_TCK
        record.proxy_rss_after_kib = status_kib(proxy_pid, "VmRSS")
        record.proxy_sampled_peak_rss_kib = sampler.peak_kib
        record.rss_samples = sampler.samples
        hwm = status_kib(proxy_pid, "VmHWM")
        record.proxy_peak_rss_kib = max(hwm or 0, sampler.peak_kib)
        if not record.hwm_reset:  # VmHWM is the peak since start: only the samples are ours
            record.proxy_peak_rss_kib = sampler.peak_kib
    if record.error is None:
        if record.bytes != settings.size:
            record.error = f"{record.bytes} bytes moved, not {settings.size}"
        elif record.sha256_got != expected:
            record.error = f"SHA-256 differs: {record.sha256_got} != {expected}"
    record.ok = record.error is None
    if record.wall_seconds > 0:
        record.mb_per_s = settings.size / record.wall_seconds / 1e6
        record.mib_per_s = settings.size / record.wall_seconds / (1 << 20)
    return record


def warm_up(targets: Sequence[Target], settings: Settings) -> None:
    """Each target once each way with `WARMUP_SIZE` bytes (checked, not recorded)."""
    size = min(WARMUP_SIZE, settings.size)
    expected = pattern_sha256(size)
    for target in targets:
        for direction in settings.directions:
            move = download if direction == "download" else upload
            deadline = Deadline(time.monotonic() + 120)
            try:
                result = move(target.host, target.port, "", size, deadline)
            except (OSError, http.client.HTTPException, TransferError, ValueError) as exc:
                raise SystemExit(f"warm-up {direction} via {target.name} failed: {exc}") from None
            if result["sha256"] != expected:
                raise SystemExit(f"warm-up {direction} via {target.name}: SHA-256 differs")


def run(settings: Settings, targets: Sequence[Target], tomcat: Tomcat) -> list[Record]:
    """Every direction through every target, Tomcat direct first."""
    print("hashing the expected bytes ...", file=sys.stderr, flush=True)
    expected = pattern_sha256(settings.size)
    records = []
    for direction in settings.directions:
        for target in targets:
            print(
                f"  {direction} {size_label(settings.size)} via {target.name} ...",
                file=sys.stderr,
                flush=True,
            )
            record = transfer(target, direction, settings, tomcat, expected)
            records.append(record)
            print(
                f"    {record.wall_seconds:.1f} s, {record.mb_per_s:.0f} MB/s"
                + (
                    f", peak RSS {record.proxy_peak_rss_kib / 1024:.1f} MiB"
                    if record.proxy_peak_rss_kib
                    else ""
                )
                + ("" if record.ok else f"  FAILED: {record.error}"),
                file=sys.stderr,
                flush=True,
            )
            if not tomcat.running:
                raise SystemExit(f"Tomcat died during the run:\n{tomcat.log_tail()}")
            proxy = target.proxy
            if proxy is not None and proxy.process is not None and proxy.process.poll() is not None:
                raise SystemExit(f"{target.name} exited during the run:\n{proxy.log()[-2000:]}")
    return records


# --- report -------------------------------------------------------------------------------


def verdicts(records: Sequence[Record], max_rss_mib: int) -> list[str]:
    """What makes the run fail: failed transfers, differing checksums, RSS at the bound."""
    problems = []
    for r in records:
        if not r.ok:
            problems.append(f"{r.direction} via {r.target}: {r.error}")
        if r.proxy_peak_rss_kib is not None and r.proxy_peak_rss_kib >= max_rss_mib * 1024:
            problems.append(
                f"{r.direction} via {r.target}: proxy peak RSS "
                f"{r.proxy_peak_rss_kib / 1024:.1f} MiB ≥ {max_rss_mib} MiB"
            )
    return problems


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else f"{value:{spec}}"


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown table, the verdict, and the machine in one line."""
    size = report["settings"]["size"]
    lines = [
        f"Transfers of {size_label(size)} ({size:,} bytes), 64 KiB client reads/writes, "
        "SHA-256 checked.",
        "",
        "| direction | target | MB/s | vs Tomcat | wall s | proxy peak RSS MiB "
        "| proxy CPU s | proxy CPU s/GiB | Tomcat CPU s | sha256 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    records = report["records"]
    for direction in DIRECTIONS:
        base = next(
            (r for r in records if r["direction"] == direction and r["target"] == "tomcat"), None
        )
        for r in records:
            if r["direction"] != direction:
                continue
            ratio = r["mb_per_s"] / base["mb_per_s"] if base and base["mb_per_s"] else None
            peak = r["proxy_peak_rss_kib"]
            cpu = r["proxy_cpu_seconds"]
            per_gib = cpu / (size / (1 << 30)) if cpu is not None else None
            check = "ok" if r["ok"] else f"**FAILED**: {r['error']}"
            lines.append(
                f"| {direction} | {TARGETS[r['target']]} | {r['mb_per_s']:,.0f} "
                f"| {_fmt(ratio, '.2f')} | {r['wall_seconds']:.2f} "
                f"| {_fmt(peak / 1024 if peak is not None else None, '.1f')} "
                f"| {_fmt(cpu, '.1f')} | {_fmt(per_gib, '.1f')} "
                f"| {r['tomcat_cpu_seconds']:.1f} | {check} |"
            )
    lines.append("")
    problems = report["problems"]
    bound = report["settings"]["max_rss_mib"]
    if problems:
        lines.append(f"**FAILED** (bound: proxy peak RSS < {bound} MiB, checksums equal):")
        lines += [f"- {p}" for p in problems]
    else:
        lines.append(f"All checksums equal; every proxy's peak RSS < {bound} MiB.")
    machine = report["machine"]
    lines.append(machine_line(report, machine["tomcat"], load_line(machine)))
    return "\n".join(lines) + "\n"


# --- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Settings:
    """The command line as `Settings`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.transfer",
        description="1 GiB download and upload through ajpbalancer (HTTP and AJP members) "
        "and straight to Tomcat: MB/s, proxy peak RSS and CPU. See bench/README.md.",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=DEFAULT_SIZE,
        help="bytes per transfer: 1G (default), 256M, 8M, 65536",
    )
    parser.add_argument(
        "--directions",
        default="download,upload",
        help="download, upload or both (default download,upload)",
    )
    parser.add_argument(
        "--max-rss",
        type=int,
        default=MAX_RSS_MIB,
        help=f"fail if a proxy's peak RSS reaches this many MiB (default {MAX_RSS_MIB})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one transfer may take (default {DEFAULT_TIMEOUT:.0f})",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the 16 MiB warm-up")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    directions = tuple(d.strip() for d in args.directions.split(",") if d.strip())
    if not directions or any(d not in DIRECTIONS for d in directions):
        parser.error("--directions: download, upload or both")
    if not 1 <= args.timeout <= 3600:
        parser.error("--timeout must be 1..3600 seconds")
    return Settings(
        size=args.size,
        max_rss_mib=args.max_rss,
        timeout=args.timeout,
        warmup=not args.no_warmup,
        directions=tuple(d for d in DIRECTIONS if d in directions),
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write JSON and Markdown, print the table; 1 if a bound failed."""
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    started = time.monotonic()
    machine = machine_facts()
    for key in ("apache", "wrk"):  # not used here
        machine.pop(key, None)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="ajpb-transfer-"))
        stack.callback(shutil.rmtree, workdir, True)
        print("starting Tomcat ...", file=sys.stderr, flush=True)
        tomcat = start_tomcat(stack)
        print("starting ajpbalancer (HTTP and AJP members) ...", file=sys.stderr, flush=True)
        targets = [
            Target("tomcat", tomcat.address, tomcat.http_port),
            start_proxy("ajpbalancer-http", tomcat.http_url, workdir, stack),
            start_proxy("ajpbalancer-ajp", tomcat.ajp_url, workdir, stack),
        ]
        if settings.warmup:
            print("warming up ...", file=sys.stderr, flush=True)
            warm_up(targets, settings)
        records = run(settings, targets, tomcat)
        print("stopping everything ...", file=sys.stderr, flush=True)
    machine["loadavg_end"] = os.getloadavg()
    problems = verdicts(records, settings.max_rss_mib)
    report: dict[str, Any] = {
        "schema": 1,
        "benchmark": "transfer",
        "command": [shown_program(sys.argv[0]), *sys.argv[1:]],
        "machine": machine,
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "out"},
            "chunk": CHUNK,
            "sample_interval": SAMPLE_INTERVAL,
            "warmup_size": WARMUP_SIZE if settings.warmup else 0,
            "configs": {t.name: t.config for t in targets if t.config is not None},
            "directives_left_out": sorted({d for t in targets for d in t.dropped}),
            "tomcat": {
                "address": tomcat.address,
                "http_port": tomcat.http_port,
                "ajp_port": tomcat.ajp_port,
            },
        },
        "records": [asdict(r) for r in records],
        "problems": problems,
        "ok": not problems,
        "wall_seconds": time.monotonic() - started,
    }
    return finish("transfer", report, markdown(report), settings.out, problems)


if __name__ == "__main__":
    sys.exit(main())
