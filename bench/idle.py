"""Idle keep-alive benchmark: 10,000 client connections held open by ajpbalancer.

The target: 10,000 idle keep-alive client connections held, with the RSS the README
states. This starts one ``twistd -n ajpbalancer`` with a built-in AJP demo member (in
the same process, so no Tomcat is needed) and ``ProxyPass / ajp://DEMO/``; then this
process, the client, opens ``--connections`` connections to it in batches of
``--batch``, sends one small ``GET`` on each and reads the whole answer (so each is a
keep-alive connection that has served a request), and holds them all idle for
``--hold`` seconds. It reports the proxy's RSS (``VmRSS``) before, after opening, at the
end of the hold, and after every connection is closed again, the KiB per connection,
the file descriptors open in the proxy (``/proc/PID/fd``), its CPU time, and how long
opening took.

The client's ``RLIMIT_NOFILE`` is raised to hold every connection, before the proxy is
started, which inherits it (checked in ``/proc/PID/limits``). Connections come from
``--sources`` loopback addresses (127.0.0.11, .12, ...) with ``IP_BIND_ADDRESS_NO_PORT``,
so that ephemeral ports (and those still in TIME_WAIT from an earlier run) do not run
out. ``KeepAliveTimeout`` and ``MaxConnections`` are set high / unlimited where the
installed ajpbalancer knows them; where it does not, its idle timeout is the frontend's
built-in one (60 s), which the hold must stay under.

The exit status is 1 if a connection could not be opened or was closed by the proxy
during the hold. Results: ``OUT/idle-STAMP.json`` and ``.md`` (the table printed on
stdout). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/idle.py``
    sys.path.insert(0, str(REPO_ROOT))

from bench._ajpbalancer import start_proxy  # noqa: E402  (needs REPO_ROOT on sys.path)
from bench._proc import fd_count, status_kib  # noqa: E402
from bench._report import finish, load_line, machine_line, shown_program  # noqa: E402  (needs REPO_ROOT on sys.path)
from bench.protocols import CLK_TCK, _terminate, family_ticks, machine_facts  # noqa: E402
from tests.integration.proxy import ProxyError, ProxyProcess, free_port  # noqa: E402

DEFAULT_CONNECTIONS = 10_000
DEFAULT_BATCH = 500
DEFAULT_HOLD = 10.0
DEFAULT_SOURCES = 4
DEFAULT_INFLIGHT = 8
BUILTIN_IDLE_TIMEOUT = 60.0
"""The frontend's idle timeout when no ``KeepAliveTimeout`` can be set
(``FrontendProtocol(idle_timeout=60.0)`` in ``ajpbalancer/frontend/_protocol.py``)."""
BATCH_TIMEOUT = 60.0
"""Seconds one batch may take to connect and be answered."""
CLOSE_TIMEOUT = 30.0
"""Seconds the proxy is given to close its side after the client closed all."""
SETTLE_SECONDS = 1.0
"""Pause before each RSS reading, so that the proxy has finished what it was doing."""
LISTEN_BACKLOG = 1024
FD_MARGIN = 1024
"""File descriptors allowed beyond one per connection (the proxy's own, the client's)."""
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
REQUEST = b"GET /idle HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench.idle\r\n\r\n"
MAX_ANSWER = 1 << 20


# --- /proc --------------------------------------------------------------------------------


def nofile_limit(pid: int) -> str:
    """The ``Max open files`` line of ``/proc/PID/limits`` (soft and hard)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return " ".join(line.split()[3:5])
    except OSError:
        pass
    return "unknown"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The proxy at one moment: memory (KiB), descriptors, CPU seconds so far."""

    rss_kib: int
    hwm_kib: int
    fds: int
    cpu_seconds: float

    @classmethod
    def take(cls, pid: int) -> Snapshot:
        return cls(
            rss_kib=status_kib(pid, "VmRSS"),
            hwm_kib=status_kib(pid, "VmHWM"),
            fds=fd_count(pid),
            cpu_seconds=family_ticks(pid) / CLK_TCK,
        )


def raise_nofile(needed: int) -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE to at least `needed` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft, hard
    if hard < needed:
        try:  # root may raise the hard limit, up to fs.nr_open
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed, needed
        except (ValueError, OSError):
            raise SystemExit(
                f"RLIMIT_NOFILE hard limit {hard} < {needed} needed, and it cannot be "
                "raised here (run as root, or lower --connections)"
            ) from None
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed, hard


# --- the client ---------------------------------------------------------------------------


class Connection:
    """One client connection: connect, send `REQUEST`, read one whole answer, then idle."""

    __slots__ = ("buffer", "done", "error", "sock", "status")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.done = False
        self.error: str | None = None
        self.status = 0

    def answer_complete(self) -> bool:
        """Whether `buffer` holds one whole answer; sets `status` or `error`."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = self.buffer[:head_end].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        body = self.buffer[head_end + 4 :]
        if "close" in headers.get("connection", ""):
            self.error = "the proxy answered Connection: close"
        if "content-length" in headers:
            complete = len(body) >= int(headers["content-length"])
        elif "chunked" in headers.get("transfer-encoding", ""):
            complete = body.endswith(b"0\r\n\r\n")
        else:
            self.error = "an answer without a length (not keep-alive)"
            complete = True
        if complete and self.status != 200 and self.error is None:
            self.error = f"status {self.status}"
        return complete


def open_all(settings: Settings, port: int) -> tuple[list[socket.socket], list[str], list[float]]:
    """Open every connection in batches; (idle sockets, errors, seconds per batch)."""
    sockets: list[socket.socket] = []
    errors: list[str] = []
    batch_seconds: list[float] = []
    started = time.monotonic()
    for first in range(0, settings.connections, settings.batch):
        count = min(settings.batch, settings.connections - first)
        batch_start = time.monotonic()
        done, failed = _one_batch(
            count, first, port, settings.sources, batch_start, inflight=settings.inflight
        )
        batch_seconds.append(time.monotonic() - batch_start)
        sockets += done
        errors += failed
        if len(errors) > max(10, settings.connections // 100):
            break  # something is wrong: no point in going on
        if time.monotonic() - started > settings.open_timeout:
            errors.append(f"opening took more than {settings.open_timeout:.0f} s: stopped")
            break
    return sockets, errors, batch_seconds


def _one_batch(
    count: int, first: int, port: int, sources: Sequence[str], started: float, *, inflight: int
) -> tuple[list[socket.socket], list[str]]:
    """One batch driven until its deadline: (idle sockets, errors of the others)."""
    conns, errors = _drive(count, first, port, sources, started + BATCH_TIMEOUT, inflight=inflight)
    sockets = []
    for conn in conns:
        if conn.done:
            sockets.append(conn.sock)
        else:
            errors.append(conn.error or "unknown")
            conn.sock.close()
    return sockets, errors


def _drive(
    count: int, first: int, port: int, sources: Sequence[str], deadline: float, *, inflight: int
) -> tuple[list[Connection], list[str]]:
    """Connect `count` sockets at once, then one request on each, `inflight` at a time.

    Until `deadline`. Connections are opened all together, requests limited: with as
    many requests in flight as connections, the proxy would pool as many member
    connections, which are not what is measured.
    """
    poller = select.epoll()
    conns: list[Connection] = []
    errors: list[str] = []
    connecting: dict[int, Connection] = {}
    ready: deque[Connection] = deque()
    answering: dict[int, Connection] = {}
    try:
        for i in range(first, first + count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            try:
                sock.bind((sources[i % len(sources)], 0))
            except OSError as exc:
                errors.append(f"bind: {exc}")
                sock.close()
                continue
            code = sock.connect_ex(("127.0.0.1", port))
            if code not in (0, errno.EINPROGRESS):
                errors.append(f"connect: {os.strerror(code)}")
                sock.close()
                continue
            conn = Connection(sock)
            conns.append(conn)
            connecting[sock.fileno()] = conn
            poller.register(sock.fileno(), select.EPOLLOUT)
        while (connecting or ready or answering) and time.monotonic() < deadline:
            while ready and len(answering) < inflight:
                conn = ready.popleft()
                try:
                    conn.sock.send(REQUEST)  # a few dozen bytes: one send
                except OSError as exc:
                    conn.error = f"send: {exc}"
                    continue
                answering[conn.sock.fileno()] = conn
                poller.register(conn.sock.fileno(), select.EPOLLIN)
            for fd, _ in poller.poll(0.5):
                poller.unregister(fd)
                if fd in connecting:
                    conn = connecting.pop(fd)
                    code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        conn.error = f"connect: {os.strerror(code)}"
                    else:
                        ready.append(conn)
                    continue
                conn = answering[fd]
                if not _read(conn):
                    poller.register(fd, select.EPOLLIN)
                    continue
                del answering[fd]
                conn.done = conn.error is None
                conn.buffer = b""
        for conn in [*connecting.values(), *ready, *answering.values()]:
            conn.error = "no answer in time"
    finally:
        poller.close()
    return conns, errors


def _read(conn: Connection) -> bool:
    """Read what has arrived on `conn`; whether it is finished (answered or failed)."""
    try:
        data = conn.sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError as exc:
        conn.error = f"recv: {exc}"
        return True
    if not data:
        conn.error = "closed by the proxy before the whole answer"
        return True
    conn.buffer += data
    if len(conn.buffer) > MAX_ANSWER:
        conn.error = "answer too long"
        return True
    return conn.answer_complete()


def closed_by_peer(sockets: Sequence[socket.socket]) -> int:
    """How many of `sockets` are readable now: closed by the proxy (or sent it data)."""
    poller = select.epoll()
    try:
        for sock in sockets:
            poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        closed = 0
        for _ in range(len(sockets) // 1000 + 2):  # each poll returns at most 1000 (maxevents)
            events = poller.poll(0, 1000)
            closed += len(events)
            for fd, _ in events:
                poller.unregister(fd)
            if len(events) < 1000:
                break
        return closed
    finally:
        poller.close()


# --- the proxy ----------------------------------------------------------------------------


def ajpbalancer_config(demo_port: int) -> str:
    """An AJP demo member in the proxy's process, everything to it, no access log."""
    member = f"ajp://127.0.0.1:{demo_port}"
    return (
        "# Written by bench/idle.py\n"
        "[ajpbalancer]\n"
        "access_log = off\n"
        f"demo = {member} route=idle1\n"
        "\n"
        "[frontend:bench]\n"
        f"listen = tcp:{{port}}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}\n"
        f"ProxyPass = / {member}/\n"
    )


OPTIONAL_LINES = {
    "KeepAliveTimeout": "KeepAliveTimeout = 3600",
    "MaxConnections": "MaxConnections = 0",
}
"""Idle connections kept an hour, and no cap on them, where the directives exist."""


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run measures."""

    connections: int
    batch: int
    hold: float
    inflight: int
    sources: tuple[str, ...]
    open_timeout: float
    out: Path


@dataclass(slots=True)
class Result:
    """Everything one run measured (memory in KiB, times in seconds)."""

    connections_asked: int
    connections_open: int = 0
    open_errors: list[str] = field(default_factory=list)
    closed_during_hold: int = 0
    open_seconds: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)
    hold_seconds: float = 0.0
    close_seconds: float = 0.0
    before: dict[str, Any] = field(default_factory=dict)
    after_open: dict[str, Any] = field(default_factory=dict)
    after_hold: dict[str, Any] = field(default_factory=dict)
    after_close: dict[str, Any] = field(default_factory=dict)
    rss_per_connection_kib: float | None = None
    fds_per_connection: float | None = None
    proxy_cpu_open_seconds: float = 0.0
    proxy_cpu_hold_seconds: float = 0.0
    proxy_nofile: str = ""
    client_nofile: tuple[int, int] = (0, 0)
    client_peak_rss_kib: int = 0
    idle_timeout: str = ""
    directives_left_out: list[str] = field(default_factory=list)


def warm_up(port: int) -> None:
    """A few requests on one connection, so that pools and caches exist before `before`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        conn = Connection(sock)
        for _ in range(20):
            sock.sendall(REQUEST)
            conn.buffer = b""
            deadline = time.monotonic() + 10
            while not conn.answer_complete():
                data = sock.recv(65536)
                if not data or time.monotonic() > deadline:
                    raise SystemExit("warm-up: the proxy closed or did not answer")
                conn.buffer += data
            if conn.error is not None:
                raise SystemExit(f"warm-up: {conn.error}: {conn.buffer[:300]!r}")


def settle_snapshot(pid: int) -> Snapshot:
    """`Snapshot.take` after `SETTLE_SECONDS`."""
    time.sleep(SETTLE_SECONDS)
    return Snapshot.take(pid)


def wait_fds_below(pid: int, limit: int, timeout: float) -> float:
    """Wait until `pid` has at most `limit` descriptors open (or `timeout`); seconds waited."""
    started = time.monotonic()
    while fd_count(pid) > limit and time.monotonic() - started < timeout:
        time.sleep(0.1)
    return time.monotonic() - started


def measure(settings: Settings, proxy: ProxyProcess, result: Result) -> None:
    """Open, hold and close the connections; the proxy's figures at each step into `result`."""
    pid = proxy.pid
    result.proxy_nofile = nofile_limit(pid)
    warm_up(proxy.port)
    before = settle_snapshot(pid)
    result.before = asdict(before)
    print(
        f"  proxy before: RSS {before.rss_kib / 1024:.1f} MiB, {before.fds} fds; opening "
        f"{settings.connections} connections ...",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    sockets, errors, batches = open_all(settings, proxy.port)
    result.open_seconds = time.monotonic() - started
    result.batch_seconds = [round(b, 3) for b in batches]
    result.connections_open = len(sockets)
    result.open_errors = errors[:20] + (
        [f"... {len(errors) - 20} more"] if len(errors) > 20 else []
    )
    try:
        opened = settle_snapshot(pid)
        result.after_open = asdict(opened)
        result.proxy_cpu_open_seconds = opened.cpu_seconds - before.cpu_seconds
        if sockets:
            result.rss_per_connection_kib = (opened.rss_kib - before.rss_kib) / len(sockets)
            result.fds_per_connection = (opened.fds - before.fds) / len(sockets)
        print(
            f"  {len(sockets)} open in {result.open_seconds:.1f} s ({len(errors)} errors): "
            f"RSS {opened.rss_kib / 1024:.1f} MiB, {opened.fds} fds; holding "
            f"{settings.hold:.0f} s ...",
            file=sys.stderr,
            flush=True,
        )
        hold_start = time.monotonic()
        while time.monotonic() - hold_start < settings.hold:
            time.sleep(min(0.5, settings.hold))
        held = Snapshot.take(pid)
        result.hold_seconds = time.monotonic() - hold_start
        result.after_hold = asdict(held)
        result.proxy_cpu_hold_seconds = held.cpu_seconds - opened.cpu_seconds
        result.closed_during_hold = closed_by_peer(sockets)
        result.client_peak_rss_kib = status_kib(os.getpid(), "VmHWM")
    finally:
        close_start = time.monotonic()
        for sock in sockets:
            sock.close()
    if result.after_open:
        wait_fds_below(pid, result.after_open["fds"] - len(sockets), CLOSE_TIMEOUT)
    result.close_seconds = time.monotonic() - close_start
    result.after_close = asdict(settle_snapshot(pid))


# --- report -------------------------------------------------------------------------------


def problems_of(result: Result) -> list[str]:
    """What makes the run fail: connections not opened, or closed during the hold."""
    problems = []
    missing = result.connections_asked - result.connections_open
    if missing:
        first = result.open_errors[0] if result.open_errors else "?"
        problems.append(f"{missing} connection(s) not opened (first error: {first})")
    if result.closed_during_hold:
        problems.append(
            f"{result.closed_during_hold} connection(s) closed by the proxy during the hold "
            f"(idle timeout: {result.idle_timeout})"
        )
    return problems


def _mib(kib: int | None) -> str:
    return "—" if not kib else f"{kib / 1024:.1f}"


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown table, the verdict, and the machine in one line."""
    r = report["result"]
    s = report["settings"]
    lines = [
        f"{r['connections_open']:,} of {r['connections_asked']:,} keep-alive connections "
        f"opened (batches of {s['batch']}, one GET each, {s['inflight']} in flight), "
        f"held idle {r['hold_seconds']:.0f} s.",
        "",
        "| proxy | RSS MiB | peak (VmHWM) MiB | open fds | CPU s since start |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in (
        ("before (warmed up)", "before"),
        ("after opening", "after_open"),
        ("after the hold", "after_hold"),
        ("after closing all", "after_close"),
    ):
        snap = r[key]
        if not snap:
            continue
        lines.append(
            f"| {label} | {_mib(snap['rss_kib'])} | {_mib(snap['hwm_kib'])} | "
            f"{snap['fds']:,} | {snap['cpu_seconds']:.1f} |"
        )
    per_conn = r["rss_per_connection_kib"]
    leftover = r["after_close"]["fds"] - r["before"]["fds"] if r["after_close"] else 0
    lines += [
        "",
        "| figure | value |",
        "|---|---:|",
        f"| RSS per connection | {'—' if per_conn is None else f'{per_conn:.1f} KiB'} |",
        f"| fds per connection | {r['fds_per_connection'] or 0:.2f} |",
        f"| time to open all | {r['open_seconds']:.1f} s "
        f"({r['connections_open'] / r['open_seconds'] if r['open_seconds'] else 0:,.0f}/s) |",
        f"| proxy CPU while opening | {r['proxy_cpu_open_seconds']:.1f} s |",
        f"| proxy CPU while idle | {r['proxy_cpu_hold_seconds']:.2f} s |",
        f"| closed by the proxy during the hold | {r['closed_during_hold']} |",
        f"| time until the proxy closed its side | {r['close_seconds']:.1f} s |",
        f"| fds left after closing, vs before | {leftover:+d} (pooled member connections; "
        "the demo member's end is in the same process) |",
        f"| proxy RLIMIT_NOFILE (soft hard) | {r['proxy_nofile']} |",
        f"| proxy idle timeout | {r['idle_timeout']} |",
        "",
    ]
    if report["problems"]:
        lines.append("**FAILED**:")
        lines += [f"- {p}" for p in report["problems"]]
    else:
        lines.append("Every connection opened, answered, and stayed open through the hold.")
    lines.append(machine_line(report, load_line(report["machine"])))
    return "\n".join(lines) + "\n"


# --- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Settings:
    """The command line as `Settings`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.idle",
        description="Hold many idle keep-alive connections to ajpbalancer; its RSS and "
        "descriptors per connection. See bench/README.md.",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_CONNECTIONS,
        help=f"connections to open (default {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"connections opened at once (default {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=DEFAULT_HOLD,
        help=f"seconds to hold them idle (default {DEFAULT_HOLD:.0f})",
    )
    parser.add_argument(
        "--inflight",
        type=int,
        default=DEFAULT_INFLIGHT,
        help=f"requests in flight at once while opening (default {DEFAULT_INFLIGHT})",
    )
    parser.add_argument(
        "--sources",
        type=int,
        default=DEFAULT_SOURCES,
        help=f"loopback source addresses 127.0.0.11... (default {DEFAULT_SOURCES})",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 200_000:
        parser.error("--connections must be 1..200000")
    if not 1 <= args.batch <= 5000:
        parser.error("--batch must be 1..5000")
    if not 0 <= args.hold <= 3000:
        parser.error("--hold must be 0..3000 seconds")
    if not 1 <= args.inflight <= 5000:
        parser.error("--inflight must be 1..5000")
    if not 1 <= args.sources <= 200:
        parser.error("--sources must be 1..200")
    return Settings(
        connections=args.connections,
        batch=args.batch,
        hold=args.hold,
        inflight=args.inflight,
        sources=tuple(f"127.0.0.{11 + i}" for i in range(args.sources)),
        open_timeout=BUILTIN_IDLE_TIMEOUT * 10,
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write JSON and Markdown, print the table; 1 if it failed."""
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    started = time.monotonic()
    machine = machine_facts()
    for key in ("apache", "wrk", "tomcat", "java"):  # not used here
        machine.pop(key, None)
    result = Result(connections_asked=settings.connections)
    result.client_nofile = raise_nofile(settings.connections + FD_MARGIN)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="ajpb-idle-"))
        stack.callback(shutil.rmtree, workdir, True)
        print("starting ajpbalancer ...", file=sys.stderr, flush=True)
        config = ajpbalancer_config(free_port())
        try:
            proxy, dropped = start_proxy(config, OPTIONAL_LINES, workdir)
        except ProxyError as exc:
            raise SystemExit(f"ajpbalancer did not start: {exc}") from None
        stack.callback(proxy.stop)
        result.directives_left_out = dropped
        if "KeepAliveTimeout" in dropped:
            result.idle_timeout = f"{BUILTIN_IDLE_TIMEOUT:.0f} s (built in)"
            if settings.hold >= BUILTIN_IDLE_TIMEOUT / 2:
                print(
                    f"warning: no KeepAliveTimeout; the built-in {BUILTIN_IDLE_TIMEOUT:.0f} s "
                    f"idle timeout may close connections during a {settings.hold:.0f} s hold",
                    file=sys.stderr,
                )
        else:
            result.idle_timeout = OPTIONAL_LINES["KeepAliveTimeout"]
        config_text = proxy.config_path.read_text()
        measure(settings, proxy, result)
        if proxy.process is not None and proxy.process.poll() is not None:
            result.open_errors.append(f"the proxy exited: {proxy.log()[-1000:]}")
    machine["loadavg_end"] = os.getloadavg()
    problems = problems_of(result)
    report: dict[str, Any] = {
        "schema": 1,
        "benchmark": "idle",
        "command": [shown_program(sys.argv[0]), *sys.argv[1:]],
        "machine": machine,
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "out"},
            "request": REQUEST.decode(),
            "config": config_text,
            "settle_seconds": SETTLE_SECONDS,
        },
        "result": asdict(result),
        "problems": problems,
        "ok": not problems,
        "wall_seconds": time.monotonic() - started,
    }
    return finish("idle", report, markdown(report), settings.out, problems)


if __name__ == "__main__":
    sys.exit(main())
