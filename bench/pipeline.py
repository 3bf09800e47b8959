"""Pipelining benchmark: the proxy's memory per connection that pipelines behind a slow request.

A client may send request after request without waiting for answers. While the first
is answered, what follows must be held somewhere; ajpbalancer's frontend holds at most
``READ_AHEAD`` (32 KiB) of it unparsed and then stops reading from the socket, leaving
the rest to the kernel's socket buffers and, once they are full, to the client. Before
that bound existed, 500 such connections took the proxy from 54 MB to 501 MB of RSS.

This starts a slow member of its own (`bench._slow_member.SlowMember`, a thread of this
process on 127.0.0.2 that holds every request until told to answer) and, in turn, each
proxy of ``--targets`` in front of it: the real ``twistd -n ajpbalancer`` (from the
installed package) and Apache httpd 2.4 with mod_proxy_http, both with
``ProxyPass / http://127.0.0.2:PORT/ timeout=600``. For each it warms the proxy up,
records its RSS, opens ``--connections`` client connections (from several loopback
source addresses) and writes on each one slow ``GET`` followed by ``--pipelined`` bytes
of further GETs, non-blocking, until all is written or no socket takes more (bounded in
time). The member then holds one request per connection. When the proxy's RSS has
settled it records RSS (``VmRSS``, ``VmHWM``, ``Pss``), descriptors and what each client
managed to write; then it closes every client connection, lets the member answer, waits
until the proxy has closed its connections, and records RSS again. ``--rounds`` loads the
same proxy again that many times in all: memory kept after a close but reused by the next
load does not grow from round to round, memory leaked with the connections does.

Memory is summed over the proxy's process family (Apache's parent and children). The
bar: ajpbalancer's RSS grows by less than 60 MB with 500 connections of
1 MiB each (first round, settled RSS and peak), and falls back after they close (at
most half the growth, or `FALLBACK_FLOOR_KIB`, still above the baseline). Exit status
1 if a measurement failed or ajpbalancer did not meet the bar. Results:
``OUT/pipeline-STAMP.json`` and ``.md`` (the table printed on stdout). See
``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/pipeline.py``
    sys.path.insert(0, str(REPO_ROOT))

from bench._ajpbalancer import start_proxy  # noqa: E402  (needs REPO_ROOT on sys.path)
from bench._pipeline_client import (  # noqa: E402
    CONNECT_TIMEOUT,
    PIPELINED_SIZE,
    SLOW_REQUEST,
    answered_early,
    open_clients,
    pipelined_requests,
    warm_up,
    write_pipelines,
)
from bench._proc import fd_count, status_kib  # noqa: E402
from bench._report import finish, load_line, machine_line, shown_program, target_list  # noqa: E402
from bench._slow_member import SlowMember  # noqa: E402
from bench.idle import nofile_limit, raise_nofile  # noqa: E402
from bench.protocols import (  # noqa: E402
    CLK_TCK,
    _terminate,
    machine_facts,
    process_family,
)
from tests.integration.apache import (  # noqa: E402
    MPM_CONFIG,
    Apache,
    ApacheError,
    http_proxy,
)
from tests.integration.proxy import ProxyError  # noqa: E402

TARGETS = {
    "ajpbalancer": "ajpbalancer",
    "apache": "Apache httpd 2.4 mod_proxy_http",
}
"""``--targets`` names and their labels, in the order they are measured."""
BAR_TARGET = "ajpbalancer"
DEFAULT_CONNECTIONS = 500
DEFAULT_PIPELINED = 1 << 20
DEFAULT_SOURCES = 4
DEFAULT_BATCH = 100
DEFAULT_ROUNDS = 2
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_STALL = 2.0
DEFAULT_SETTLE_TIMEOUT = 30.0
BAR_BYTES = 60_000_000
"""The bar on ajpbalancer's growth: 60 MB (57.2 MiB)."""
FALLBACK_FLOOR_KIB = 5 * 1024
"""RSS left above the baseline after close that counts as fallen back whatever the growth."""
MEMBER_ADDRESS = "127.0.0.2"
MEMBER_TIMEOUT = 600
"""The proxies' member timeout (``timeout=`` of ProxyPass), seconds."""
LISTEN_BACKLOG = 1024
FD_MARGIN = 1024
HELD_TIMEOUT = 30.0
"""Seconds the member is given to hold one request per connection, after writing."""
CLOSE_TIMEOUT = 60.0
"""Seconds the proxy is given to close its connections after the clients closed."""
HEAP_INTERVAL = 5.0
"""``ajpbalancer.service._heap.INTERVAL`` (not imported: the bench runs any version)."""
SETTLE_INTERVAL = 0.5
SETTLE_READINGS = 4
"""RSS is settled when this many readings, `SETTLE_INTERVAL` apart, are within
`SETTLE_TOLERANCE_KIB` (or 0.5 %) of each other."""
SETTLE_TOLERANCE_KIB = 512
APACHE_THREADS_PER_CHILD = 64
APACHE_SPARE_THREADS = 64
"""Apache worker threads beyond one per connection (warm-up, the status page)."""


# --- /proc --------------------------------------------------------------------------------


def tcp_memory_kib() -> int:
    """Memory of the machine's TCP socket buffers (``/proc/net/sockstat``), KiB."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                pages = int(fields[fields.index("mem") + 1])
                return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The proxy's process family at one moment (memory in KiB, summed over processes)."""

    rss_kib: int
    hwm_kib: int
    pss_kib: int
    """Proportional set size (``smaps_rollup``): shared pages split between processes."""
    fds: int
    processes: int
    cpu_seconds: float
    tcp_memory_kib: int
    """All TCP socket buffers of the machine (the pipelined bytes the proxy did not read)."""

    @classmethod
    def take(cls, root: int) -> Snapshot:
        family = process_family(root)
        pids = [s.pid for s in family]
        return cls(
            rss_kib=sum(status_kib(p, "VmRSS") for p in pids),
            hwm_kib=sum(status_kib(p, "VmHWM") for p in pids),
            pss_kib=sum(status_kib(p, "Pss", "smaps_rollup") for p in pids),
            fds=sum(fd_count(p) for p in pids),
            processes=len(pids),
            cpu_seconds=sum(s.ticks for s in family) / CLK_TCK,
            tcp_memory_kib=tcp_memory_kib(),
        )


def settle(root: int, timeout: float) -> tuple[Snapshot, float, bool]:
    """Read the family's RSS until it stops moving (or `timeout` s): (last snapshot,
    seconds waited, whether it settled)."""
    started = time.monotonic()
    readings: list[int] = []
    snap = Snapshot.take(root)
    while True:
        time.sleep(SETTLE_INTERVAL)
        snap = Snapshot.take(root)
        readings = [*readings[-(SETTLE_READINGS - 1) :], snap.rss_kib]
        tolerance = max(SETTLE_TOLERANCE_KIB, snap.rss_kib // 200)
        if len(readings) == SETTLE_READINGS and max(readings) - min(readings) <= tolerance:
            return snap, time.monotonic() - started, True
        if time.monotonic() - started > timeout:
            return snap, time.monotonic() - started, False


def wait_fds(root: int, limit: int, timeout: float) -> float:
    """Wait until the family of `root` has at most `limit` descriptors; seconds waited."""
    started = time.monotonic()
    while Snapshot.take(root).fds > limit and time.monotonic() - started < timeout:
        time.sleep(0.2)
    return time.monotonic() - started


# --- the proxies --------------------------------------------------------------------------


def ajpbalancer_config(member_url: str) -> str:
    """Everything to the slow member, with its timeout; no access log."""
    return (
        "# Written by bench/pipeline.py\n"
        "[ajpbalancer]\n"
        "access_log = off\n"
        "\n"
        "[frontend:bench]\n"
        f"listen = tcp:{{port}}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}\n"
        f"ProxyPass = / {member_url}/ timeout={MEMBER_TIMEOUT}\n"
    )


OPTIONAL_LINES = {
    "KeepAliveTimeout": f"KeepAliveTimeout = {MEMBER_TIMEOUT}",
    "MaxConnections": "MaxConnections = 0",
}
"""No idle timeout and no cap on connections during the run, where the directives exist."""


def apache_mpm_config(connections: int) -> str:
    """Event MPM children of 64 threads, enough for one per connection, all started up
    front (none forked or stopped during the measurement)."""
    children = math.ceil((connections + APACHE_SPARE_THREADS) / APACHE_THREADS_PER_CHILD)
    workers = children * APACHE_THREADS_PER_CHILD
    return f"""\
<IfModule mpm_event_module>
    StartServers {children}
    ServerLimit {children}
    ThreadLimit {APACHE_THREADS_PER_CHILD}
    ThreadsPerChild {APACHE_THREADS_PER_CHILD}
    MaxRequestWorkers {workers}
    MinSpareThreads {APACHE_THREADS_PER_CHILD}
    MaxSpareThreads {workers}
    MaxConnectionsPerChild 0
</IfModule>"""


class PipelineApache(Apache):
    """The test fixture's Apache, sized for the connections, with no access log."""

    def __init__(self, *, connections: int, proxy_config: str) -> None:
        super().__init__(proxy_config=proxy_config)
        self.connections = connections

    def httpd_conf(self) -> str:
        conf = super().httpd_conf()
        if MPM_CONFIG not in conf:
            raise ApacheError("the fixture's MPM section was not found: cannot size Apache")
        conf = conf.replace(MPM_CONFIG, apache_mpm_config(self.connections))
        conf = conf.replace("\nListen ", f"\nListenBacklog {LISTEN_BACKLOG}\nListen ", 1)
        return "".join(
            "# CustomLog: off for the benchmark\n" if line.startswith("CustomLog ") else line
            for line in conf.splitlines(keepends=True)
        )


@dataclass
class Running:
    """A started proxy: where it listens, the root of its process family, how to stop it."""

    port: int
    pid: int
    config: str
    stop: Callable[[], None]
    alive: Callable[[], bool]
    log_tail: Callable[[], str]
    details: dict[str, Any] = field(default_factory=dict)


def start_target(name: str, member: SlowMember, settings: Settings, workdir: Path) -> Running:
    """Start proxy `name` in front of `member`; raise RuntimeError if it does not start.

    ajpbalancer gets this process's environment plus `Settings.proxy_env`; Apache the
    fixture's own minimal one.
    """
    if name == "ajpbalancer":
        env = {**os.environ, **dict(settings.proxy_env)}
        try:
            proxy, dropped = start_proxy(
                ajpbalancer_config(member.url), OPTIONAL_LINES, workdir / name, env=env
            )
        except ProxyError as exc:
            raise RuntimeError(f"ajpbalancer did not start: {str(exc)[-1500:]}") from None
        process = proxy.process
        assert process is not None
        return Running(
            port=proxy.port,
            pid=proxy.pid,
            config=proxy.config_path.read_text(),
            stop=proxy.stop,
            alive=lambda: process.poll() is None,
            log_tail=lambda: proxy.log()[-1500:],
            details={"directives_left_out": dropped, "proxy_nofile": nofile_limit(proxy.pid)},
        )
    apache = PipelineApache(
        connections=settings.connections,
        proxy_config=http_proxy(member.url, path="/", extra=f"timeout={MEMBER_TIMEOUT}"),
    )
    try:
        apache.start()
    except (ApacheError, OSError) as exc:
        apache.close()
        raise RuntimeError(f"Apache did not start: {str(exc)[-1500:]}") from None
    assert apache.pid is not None
    return Running(
        port=apache.port,
        pid=apache.pid,
        config=apache.config_path.read_text(),
        stop=apache.close,
        alive=lambda: apache.running,
        log_tail=lambda: apache.error_log_tail()[-1500:],
    )


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run measures."""

    connections: int
    pipelined: int
    targets: tuple[str, ...]
    rounds: int
    sources: tuple[str, ...]
    batch: int
    write_timeout: float
    stall: float
    settle_timeout: float
    proxy_env: tuple[tuple[str, str], ...]
    out: Path


@dataclass(slots=True)
class Round:
    """One load of a proxy: connections opened, written, held, closed (KiB, seconds)."""

    connections_open: int = 0
    connect_errors: list[str] = field(default_factory=list)
    connect_seconds: float = 0.0
    write_seconds: float = 0.0
    write_ended: str = ""
    write_errors: list[str] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    """Bytes each client wrote (its slow GET included)."""
    held_by_member: int = 0
    answered_early: int = 0
    early_answers: list[str] = field(default_factory=list)
    """The first line of the first few of those answers, or how they were closed."""
    loaded: dict[str, Any] = field(default_factory=dict)
    settle_seconds: float = 0.0
    settled: bool = False
    after_close: dict[str, Any] = field(default_factory=dict)
    close_seconds: float = 0.0
    member_before_close: dict[str, Any] = field(default_factory=dict)
    member_after_close: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Result:
    """Everything measured of one target."""

    target: str
    label: str
    available: bool = False
    reason: str | None = None
    config: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    member_open_at_baseline: int = 0
    """Member connections the proxy kept open after the warm-up (its pool)."""
    rounds: list[Round] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def measure(settings: Settings, name: str, workdir: Path) -> Result:
    """Start the member and proxy `name`, load and close it `settings.rounds` times, and
    record it all."""
    result = Result(target=name, label=TARGETS[name])
    per_round = (
        CONNECT_TIMEOUT * (settings.connections // settings.batch + 1)
        + settings.write_timeout
        + HELD_TIMEOUT
        + settings.settle_timeout * 2
        + CLOSE_TIMEOUT
    )
    member = SlowMember(
        MEMBER_ADDRESS,
        max_connections=settings.connections * 4 + 256,
        lifetime=per_round * settings.rounds + settings.settle_timeout + 120,
    ).start()
    try:
        running = start_target(name, member, settings, workdir)
    except RuntimeError as exc:
        member.stop()
        result.reason = str(exc)
        return result
    result.available = True
    result.config = running.config
    result.details = running.details
    try:
        warm_up(running.port)
        before, _, _ = settle(running.pid, settings.settle_timeout)
        result.before = asdict(before)
        _say(f"  baseline: RSS {before.rss_kib / 1024:.1f} MiB in {before.processes} process(es)")
        result.member_open_at_baseline = member.counts().open
        for number in range(1, settings.rounds + 1):
            result.rounds.append(
                one_round(
                    settings,
                    running,
                    member,
                    before=before,
                    member_baseline=result.member_open_at_baseline,
                    number=number,
                )
            )
            if not running.alive():
                result.problems.append(f"the proxy exited: {running.log_tail()}")
                break
    except (RuntimeError, OSError) as exc:  # the warm-up failed, or a socket call
        result.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        running.stop()
        member.stop()
    if member.error and "by itself" not in member.error:
        result.problems.append(f"the member failed: {member.error}")
    result.figures = figures(result, settings)
    result.problems += problems_of(result, settings)
    return result


def one_round(
    settings: Settings,
    running: Running,
    member: SlowMember,
    *,
    before: Snapshot,
    member_baseline: int,
    number: int,
) -> Round:
    """Open the connections, write, let RSS settle, measure; close, release, measure.

    After the close, the proxy has closed its side when it has no more descriptors than
    at `before` and the member no more connections than `member_baseline` (the
    warm-up's, kept in the proxy's pool).
    """
    pid = running.pid
    record = Round()
    started = time.monotonic()
    sockets, errors = open_clients(
        settings.connections, running.port, settings.sources, settings.batch
    )
    record.connect_seconds = time.monotonic() - started
    record.connections_open = len(sockets)
    record.connect_errors = _first(errors)
    try:
        payload = SLOW_REQUEST + pipelined_requests(settings.pipelined)
        _say(
            f"  round {number}: {len(sockets)} connected; writing {len(payload):,} bytes on "
            "each ..."
        )
        outcome = write_pipelines(
            sockets, payload, stall=settings.stall, timeout=settings.write_timeout
        )
        record.written = outcome.written
        record.write_seconds = outcome.seconds
        record.write_ended = outcome.ended
        record.write_errors = _first(outcome.errors)
        record.held_by_member = member.wait_held(len(sockets), HELD_TIMEOUT)
        loaded, record.settle_seconds, record.settled = settle(pid, settings.settle_timeout)
        record.loaded = asdict(loaded)
        record.answered_early, record.early_answers = answered_early(sockets)
        record.member_before_close = asdict(member.counts())
        _say(
            f"    {outcome.ended} in {outcome.seconds:.1f} s; member holds "
            f"{record.held_by_member}; RSS {loaded.rss_kib / 1024:.1f} MiB, {loaded.fds} fds"
        )
    finally:
        close_started = time.monotonic()
        for sock in sockets:
            sock.close()
    # The proxies read nothing more from a connection while its answer is outstanding,
    # so they see the close only once the member has answered.
    member.release()
    try:
        wait_fds(pid, before.fds + 2, CLOSE_TIMEOUT)
        member.wait_open_at_most(
            member_baseline, max(1.0, CLOSE_TIMEOUT - (time.monotonic() - close_started))
        )
        record.close_seconds = time.monotonic() - close_started
        # ajpbalancer gives freed heap back to the system at its next look at the number
        # of open connections (every HEAP_INTERVAL seconds, ajpbalancer/service/_heap.py).
        time.sleep(2 * HEAP_INTERVAL)
        after, _, _ = settle(pid, settings.settle_timeout)
        record.after_close = asdict(after)
        record.member_after_close = asdict(member.counts())
    finally:
        member.hold()
    _say(f"    closed in {record.close_seconds:.1f} s; RSS {after.rss_kib / 1024:.1f} MiB")
    return record


def _first(errors: list[str], count: int = 20) -> list[str]:
    return errors[:count] + ([f"... {len(errors) - count} more"] if len(errors) > count else [])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def figures(result: Result, settings: Settings) -> dict[str, Any]:
    """The derived figures (first round, and what later rounds add), and the bar."""
    if not (result.before and result.rounds and result.rounds[0].loaded):
        return {}
    before = result.before
    first = result.rounds[0]
    loaded, after = first.loaded, first.after_close or {}
    growth = loaded["rss_kib"] - before["rss_kib"]
    peak_growth = max(loaded["hwm_kib"] - before["rss_kib"], growth)
    per_connection = growth / first.connections_open if first.connections_open else None
    left = after["rss_kib"] - before["rss_kib"] if after else None
    fell_back = left is not None and left <= max(growth / 2, FALLBACK_FLOOR_KIB)
    written = sorted(first.written)
    payload = len(SLOW_REQUEST) + settings.pipelined
    last = result.rounds[-1]
    later_left = (
        last.after_close["rss_kib"] - after["rss_kib"]
        if len(result.rounds) > 1 and after and last.after_close
        else None
    )
    return {
        "growth_kib": growth,
        "peak_growth_kib": peak_growth,
        "pss_growth_kib": loaded["pss_kib"] - before["pss_kib"],
        "growth_per_connection_kib": per_connection,
        "left_after_close_kib": left,
        "fell_back": fell_back,
        "later_rounds_left_kib": later_left,
        "later_rounds_left_per_round_kib": (
            None if later_left is None else later_left / (len(result.rounds) - 1)
        ),
        "left_after_last_close_kib": (
            last.after_close["rss_kib"] - before["rss_kib"] if last.after_close else None
        ),
        "bar_bytes": BAR_BYTES,
        "growth_below_bar": growth * 1024 < BAR_BYTES and peak_growth * 1024 < BAR_BYTES,
        "bar_met": growth * 1024 < BAR_BYTES and peak_growth * 1024 < BAR_BYTES and fell_back,
        "written_min": written[0] if written else 0,
        "written_median": statistics.median(written) if written else 0,
        "written_max": written[-1] if written else 0,
        "written_total": sum(written),
        "clients_wrote_all": sum(1 for w in written if w >= payload),
        "tcp_memory_growth_kib": loaded["tcp_memory_kib"] - before["tcp_memory_kib"],
        "fds_added": loaded["fds"] - before["fds"],
    }


def problems_of(result: Result, settings: Settings) -> list[str]:
    """What makes the measurement of `result` wrong (not slow or large: wrong)."""
    if not result.available:
        return []
    problems = []
    if not result.rounds:
        problems.append("no round measured")
    for number, record in enumerate(result.rounds, 1):
        where = f"round {number}: " if settings.rounds > 1 else ""
        missing = settings.connections - record.connections_open
        if missing:
            first = record.connect_errors[0] if record.connect_errors else "?"
            problems.append(f"{where}{missing} connection(s) not opened (first error: {first})")
        if record.held_by_member < record.connections_open:
            problems.append(
                f"{where}the member held {record.held_by_member} slow requests of "
                f"{record.connections_open} connections"
            )
        if record.answered_early:
            problems.append(
                f"{where}{record.answered_early} connection(s) answered or closed by the "
                f"proxy before the member answered: {', '.join(record.early_answers)}"
            )
        if record.write_errors:
            problems.append(f"{where}write errors: {record.write_errors[0]}")
        if not record.after_close:
            problems.append(f"{where}no RSS after close")
    return problems


# --- report -------------------------------------------------------------------------------


def _mib(kib: float | None) -> str:
    return "—" if kib is None else f"{kib / 1024:,.1f}"


def _kib(value: float | None) -> str:
    return "—" if value is None else f"{value / 1024:,.0f}"


def markdown(report: dict[str, Any]) -> str:
    """The figures of each target side by side, the bar, and the machine in one line."""
    s = report["settings"]
    results = report["results"]
    env = " ".join(f"{k}={v}" for k, v in s["proxy_env"])
    lines = [
        f"{s['connections']:,} client connections, each one slow GET (held by the member) "
        f"followed by {s['pipelined']:,} bytes of pipelined GETs, written until the "
        "proxy stopped taking more; then closed, and the member let go"
        + (f"; {s['rounds']} rounds on the same proxy" if s["rounds"] > 1 else "")
        + (f". ajpbalancer's environment: `{env}`" if env else "")
        + ".",
        "",
        "| proxy | processes | baseline RSS MiB | RSS loaded MiB | growth MiB | "
        "KiB per connection | peak (VmHWM) MiB | PSS growth MiB | RSS after close MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if not r["available"]:
            lines.append(f"| {r['label']} | unavailable: {r['reason']} |||||||")
            continue
        f = r["figures"]
        if not f:
            lines.append(f"| {r['label']} | no figures: {'; '.join(r['problems'])} |||||||")
            continue
        first = r["rounds"][0]
        per = f["growth_per_connection_kib"]
        after = first["after_close"]["rss_kib"] if first["after_close"] else None
        lines.append(
            f"| {r['label']} | {first['loaded']['processes']} | {_mib(r['before']['rss_kib'])} "
            f"| {_mib(first['loaded']['rss_kib'])} | {_mib(f['growth_kib'])} | "
            f"{'—' if per is None else f'{per:,.1f}'} | {_mib(first['loaded']['hwm_kib'])} | "
            f"{_mib(f['pss_growth_kib'])} | {_mib(after)} |"
        )
    lines += [
        "",
        "| proxy | connections | bytes written per client: min / median / max KiB | "
        "wrote all | writing ended | held by the member | fds: baseline → loaded → "
        "after close | kernel TCP buffers added MiB |",
        "|---|---:|---|---:|---|---:|---|---:|",
    ]
    for r in results:
        f = r["figures"]
        if not r["available"] or not f:
            continue
        first = r["rounds"][0]
        after_fds = f"{first['after_close']['fds']:,}" if first["after_close"] else "—"
        lines.append(
            f"| {r['label']} | {first['connections_open']:,} | {_kib(f['written_min'])} / "
            f"{_kib(f['written_median'])} / {_kib(f['written_max'])} | "
            f"{f['clients_wrote_all']:,} | {first['write_ended']} "
            f"({first['write_seconds']:.1f} s) | {first['held_by_member']:,} | "
            f"{r['before']['fds']:,} → {first['loaded']['fds']:,} → {after_fds} | "
            f"{_mib(f['tcp_memory_growth_kib'])} |"
        )
    if s["rounds"] > 1:
        lines += [
            "",
            "| proxy | round | RSS loaded MiB | RSS after close MiB | above baseline after "
            "close MiB |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in results:
            if not r["available"] or not r["figures"]:
                continue
            base = r["before"]["rss_kib"]
            for number, record in enumerate(r["rounds"], 1):
                after = record["after_close"]["rss_kib"] if record["after_close"] else None
                lines.append(
                    f"| {r['label']} | {number} | "
                    f"{_mib(record['loaded']['rss_kib'] if record['loaded'] else None)} | "
                    f"{_mib(after)} | {_mib(None if after is None else after - base)} |"
                )
    lines.append("")
    bar = next((r for r in results if r["target"] == BAR_TARGET and r["figures"]), None)
    if bar is not None:
        f = bar["figures"]
        verdict = "**met**" if f["bar_met"] else "**not met**"
        growth_verdict = "below" if f["growth_below_bar"] else "not below"
        fallback = (
            "fell back"
            if f["fell_back"]
            else "did not fall back (more than half the growth, and over "
            f"{FALLBACK_FLOOR_KIB // 1024} MiB, still resident)"
        )
        lines.append(
            f"Bar: ajpbalancer's RSS grows by less than 60 MB ({BAR_BYTES / 2**20:.1f} MiB) "
            f"and falls back after the connections close: {verdict}. Growth "
            f"{_mib(f['growth_kib'])} MiB, peak {_mib(f['peak_growth_kib'])} MiB above the "
            f"baseline ({growth_verdict} the bar); {_mib(f['left_after_close_kib'])} MiB "
            f"above the baseline after close: {fallback}."
        )
        if f["later_rounds_left_kib"] is not None:
            lines.append(
                f"After the last of {len(bar['rounds'])} rounds, "
                f"{_mib(f['later_rounds_left_kib'])} MiB more than after the first was "
                f"resident ({_mib(f['later_rounds_left_per_round_kib'])} MiB per round; "
                "memory that leaked with the connections would add about the growth, "
                f"{_mib(f['growth_kib'])} MiB, per round)."
            )
    for r in results:
        if r["problems"]:
            lines.append(f"\n**{r['label']}: FAILED**:")
            lines += [f"- {p}" for p in r["problems"]]
    lines.append(machine_line(report, report["machine"]["apache"], load_line(report["machine"])))
    return "\n".join(lines) + "\n"


# --- command line -------------------------------------------------------------------------


def _size(text: str) -> int:
    """``1M``, ``64K``, ``1048576`` (K, M, G = 1024ⁿ)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def parse_args(argv: Sequence[str] | None) -> Settings:
    """The command line as `Settings`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description="Connections that pipeline requests behind a slow one: the proxy's "
        "RSS per connection, ajpbalancer and Apache side by side. See bench/README.md.",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_CONNECTIONS,
        help=f"client connections (default {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--pipelined",
        type=_size,
        default=DEFAULT_PIPELINED,
        help="bytes of pipelined GETs after the slow one, per connection (default 1M)",
    )
    parser.add_argument(
        "--targets",
        type=target_list(TARGETS),
        default=tuple(TARGETS),
        help=f"comma-separated, of: {', '.join(TARGETS)} (default both)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="loads of the same proxy, each closed before the next; the bar is the first's "
        f"(default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add to ajpbalancer's environment, e.g. MALLOC_MMAP_THRESHOLD_=32768 (repeatable)",
    )
    parser.add_argument(
        "--sources",
        type=int,
        default=DEFAULT_SOURCES,
        help=f"loopback source addresses 127.0.0.11... (default {DEFAULT_SOURCES})",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"connections opened at once (default {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--write-timeout",
        type=float,
        default=DEFAULT_WRITE_TIMEOUT,
        help=f"seconds writing may take in all (default {DEFAULT_WRITE_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=DEFAULT_STALL,
        help=f"writing ends when no socket took a byte for this long (default {DEFAULT_STALL})",
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=DEFAULT_SETTLE_TIMEOUT,
        help=f"seconds to wait for the RSS to stop moving (default {DEFAULT_SETTLE_TIMEOUT:.0f})",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 10_000:
        parser.error("--connections must be 1..10000")
    if not 0 <= args.pipelined <= 64 << 20:
        parser.error("--pipelined must be 0..64M")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1..10")
    proxy_env = tuple(tuple(item.split("=", 1)) for item in args.proxy_env)
    if any(len(pair) != 2 or not pair[0] for pair in proxy_env):
        parser.error("--proxy-env takes NAME=VALUE")
    if not 1 <= args.sources <= 200:
        parser.error("--sources must be 1..200")
    if not 1 <= args.batch <= 5000:
        parser.error("--batch must be 1..5000")
    if not 1 <= args.write_timeout <= 600:
        parser.error("--write-timeout must be 1..600 seconds")
    if not 0.2 <= args.stall <= 60:
        parser.error("--stall must be 0.2..60 seconds")
    if not 2 <= args.settle_timeout <= 300:
        parser.error("--settle-timeout must be 2..300 seconds")
    return Settings(
        connections=args.connections,
        pipelined=args.pipelined,
        targets=args.targets,
        rounds=args.rounds,
        sources=tuple(f"127.0.0.{11 + i}" for i in range(args.sources)),
        batch=args.batch,
        write_timeout=args.write_timeout,
        stall=args.stall,
        settle_timeout=args.settle_timeout,
        proxy_env=cast(tuple[tuple[str, str], ...], proxy_env),
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write JSON and Markdown, print the table; 1 if it failed."""
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    started = time.monotonic()
    machine = machine_facts()
    for key in ("wrk", "tomcat", "java", "nginx", "haproxy"):  # not used here
        machine.pop(key, None)
    # The client's sockets, the member's (in this process) and the proxy's, inherited.
    client_nofile = raise_nofile(settings.connections * 4 + FD_MARGIN)
    results: list[Result] = []
    workdir = Path(tempfile.mkdtemp(prefix="ajpb-pipeline-"))
    try:
        for name in settings.targets:
            _say(f"{TARGETS[name]}:")
            results.append(measure(settings, name, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_end"] = os.getloadavg()
    bar = next((r for r in results if r.target == BAR_TARGET), None)
    problems = [f"{r.target}: {p}" for r in results for p in r.problems]
    problems += [f"{r.target}: unavailable: {r.reason}" for r in results if not r.available]
    if bar is not None and bar.figures and not bar.figures["bar_met"]:
        problems.append("ajpbalancer: the bar is not met")
    report: dict[str, Any] = {
        "schema": 1,
        "benchmark": "pipeline",
        "command": [shown_program(sys.argv[0]), *sys.argv[1:]],
        "machine": machine,
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "out"},
            "slow_request": SLOW_REQUEST.decode(),
            "pipelined_request_size": PIPELINED_SIZE,
            "member": f"bench/_slow_member.py on {MEMBER_ADDRESS}",
            "member_timeout": MEMBER_TIMEOUT,
            "client_nofile": client_nofile,
        },
        "results": [asdict(r) for r in results],
        "problems": problems,
        "ok": not problems,
        "wall_seconds": time.monotonic() - started,
    }
    return finish("pipeline", report, markdown(report), settings.out, problems)


if __name__ == "__main__":
    sys.exit(main())
