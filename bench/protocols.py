"""Protocol comparison benchmark: Tomcat reached directly, through five proxies, and
through the seed's balancer setup in ajpbalancer and in Apache httpd.

In one run this starts one Tomcat 10 node, node1 on 127.0.0.2 (the integration tests'
fixture, with its access log off and the JVM's full JIT on; ``jvmRoute`` node1) and, in
front of it:

==================== =========================================================
``tomcat``           Tomcat direct over HTTP (the 1.00 of every ratio)
``ajpbalancer-http`` ajpbalancer, ``ProxyPass / http://127.0.0.2:PORT/``
``ajpbalancer-ajp``  ajpbalancer, ``ProxyPass / ajp://127.0.0.2:AJPPORT/``
``apache-http``      Apache httpd 2.4 mod_proxy_http (event MPM, 2 children)
``apache-ajp``       Apache httpd 2.4 mod_proxy_ajp (the 1.00 of "vs Apache AJP")
``nginx``            nginx over HTTP/1.1, one worker process, member keep-alive
``haproxy``          HAProxy ``mode http``, one thread, ``http-reuse always``
``twisted-proxy``    Twisted's own ``ReverseProxyResource`` over HTTP, the floor
==================== =========================================================

Seven proxy targets in all: nginx and HAProxy speak no AJP, so they proxy to Tomcat's
HTTP connector only.

The **seed targets** are the setup users run: a balancer of two Tomcat nodes,
node1 on 127.0.0.2 and node2 on 127.0.0.3 (same ports, ``jvmRoute`` node1 and node2),
with ``stickysession=JSESSIONID|jsessionid``, a ``ProxyPassMatch`` rule,
``ProxyPassReverse`` and ``ProxyPassReverseCookieDomain`` (`SeedSetup`, one description
written as ajpbalancer's config and as Apache's ``<Proxy balancer://…>``):

============================= ===================================================
``ajpbalancer-seed-http``     ajpbalancer, both nodes over HTTP
``ajpbalancer-seed-ajp``      ajpbalancer, both nodes over AJP
``apache-seed-http``          Apache httpd, mod_proxy_balancer + mod_proxy_http
``apache-seed-ajp``           Apache httpd, mod_proxy_balancer + mod_proxy_ajp (the
                              1.00 of the seed targets' "vs Apache AJP")
============================= ===================================================

node2 starts only when a seed target is asked for. wrk drives the seed targets with
``bench/_sticky.lua``: half of the requests carry ``JSESSIONID=x.node1`` or
``x.node2`` (sticky), half no cookie (balanced); each target is checked to route them
so before it is measured.

For every (concurrency, body size) cell it runs ``wrk -t1 -cC -dDs --latency`` against
each target in turn (a short warm-up first; the starting target rotates from cell to
cell), so that the noise of a shared machine falls on all targets alike. It records
requests/s, latency percentiles, errors, the proxy's CPU time per request (utime+stime
of the proxy's processes from ``/proc``, delta over the run, divided by the requests),
its RSS, and the Tomcat nodes' and wrk's CPU time too. A target that cannot start (nginx
or HAProxy not installed) or does not answer correctly is reported as unavailable, with
the reason, and the others carry on.

Results: ``OUT/protocols-STAMP.json`` (every raw figure and the machine's facts),
``OUT/protocols-STAMP.md`` (the table printed on stdout), ``OUT/latest.json`` pointing
at the newest. ``bench/plot.py`` draws the PNG. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import grp
import http.client
import importlib.metadata
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/protocols.py``
    sys.path.insert(0, str(REPO_ROOT))

from bench._report import machine_line, shown_program, size_label, target_list, write_report  # noqa: E402  (needs REPO_ROOT on sys.path)
from tests.integration.apache import (  # noqa: E402  (needs REPO_ROOT on sys.path)
    APACHE_BIN,
    MPM_CONFIG,
    Apache,
    ApacheError,
    ajp_proxy,
    group_members,
    http_proxy,
)
from tests.integration.balancerhelpers import STICKY, headers_path  # noqa: E402
from tests.integration.proxy import ProxyError, ProxyProcess, free_port, twistd  # noqa: E402
from tests.integration.tomcat import (  # noqa: E402
    CATALINA_HOME,
    Tomcat,
    TomcatError,
    find_free_ports,
    start_all,
)

# --- what is measured ---------------------------------------------------------------------

TARGETS: dict[str, str] = {
    "tomcat": "Tomcat direct (HTTP)",
    "ajpbalancer-http": "ajpbalancer → HTTP",
    "ajpbalancer-ajp": "ajpbalancer → AJP",
    "apache-http": "Apache mod_proxy_http",
    "apache-ajp": "Apache mod_proxy_ajp",
    "nginx": "nginx → HTTP (1 worker)",
    "haproxy": "HAProxy → HTTP (1 thread)",
    "twisted-proxy": "Twisted ReverseProxyResource",
    "ajpbalancer-seed-http": "ajpbalancer seed → HTTP (2 nodes, sticky)",
    "ajpbalancer-seed-ajp": "ajpbalancer seed → AJP (2 nodes, sticky)",
    "apache-seed-http": "Apache seed → HTTP (2 nodes, sticky)",
    "apache-seed-ajp": "Apache seed → AJP (2 nodes, sticky)",
}
"""Target names (for ``--targets``) and their labels, in the order of the tables."""

SEED_TARGETS = frozenset(name for name in TARGETS if "-seed-" in name)
"""The seed's setup: a sticky balancer of both nodes with reverse rewriting."""

BASELINE = "tomcat"
REFERENCE = "apache-ajp"
SEED_REFERENCE = "apache-seed-ajp"
"""Ratios are given to the baseline (Tomcat direct) and to the reference proxy of the
same setup: Apache mod_proxy_ajp to the one node, or Apache's seed balancer over AJP."""


def reference_of(name: str) -> str:
    """The target whose req/s and p99 are the 1.00 of `name`'s "vs Apache AJP"."""
    return SEED_REFERENCE if name in SEED_TARGETS else REFERENCE


NODES = (("node1", "127.0.0.2"), ("node2", "127.0.0.3"))
"""(name and jvmRoute, address) of the Tomcat nodes: node1 serves every target, node2
only the seed targets' balancers (started only when one of them is asked for)."""
TOMCAT_ADDRESS = NODES[0][1]
TOMCAT_PORTS = (28080, 28009)
"""Preferred (HTTP, AJP) ports, away from the test suite's 18080/18009; the same on
every node, as in the seed's setup."""
STICKY_SCRIPT = Path(__file__).resolve().parent / "_sticky.lua"
"""wrk's script for the seed targets: half the requests with a routed session cookie."""
STICKY_CHECKS = 3
"""Requests per route (and without one) with which `probe_seed` checks the routing."""
START_ATTEMPTS = 3

DEFAULT_DURATION = 5
DEFAULT_CONCURRENCY = (1, 32, 64)
DEFAULT_SIZES = (100, 65536)
LARGE_SIZE = 1 << 20
QUICK_DURATION = 2
QUICK_CONCURRENCY = (32,)
WARMUP_SECONDS = 1
"""Per target and cell, at the cell's concurrency and size, before the measured run."""
GLOBAL_WARMUP_SECONDS = 2
"""Per target once at start (100 B, 32 connections): JIT, pools, Apache children."""
WRK_TIMEOUT_SECONDS = 10
"""wrk's per-request timeout (its default of 2 s counts slow 1 MiB answers as errors)."""
WRK_GRACE_SECONDS = 30.0
"""A wrk process that outlives its duration by this much is killed."""
PROBE_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
LISTEN_BACKLOG = 511
"""Apache's ListenBacklog default, given to the Python proxies too (Twisted's is 50)."""

NGINX_BIN = Path(os.environ.get("AJPB_NGINX_BIN", "/usr/sbin/nginx"))
HAPROXY_BIN = Path(os.environ.get("AJPB_HAPROXY_BIN", "/usr/sbin/haproxy"))
"""The binaries of the Debian packages ``nginx`` and ``haproxy``."""
MEMBER_KEEPALIVE = 64
"""Idle member connections nginx keeps (``keepalive``): the highest default concurrency,
so that no run at up to 64 connections closes member connections it will want again."""
KEEPALIVE_REQUESTS = 1_000_000
"""nginx's cap on requests per client and per member connection (its default, 1000):
none in practice, as Apache's ``MaxKeepAliveRequests 0`` and Tomcat's ``-1``."""

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the benchmark uses (times in clock ticks)."""

    pid: int
    ppid: int
    pgid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        """CPU time of the process and of the children it has reaped."""
        return self.utime + self.stime + self.cutime + self.cstime


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` parsed, or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces and parentheses itself.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def all_stats() -> list[ProcStat]:
    """Every process visible in ``/proc``."""
    stats = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats.append(stat)
    return stats


def process_family(root: int) -> list[ProcStat]:
    """`root`, its descendants and, if it leads a process group, every member of that group.

    Apache's children share the group of the parent started in a session of its own;
    twistd's worker processes (``workers = N``) are its descendants.
    """
    stats = all_stats()
    children: dict[int, list[ProcStat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    family: dict[int, ProcStat] = {s.pid: s for s in stats if s.pgid == root}
    stack = [s for s in stats if s.pid == root]
    while stack:
        stat = stack.pop()
        family[stat.pid] = stat
        stack.extend(children.get(stat.pid, ()))
    return list(family.values())


def family_ticks(root: int) -> int:
    """CPU ticks (user + system, reaped children included) of `process_family(root)`."""
    return sum(s.ticks for s in process_family(root))


def _status_kib(pid: int, key: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def family_memory(root: int) -> tuple[int, int, int]:
    """(sum of VmRSS, sum of VmHWM, number of processes) of `process_family(root)`, KiB.

    For several processes the sums count shared pages once per process: an upper bound.
    """
    pids = [s.pid for s in process_family(root)]
    return (
        sum(_status_kib(p, "VmRSS") for p in pids),
        sum(_status_kib(p, "VmHWM") for p in pids),
        len(pids),
    )


# --- wrk ----------------------------------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_SIZE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_PERCENTILE = re.compile(rf"^\s*(\d+(?:\.\d+)?)%\s+{_TIME}\s*$", re.MULTILINE)
_LATENCY = re.compile(rf"^\s*Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", re.MULTILINE)
_TOTAL = re.compile(rf"(\d+) requests in {_TIME}, ([\d.]+)([KMGT]?B) read")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")


def _ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one ``wrk --latency`` run printed, in numbers (latencies in milliseconds)."""

    requests: int
    seconds: float
    rps: float
    bytes_read: int
    bytes_read_max: int
    """wrk prints two decimals (``1.10GB``): the most the true figure can be."""
    latency_ms: dict[str, float]
    """``avg``, ``max`` and the percentiles wrk prints: ``p50``, ``p75``, ``p90``, ``p99``."""
    socket_errors: dict[str, int]
    non_2xx_3xx: int

    @property
    def errors(self) -> int:
        """Socket errors of every kind plus answers with a status of 400 or more."""
        return sum(self.socket_errors.values()) + self.non_2xx_3xx


def parse_wrk(text: str) -> WrkResult:
    """Parse wrk's output; raise ValueError if it has no ``N requests in T`` line."""
    total = _TOTAL.search(text)
    if total is None:
        raise ValueError(f"no request count in wrk's output:\n{text}")
    latency: dict[str, float] = {}
    summary = _LATENCY.search(text)
    if summary is not None:
        latency["avg"] = _ms(summary.group(1), summary.group(2))
        latency["max"] = _ms(summary.group(5), summary.group(6))
    for match in _PERCENTILE.finditer(text):
        latency[f"p{match.group(1).removesuffix('.00')}"] = _ms(match.group(2), match.group(3))
    errors = _SOCKET_ERRORS.search(text)
    names = ("connect", "read", "write", "timeout")
    socket_errors = dict.fromkeys(names, 0)
    if errors is not None:
        socket_errors = {name: int(errors.group(i + 1)) for i, name in enumerate(names)}
    non_2xx = _NON_2XX.search(text)
    rps = _RPS.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1e3,
        rps=float(rps.group(1)) if rps else 0.0,
        bytes_read=int(float(total.group(4)) * _SIZE_UNITS[total.group(5)]),
        bytes_read_max=int((float(total.group(4)) + 0.005) * _SIZE_UNITS[total.group(5)]),
        latency_ms=latency,
        socket_errors=socket_errors,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def run_wrk(
    url: str, connections: int, seconds: int, script: Path | None = None
) -> tuple[str, float]:
    """Run ``wrk -t1 -cN -dDs --latency [-s SCRIPT] URL``; its output and CPU seconds.

    wrk is killed if it outlives its duration by `WRK_GRACE_SECONDS` (and on any error
    or Ctrl-C here, by `subprocess.run`).
    """
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        "--latency",
        *(["-s", str(script)] if script is not None else []),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + WRK_GRACE_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if result.returncode != 0:
        raise RuntimeError(f"wrk exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout, cpu


# --- the processes ------------------------------------------------------------------------


class BenchTomcat(Tomcat):
    """The test fixture's Tomcat, tuned for measuring rather than for starting fast.

    No access log (no target logs requests), and the JVM's full tiered JIT (the fixture
    stops at C1 to start quicker).
    """

    def server_xml(self) -> str:
        """The fixture's server.xml without the AccessLogValve."""
        xml = super().server_xml()
        return re.sub(r"\s*<Valve [^>]*AccessLogValve.*?/>", "", xml, flags=re.DOTALL)

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env["CATALINA_OPTS"] = env["CATALINA_OPTS"].replace("-XX:TieredStopAtLevel=1", "")
        return env


BENCH_MPM_CONFIG = """\
<IfModule mpm_event_module>
    StartServers 2
    ServerLimit 2
    ThreadLimit 64
    ThreadsPerChild 64
    MaxRequestWorkers 128
    MinSpareThreads 25
    MaxSpareThreads 128
    MaxConnectionsPerChild 0
</IfModule>"""
"""Two children of 64 threads, both started up front (none forked during a measured run).

With the fixture's 32 threads per child, or Debian's 25, a child that holds more
connections than it has threads runs out of idle workers under 64 connections, and the
event MPM then closes its keep-alive connections (wrk's read errors): here one child
can serve all 64 connections.
"""

APACHE_TWEAKS = (
    (MPM_CONFIG, BENCH_MPM_CONFIG),
    ("MaxKeepAliveRequests 100", "MaxKeepAliveRequests 0"),
)
"""Fixture settings changed for the benchmark: Debian's event MPM sizing, and unlimited
requests per client connection (as the Python proxies and Tomcat allow)."""


class BenchApache(Apache):
    """The test fixture's Apache httpd, with `APACHE_TWEAKS` and no access log."""

    def httpd_conf(self) -> str:
        """The fixture's httpd.conf, tweaked; what could not be applied is noted in it."""
        conf = super().httpd_conf()
        for old, new in APACHE_TWEAKS:
            if old in conf:
                conf = conf.replace(old, new)
            else:
                conf += f"\n# bench: not found, so not changed: {old.splitlines()[0]!r}\n"
        return re.sub(r"^CustomLog .*$", "# CustomLog: off for the benchmark", conf, flags=re.M)


@dataclass
class Target:
    """One thing wrk is pointed at: its base URL, the process to measure, and its state."""

    name: str
    base_url: str = ""
    proxy_pid: int | None = None
    """Root of the process family whose CPU and memory are the proxy's; None: no proxy."""
    alive: Callable[[], bool] = lambda: True
    log_tail: Callable[[], str] = lambda: ""
    available: bool = False
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    script: Path | None = None
    """wrk's ``-s`` script (the seed targets' `STICKY_SCRIPT`), None for plain GETs."""

    @property
    def label(self) -> str:
        return TARGETS[self.name]

    def url(self, size: int) -> str:
        return f"{self.base_url}/app/download?size={size}"

    def disable(self, reason: str) -> None:
        self.available = False
        self.reason = reason


def _tail(text: str, lines: int = 8, chars: int = 1500) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM `process` (by its PID), SIGKILL it after `timeout` s, and reap it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait until 127.0.0.1:`port` accepts; raise RuntimeError if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode} before listening")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
            conn.connect()
            conn.close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"not listening on port {port} after {timeout:.0f} s")


def start_tomcat(stack: contextlib.ExitStack) -> BenchTomcat:
    """Start one Tomcat node (``bench``, on `TOMCAT_ADDRESS`), as the other benchmarks use."""
    return start_nodes(stack, (("bench", TOMCAT_ADDRESS),))[0]


def start_nodes(
    stack: contextlib.ExitStack, nodes: Sequence[tuple[str, str]] = NODES
) -> list[BenchTomcat]:
    """Start Tomcat nodes (name and jvmRoute, address) in parallel, on the same ports.

    Tried again on fresh ports when another process won one of them meanwhile.
    """
    addresses = [address for _, address in nodes]
    tried: set[int] = set()
    error: TomcatError | None = None
    for _ in range(START_ATTEMPTS):
        http_port, ajp_port = find_free_ports(addresses, TOMCAT_PORTS, exclude=tried)
        tried.update((http_port, ajp_port))
        tomcats = [
            BenchTomcat(name, address, http_port, ajp_port, jvm_route=name)
            for name, address in nodes
        ]
        for tomcat in tomcats:
            stack.callback(tomcat.close)
        try:
            start_all(tomcats)
        except TomcatError as exc:
            for tomcat in tomcats:
                tomcat.close()
            error = exc
            if not exc.bind_failed:
                break
        else:
            return tomcats
    raise SystemExit(f"Tomcat could not start: {error}")


def ajpbalancer_config(member: str, workers: str) -> str:
    """The ajpbalancer config of a target: everything to `member`, no access log.

    No ProxyPassReverse (this config is older than ajpbalancer's, and was left as it was);
    Apache's has one, which costs nothing on answers without ``Location``,
    ``Content-Location`` or ``URI``, as these are. The seed targets (`SeedSetup`) have the
    same rules on both sides.
    """
    return (
        "# Written by bench/protocols.py\n"
        "[ajpbalancer]\n"
        f"workers = {workers}\n"
        "access_log = off\n"
        "\n"
        "[frontend:bench]\n"
        f"listen = tcp:{{port}}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}\n"
        f"ProxyPass = / {member}/\n"
    )


@dataclass(frozen=True, slots=True)
class SeedSetup:
    """The seed's setup, one description for ajpbalancer and for Apache.

    A balancer of the Tomcat nodes, each member with its jvmRoute as ``route``, sticky on
    Tomcat's session cookie and URL parameter; ``/app/…`` mapped to it by a
    ``ProxyPassMatch`` rule; ``ProxyPassReverse`` of the whole balancer; and
    ``ProxyPassReverseCookieDomain`` from each node's address to the public name.
    Answers of ``/app/download`` carry no ``Location`` nor ``Set-Cookie``: the rewriting
    rules cost what looking at an answer costs, as on most answers of an application.
    """

    members: tuple[tuple[str, str], ...]
    """(URL, route) of each member: ``ajp://127.0.0.2:AJPPORT``, ``node1``."""
    balancer: str = "mycluster"
    public_domain: str = "localhost"

    @classmethod
    def of(cls, nodes: Sequence[Tomcat], protocol: str) -> SeedSetup:
        """The setup over `protocol` (``ajp`` or ``http``) to every node of `nodes`."""
        if protocol not in ("ajp", "http"):
            raise ValueError(f"unknown member protocol {protocol!r}")
        return cls(
            tuple(
                (node.ajp_url if protocol == "ajp" else node.http_url, node.jvm_route)
                for node in nodes
            )
        )

    @property
    def match(self) -> tuple[str, str]:
        """The ``ProxyPassMatch`` rule: (regular expression, target)."""
        return "^/app/(.*)$", f"balancer://{self.balancer}/app/$1"

    @property
    def cookie_domains(self) -> list[tuple[str, str]]:
        """(internal, public) of each ``ProxyPassReverseCookieDomain``: each node's address."""
        hosts = dict.fromkeys(urlsplit(url).hostname or "" for url, _ in self.members)
        return [(host, self.public_domain) for host in hosts]

    def ajpbalancer_config(self, workers: str) -> str:
        """ajpbalancer's config: the frontend's rules and the ``[balancer://…]`` section."""
        pattern, target = self.match
        members = [f"{url} route={route}" for url, route in self.members]
        domains = [f"{internal} {public}" for internal, public in self.cookie_domains]
        return (
            "# Written by bench/protocols.py: the seed's setup\n"
            "[ajpbalancer]\n"
            f"workers = {workers}\n"
            "access_log = off\n"
            "\n"
            "[frontend:bench]\n"
            f"listen = tcp:{{port}}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}\n"
            f"ProxyPassMatch = {pattern} {target}\n"
            f"ProxyPassReverse = / balancer://{self.balancer}/\n"
            "ProxyPassReverseCookieDomain = " + _continued(domains, 31) + "\n"
            "\n"
            f"[balancer://{self.balancer}]\n"
            "BalancerMember = " + _continued(members, 17) + "\n"
            f"ProxySet = {STICKY}\n"
        )

    def apache_config(self) -> str:
        """The same as Apache httpd directives, inside the fixture's ``VirtualHost``."""
        pattern, target = self.match
        lines = [f"<Proxy balancer://{self.balancer}>"]
        lines += [f"    BalancerMember {url} route={route}" for url, route in self.members]
        lines += [f"    ProxySet {STICKY}", "</Proxy>"]
        lines.append(f"ProxyPassMatch {pattern} {target}")
        lines.append(f"ProxyPassReverse / balancer://{self.balancer}/")
        lines += [f"ProxyPassReverseCookieDomain {a} {b}" for a, b in self.cookie_domains]
        return "\n".join(lines) + "\n"


def _continued(values: Sequence[str], indent: int) -> str:
    """`values` as one INI value, one per line, continuation lines indented."""
    return ("\n" + " " * indent).join(values)


def start_ajpbalancer(
    target: Target, config: str, workdir: Path, stack: contextlib.ExitStack
) -> None:
    """Start ``twistd -n ajpbalancer`` with `config`; mark `target` unavailable if not."""
    directory = workdir / target.name
    directory.mkdir()
    proxy = ProxyProcess(config, directory)
    stack.callback(proxy.stop)
    target.details["config"] = proxy.config_path.read_text()
    try:
        proxy.start()
    except ProxyError as exc:
        target.disable(f"did not start: {_tail(str(exc))}")
        return
    assert proxy.process is not None
    process = proxy.process
    target.base_url = f"http://127.0.0.1:{proxy.port}"
    target.proxy_pid = proxy.pid
    target.alive = lambda: process.poll() is None
    target.log_tail = lambda: _tail(proxy.log())
    target.available = True


def start_apache(target: Target, config: str, stack: contextlib.ExitStack) -> None:
    """Start Apache httpd with `config` in its virtual host; unavailable if it cannot."""
    error: ApacheError | None = None
    for _ in range(START_ATTEMPTS):
        apache = BenchApache(proxy_config=config)
        stack.callback(apache.close)
        try:
            apache.start()
        except ApacheError as exc:
            apache.close()
            error = exc
            if exc.bind_failed:
                continue
            break
        _attach_apache(target, apache)
        return
    target.disable(f"did not start: {_tail(str(error))}")


def _attach_apache(target: Target, apache: Apache) -> None:
    """Point `target` at a started `apache` (its parent process leads the group measured)."""
    target.base_url = apache.url
    target.proxy_pid = apache.pid
    target.alive = lambda: apache.running
    target.log_tail = lambda: _tail(apache.error_log_tail())
    target.details["config"] = apache.config_path.read_text()
    target.available = True


def start_twisted_proxy(
    target: Target, tomcat: Tomcat, workdir: Path, stack: contextlib.ExitStack
) -> None:
    """Start Twisted's ReverseProxyResource (``bench/_twisted_proxy.py``) before Tomcat."""
    port = free_port()
    log_path = workdir / "twisted-proxy.log"
    script = Path(__file__).resolve().parent / "_twisted_proxy.py"
    cmd = [
        sys.executable,
        str(script),
        f"--port={port}",
        f"--backend-host={tomcat.address}",
        f"--backend-port={tomcat.http_port}",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    stack.callback(stop_process, process)

    def log_tail() -> str:
        return _tail(log_path.read_text(errors="replace"))

    try:
        wait_listening(port, process)
    except RuntimeError as exc:
        target.disable(f"did not start: {exc}: {log_tail()}")
        return
    target.base_url = f"http://127.0.0.1:{port}"
    target.proxy_pid = process.pid
    target.alive = lambda: process.poll() is None
    target.log_tail = log_tail
    target.available = True


def stop_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM `process` (by its PID), SIGKILL its process group after `timeout` s, reap it.

    For a server started in a session of its own, its workers in the group its PID
    names: nginx's master stops its workers on SIGTERM and exits after them. Workers
    a master that died left behind are killed too (while a process is in the group,
    the group's number names no other process).
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    if group_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def unprivileged_user(*names: str) -> tuple[str, str] | None:
    """(user, group) for a server's ``user`` setting: the first of `names` that exists.

    None unless this runs as root: only a master started as root can drop to another
    user (nginx ignores the setting otherwise, with a warning, and HAProxy refuses it).
    """
    if os.geteuid() != 0:
        return None
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        try:
            return name, grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            continue
    return None


def nginx_config(port: int, member: str, directory: Path) -> str:
    """nginx as a reverse proxy of `member` (``HOST:PORT``), everything in `directory`.

    One worker process (the master only starts it and stops it), member connections kept
    alive (HTTP/1.1, ``Connection`` cleared, `MEMBER_KEEPALIVE` idle ones kept), no cap
    on requests per connection worth the name, no access log, and no temporary files for
    answers (``proxy_max_temp_file_size 0``: a body that outgrows the buffers waits for
    the client, as in the other proxies, instead of going to disk). Workers run as
    ``www-data`` (or ``nobody``) when started as root.
    """
    user = unprivileged_user("www-data", "nobody")
    drop = f"user {user[0]} {user[1]};\n" if user else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "# Written by bench/protocols.py\n"
        f"{drop}"
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "\n"
        "events {\n"
        "    worker_connections 1024;\n"
        "}\n"
        "\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp}\n"
        f"    keepalive_requests {KEEPALIVE_REQUESTS};\n"
        "    keepalive_timeout 60s;\n"
        "\n"
        "    upstream tomcat {\n"
        f"        server {member};\n"
        f"        keepalive {MEMBER_KEEPALIVE};\n"
        f"        keepalive_requests {KEEPALIVE_REQUESTS};\n"
        "        keepalive_timeout 60s;\n"
        "    }\n"
        "\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port} backlog={LISTEN_BACKLOG};\n"
        "        location / {\n"
        "            proxy_pass http://tomcat;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_max_temp_file_size 0;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def haproxy_config(port: int, member: str) -> str:
    """HAProxy in ``mode http`` in front of `member` (``HOST:PORT``): one thread, no log.

    Client and member connections kept alive; ``http-reuse always`` lets any request use
    an idle member connection, as nginx's ``keepalive``, Apache's and ajpbalancer's pools
    do (``safe``, the default, keeps each client connection's first request off them).
    Drops to the user ``haproxy`` (or ``nobody``) when started as root.
    """
    user = unprivileged_user("haproxy", "nobody")
    drop = f"    user {user[0]}\n    group {user[1]}\n" if user else ""
    return (
        "# Written by bench/protocols.py\n"
        "global\n"
        "    nbthread 1\n"
        "    maxconn 4096\n"
        f"{drop}"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    no log\n"
        "    option http-keep-alive\n"
        "    timeout connect 5s\n"
        "    timeout client 60s\n"
        "    timeout server 60s\n"
        "    timeout http-request 10s\n"
        "    timeout http-keep-alive 60s\n"
        "\n"
        "frontend bench\n"
        f"    bind 127.0.0.1:{port} backlog {LISTEN_BACKLOG}\n"
        "    default_backend tomcat\n"
        "\n"
        "backend tomcat\n"
        "    http-reuse always\n"
        f"    server tomcat {member}\n"
    )


def start_nginx(target: Target, tomcat: Tomcat, stack: contextlib.ExitStack) -> None:
    """Start nginx in the foreground (its master and one worker) in front of Tomcat's HTTP."""

    def configure(port: int, directory: Path) -> tuple[list[str], Path]:
        config = directory / "nginx.conf"
        config.write_text(nginx_config(port, f"{tomcat.address}:{tomcat.http_port}", directory))
        # -e: the error log from the start, before the config names it (not /var/log).
        error_log = directory / "error.log"
        cmd = [str(NGINX_BIN), "-p", f"{directory}/", "-c", str(config), "-e", str(error_log)]
        return cmd, config

    start_server(target, NGINX_BIN, "nginx", configure, stack)


def start_haproxy(target: Target, tomcat: Tomcat, stack: contextlib.ExitStack) -> None:
    """Start HAProxy in the foreground (``-db``: one process) in front of Tomcat's HTTP."""

    def configure(port: int, directory: Path) -> tuple[list[str], Path]:
        config = directory / "haproxy.cfg"
        config.write_text(haproxy_config(port, f"{tomcat.address}:{tomcat.http_port}"))
        return [str(HAPROXY_BIN), "-db", "-f", str(config)], config

    start_server(target, HAPROXY_BIN, "haproxy", configure, stack)


def start_server(
    target: Target,
    binary: Path,
    package: str,
    configure: Callable[[int, Path], tuple[list[str], Path]],
    stack: contextlib.ExitStack,
) -> None:
    """Start a proxy server that is not Python (nginx, HAProxy); unavailable if it cannot.

    It gets a temporary directory of its own (config, logs, pid and temporary files,
    readable by the user its workers may drop to), where ``configure(port, directory)``
    writes its config for 127.0.0.1:`port` and returns its command line and the config
    file. It runs in the foreground, in a session of its own (its workers in its process
    group: `stop_group`), stdout and stderr to ``console.log``; tried again on a fresh
    port if another process took the one chosen meanwhile.
    """
    if not os.access(binary, os.X_OK):
        target.disable(f"not installed: {binary} missing (apt install {package})")
        return
    directory = Path(tempfile.mkdtemp(prefix=f"ajpb-bench-{target.name}-"))
    stack.callback(shutil.rmtree, directory, True)
    directory.chmod(0o755)

    def log_tail() -> str:
        logs = sorted(directory.glob("*.log"))
        return _tail("\n".join(path.read_text(errors="replace") for path in logs))

    error = ""
    for _ in range(START_ATTEMPTS):
        for old in directory.glob("*.log"):
            old.unlink()
        port = free_port()
        cmd, config = configure(port, directory)
        with (directory / "console.log").open("wb") as console:
            process = subprocess.Popen(
                cmd,
                cwd=directory,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: its workers go with it
            )
        stack.callback(stop_group, process)
        try:
            wait_listening(port, process)
        except RuntimeError as exc:
            stop_group(process)
            error = f"{exc}: {log_tail()}"
            if "in use" in error:
                continue
            break
        _attach_server(target, process, port, config.read_text(), log_tail)
        return
    target.disable(f"did not start: {error}")


def _attach_server(
    target: Target,
    process: subprocess.Popen[bytes],
    port: int,
    config: str,
    log_tail: Callable[[], str],
) -> None:
    """Point `target` at a started server listening on 127.0.0.1:`port`."""
    target.base_url = f"http://127.0.0.1:{port}"
    target.proxy_pid = process.pid
    target.alive = lambda: process.poll() is None
    target.log_tail = log_tail
    target.details["config"] = config
    target.available = True


def _get(
    target: Target, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes] | None:
    """GET `path` through `target` on a new connection; None (target disabled) if it fails."""
    host, _, port = target.base_url.removeprefix("http://").partition(":")
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=PROBE_TIMEOUT)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        target.disable(f"GET {path} failed: {exc!r}; log: {target.log_tail()}")
        return None


def probe(target: Target, sizes: Sequence[int]) -> None:
    """GET every size once through `target`: 200 and exactly that many bytes, else unavailable."""
    for size in sizes:
        path = f"/app/download?size={size}"
        answer = _get(target, path)
        if answer is None:
            return
        response, body = answer
        if response.status != 200 or len(body) != size:
            target.disable(
                f"GET {path} answered {response.status} with {len(body)} bytes "
                f"({body[:200]!r}); log: {target.log_tail()}"
            )
            return


def _served_by(
    target: Target, path: str, count: int, headers: dict[str, str] | None = None
) -> list[str | None] | None:
    """The node (``X-Node``) that served each of `count` GETs of `path`; None if one failed."""
    served: list[str | None] = []
    for _ in range(count):
        answer = _get(target, path, headers)
        if answer is None:
            return None
        served.append(answer[0].getheader("X-Node"))
    return served


def probe_seed(target: Target, setup: SeedSetup) -> None:
    """Check that a seed target routes and rewrites as configured; unavailable if not.

    A request with ``JSESSIONID=x.ROUTE`` (cookie, or ``;jsessionid=`` in the path) is
    served by that node every time; requests without one reach every node; and a
    ``Set-Cookie`` with a node's address as domain comes back with the public one. What
    was checked goes into the target's details (the JSON).
    """
    routes = [route for _, route in setup.members]
    checks: list[str] = []
    for route in routes:
        forms: tuple[tuple[str, str, dict[str, str]], ...] = (
            ("cookie", "/app/download?size=0", {"Cookie": f"JSESSIONID=x.{route}"}),
            ("URL", f"/app/download;jsessionid=x.{route}?size=0", {}),
        )
        for form, path, headers in forms:
            served = _served_by(target, path, STICKY_CHECKS, headers)
            if served is None:
                return
            if served != [route] * STICKY_CHECKS:
                target.disable(f"session of route {route} ({form}) served by {served}")
                return
            checks.append(f"{form} route {route}: {STICKY_CHECKS} of {STICKY_CHECKS} on {route}")
    served = _served_by(target, "/app/download?size=0", 2 * STICKY_CHECKS)
    if served is None:
        return
    if set(served) != set[str | None](routes):
        target.disable(f"requests without a session served by {served}, not by all of {routes}")
        return
    checks.append(f"no session: {len(served)} requests on {', '.join(sorted(routes))}")
    internal, public = setup.cookie_domains[0]
    answer = _get(target, headers_path([f"Set-Cookie:X=1; Domain={internal}; Path=/app"]))
    if answer is None:
        return
    cookie = answer[0].getheader("Set-Cookie")
    if cookie != f"X=1; Domain={public}; Path=/app":
        target.disable(f"Set-Cookie with Domain={internal} came back as {cookie!r}")
        return
    checks.append(f"Set-Cookie Domain={internal} came back as Domain={public}")
    target.details["checks"] = checks


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run measures."""

    duration: int
    concurrency: tuple[int, ...]
    sizes: tuple[int, ...]
    targets: tuple[str, ...]
    warmup: int
    global_warmup: int
    rounds: int
    workers: str
    out: Path


def measure(
    target: Target, nodes: Sequence[Tomcat], settings: Settings, conc: int, size: int
) -> dict[str, Any]:
    """Warm up, then one measured wrk run against `target`; every figure of it as a dict.

    Tomcat's CPU is that of every node running (node2 idles but for the seed targets).
    """
    url = target.url(size)
    if settings.warmup > 0:
        run_wrk(url, conc, settings.warmup, target.script)
    pids = {node.name: node.pid for node in nodes}
    proxy = target.proxy_pid
    proxy_before = family_ticks(proxy) if proxy is not None else 0
    nodes_before = {name: family_ticks(pid) for name, pid in pids.items() if pid is not None}
    started = time.monotonic()
    output, wrk_cpu = run_wrk(url, conc, settings.duration, target.script)
    wall = time.monotonic() - started
    node_ticks = {
        name: family_ticks(pid) - nodes_before[name]
        for name, pid in pids.items()
        if pid is not None and name in nodes_before
    }
    tomcat_ticks = sum(node_ticks.values())
    result = parse_wrk(output)
    requests = result.requests
    record: dict[str, Any] = {
        "target": target.name,
        "concurrency": conc,
        "size": size,
        "url": url,
        "requests": requests,
        "seconds": result.seconds,
        "rps": result.rps,
        "bytes_read": result.bytes_read,
        "bytes_per_request": result.bytes_read / requests if requests else None,
        # wrk counts 3xx as success and never checks a body: whole bodies show here.
        "short_bodies": requests > 0 and result.bytes_read_max < requests * size,
        "latency_ms": result.latency_ms,
        "p50_ms": result.latency_ms.get("p50"),
        "p99_ms": result.latency_ms.get("p99"),
        "socket_errors": result.socket_errors,
        "non_2xx_3xx": result.non_2xx_3xx,
        "errors": result.errors,
        "wall_seconds": wall,
        "wrk_cpu_seconds": wrk_cpu,
        "tomcat_cpu_seconds": tomcat_ticks / CLK_TCK,
        "tomcat_cpu_seconds_by_node": {n: t / CLK_TCK for n, t in node_ticks.items()},
        "tomcat_cpu_us_per_request": tomcat_ticks / CLK_TCK / requests * 1e6 if requests else None,
        "proxy_cpu_seconds": None,
        "proxy_cpu_us_per_request": None,
        "proxy_cpu_cores": None,
        "proxy_rss_kib": None,
        "proxy_peak_rss_kib": None,
        "proxy_processes": None,
        "wrk_output": output,
    }
    if proxy is not None:
        ticks = family_ticks(proxy) - proxy_before
        rss, peak, count = family_memory(proxy)
        cpu = ticks / CLK_TCK
        record.update(
            proxy_cpu_seconds=cpu,
            proxy_cpu_us_per_request=cpu / requests * 1e6 if requests else None,
            proxy_cpu_cores=cpu / wall if wall > 0 else None,
            proxy_rss_kib=rss,
            proxy_peak_rss_kib=peak,
            proxy_processes=count,
        )
    return record


def cells(settings: Settings) -> Iterator[tuple[int, int]]:
    """(concurrency, size) in the order measured: by concurrency, then by size."""
    for conc in settings.concurrency:
        for size in settings.sizes:
            yield conc, size


def run(
    settings: Settings,
    targets: dict[str, Target],
    nodes: Sequence[Tomcat],
    runs: list[dict[str, Any]],
) -> None:
    """Every cell, every round, every available target in rotating order, into `runs`.

    Runs are appended as they finish, so an interrupted run still reports them.
    """
    names = list(targets)
    for index, (conc, size) in enumerate(cells(settings)):
        for round_ in range(settings.rounds):
            shift = (index * settings.rounds + round_) % len(names)
            order = names[shift:] + names[:shift]
            for position, name in enumerate(order):
                target = targets[name]
                if not target.available:
                    continue
                print(
                    f"  c={conc:<3} {size_label(size):>7} round {round_ + 1}: {name}",
                    file=sys.stderr,
                    flush=True,
                )
                try:
                    record = measure(target, nodes, settings, conc, size)
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                    record = {"target": name, "concurrency": conc, "size": size, "failed": str(exc)}
                record.update(round=round_, position=position)
                runs.append(record)
                for node in nodes:
                    if not node.running:
                        raise SystemExit(
                            f"Tomcat {node.name} died during the run:\n{node.log_tail()}"
                        )
                if not target.alive():
                    target.disable(
                        f"its process exited during the run (c={conc}, {size} B): "
                        f"{target.log_tail()}"
                    )


def global_warmup(settings: Settings, targets: dict[str, Target]) -> None:
    """Each available target once, 100 B at 32 connections (JIT, pools, caches)."""
    if settings.global_warmup <= 0:
        return
    for target in targets.values():
        if target.available:
            print(f"  warm-up: {target.name}", file=sys.stderr, flush=True)
            try:
                run_wrk(target.url(min(settings.sizes)), 32, settings.global_warmup, target.script)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                target.disable(f"warm-up failed: {exc}")


# --- summary ------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """Per cell and target, the run of median requests/s, with ratios within the cell."""
    summary = []
    for conc, size in cells(settings):
        chosen: dict[str, dict[str, Any]] = {}
        for name in settings.targets:
            measured = [
                r
                for r in runs
                if r["target"] == name
                and r["concurrency"] == conc
                and r["size"] == size
                and "rps" in r
            ]
            if measured:
                measured.sort(key=lambda r: r["rps"])
                chosen[name] = measured[(len(measured) - 1) // 2]
        results = {}
        for name, record in chosen.items():
            entry = {
                key: record[key]
                for key in (
                    "rps",
                    "p50_ms",
                    "p99_ms",
                    "errors",
                    "proxy_cpu_us_per_request",
                    "proxy_cpu_cores",
                    "proxy_rss_kib",
                    "proxy_peak_rss_kib",
                    "tomcat_cpu_us_per_request",
                    "short_bodies",
                )
            }
            entry["rounds"] = sum(
                1
                for r in runs
                if r["target"] == name and r["concurrency"] == conc and r["size"] == size
            )
            entry["reference"] = reference_of(name)
            for ratio, other in (("vs_tomcat", BASELINE), ("vs_apache_ajp", reference_of(name))):
                base = chosen.get(other)
                entry[ratio] = record["rps"] / base["rps"] if base and base["rps"] else None
            base = chosen.get(reference_of(name))
            entry["p99_vs_apache_ajp"] = (
                record["p99_ms"] / base["p99_ms"]
                if base and base.get("p99_ms") and record.get("p99_ms") is not None
                else None
            )
            results[name] = entry
        summary.append({"concurrency": conc, "size": size, "results": results})
    return summary


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown tables of a report: results per cell, the performance targets, unavailable."""
    lines = [
        "| conc | body | target | req/s | vs Tomcat | vs Apache AJP | p50 ms | p99 ms "
        "| proxy CPU µs/req | proxy cores | proxy RSS MiB (peak) | errors |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in report["cells"]:
        for name, label in TARGETS.items():
            entry = cell["results"].get(name)
            if entry is None:
                continue
            rss = entry["proxy_rss_kib"]
            peak = entry["proxy_peak_rss_kib"]
            memory = "—" if rss is None else f"{rss / 1024:.0f} ({peak / 1024:.0f})"
            lines.append(
                f"| {cell['concurrency']} | {size_label(cell['size'])} | {label} "
                f"| {entry['rps']:,.0f} | {_fmt(entry['vs_tomcat'], '.2f')} "
                f"| {_fmt(entry['vs_apache_ajp'], '.2f')} | {_fmt(entry['p50_ms'], '.2f')} "
                f"| {_fmt(entry['p99_ms'], '.2f')} "
                f"| {_fmt(entry['proxy_cpu_us_per_request'], '.0f')} "
                f"| {_fmt(entry['proxy_cpu_cores'], '.2f')} | {memory} | {entry['errors']}"
                f"{' (short bodies!)' if entry['short_bodies'] else ''} |"
            )
    lines.append("")
    if SEED_TARGETS.intersection(report["targets"]):
        lines += [
            '"vs Apache AJP": the seed targets ÷ Apache\'s seed balancer over AJP, the '
            "others ÷ Apache mod_proxy_ajp to node1. Seed targets: a sticky balancer of two "
            "Tomcat nodes (ProxyPassMatch, ProxyPassReverse, ProxyPassReverseCookieDomain); "
            "half the requests carry JSESSIONID=x.node1 or x.node2.",
            "",
        ]
    for group, judged in report.get("bars", {}).items():
        if judged:
            lines += [f"| {group}, c={BAR_CONCURRENCY} | measured | verdict |", "|---|---:|---|"]
            lines += [f"| {j['label']} | {j['value']:.2f} | {j['verdict']} |" for j in judged]
            lines.append("")
    for name, target in report["targets"].items():
        if not target["available"]:
            reason = " ".join(str(target["reason"]).split())
            lines.append(f"- **{TARGETS[name]}** unavailable: {reason[:400]}")
    machine, settings = report["machine"], report["settings"]
    servers = [machine["tomcat"], machine["apache"]]
    servers += [machine[name] for name in ("nginx", "haproxy") if name in report["targets"]]
    lines.append(
        machine_line(
            report,
            *servers,
            f"wrk -t1, {settings['duration']} s per run, {settings['rounds']} round(s)",
        )
    )
    return "\n".join(lines) + "\n"


BAR_CONCURRENCY = 32
"""The concurrency the performance targets are set at (``wrk -t1 -c32``)."""


@dataclass(frozen=True, slots=True)
class Bar:
    """A ratio a performance target names: `key` of `target` ÷ `key` of `other`, in one body size.

    With `bound`, met when the ratio is at least it (`higher`) or at most it; without, the
    ratio is only shown.
    """

    label: str
    target: str
    other: str
    size: int
    key: str = "rps"
    bound: float | None = None
    higher: bool = True


def one_node_bars(sizes: Sequence[int]) -> list[Bar]:
    """The one-node targets: ajpbalancer to one node, at `sizes`."""
    ajp, own_http, twisted = "ajpbalancer-ajp", "ajpbalancer-http", "twisted-proxy"
    bars = [
        Bar("AJP ÷ Apache AJP req/s", ajp, REFERENCE, 100, bound=0.5),
        Bar("AJP ÷ Apache AJP req/s", ajp, REFERENCE, 65536, bound=0.6),
    ]
    for size in sizes:
        bars += [
            Bar("AJP ÷ Twisted proxy req/s", ajp, twisted, size, bound=3.0),
            Bar("HTTP ÷ Twisted proxy req/s", own_http, twisted, size, bound=3.0),
            Bar(
                "AJP ÷ own HTTP path req/s",
                ajp,
                own_http,
                size,
                bound=0.9 if size < 65536 else 1.0,
            ),
            Bar("AJP p99 ÷ Apache AJP p99", ajp, REFERENCE, size, "p99_ms", 2.0, higher=False),
        ]
    return bars


def seed_bars(sizes: Sequence[int]) -> list[Bar]:
    """The seed setup's ratios, one process (``workers = 1``), at `sizes`."""
    ajp, http = "ajpbalancer-seed-ajp", "ajpbalancer-seed-http"
    apache_ajp, apache_http = SEED_REFERENCE, "apache-seed-http"
    cpu = "proxy_cpu_us_per_request"
    bars = []
    for size in sizes:
        bars += [
            Bar(
                "seed AJP: ajpbalancer ÷ Apache req/s",
                ajp,
                apache_ajp,
                size,
                bound={100: 0.5, 65536: 0.8}.get(size),
            ),
            Bar(
                "seed AJP: proxy CPU/req ajpbalancer ÷ Apache",
                ajp,
                apache_ajp,
                size,
                cpu,
                bound=2.0 if size == 100 else None,
                higher=False,
            ),
            Bar(
                "seed: ajpbalancer AJP ÷ own HTTP req/s",
                ajp,
                http,
                size,
                bound=0.9 if size == 100 else None,
            ),
            Bar("seed HTTP: ajpbalancer ÷ Apache req/s", http, apache_http, size),
            Bar(
                "seed AJP: p99 ajpbalancer ÷ Apache",
                ajp,
                apache_ajp,
                size,
                "p99_ms",
                2.0,
                higher=False,
            ),
        ]
    return bars


def judge(cells: Sequence[dict[str, Any]], bars: Sequence[Bar]) -> list[dict[str, Any]]:
    """Each bar the cells at `BAR_CONCURRENCY` can speak to: its ratio and verdict."""
    by_size = {c["size"]: c["results"] for c in cells if c["concurrency"] == BAR_CONCURRENCY}
    judged = []
    for bar in bars:
        results = by_size.get(bar.size, {})
        x, y = results.get(bar.target), results.get(bar.other)
        if x is None or y is None or x.get(bar.key) is None or not y.get(bar.key):
            continue
        value = x[bar.key] / y[bar.key]
        if bar.bound is None:
            met, verdict = None, "shown (no bar)"
        else:
            met = value >= bar.bound if bar.higher else value <= bar.bound
            sign = "≥" if bar.higher else "≤"
            verdict = f"{'met' if met else 'not met'} ({sign} {bar.bound:g})"
        judged.append(
            {
                **dataclasses.asdict(bar),
                "label": f"{bar.label}, {size_label(bar.size)}",
                "concurrency": BAR_CONCURRENCY,
                "value": value,
                "met": met,
                "verdict": verdict,
            }
        )
    return judged


# --- machine facts ------------------------------------------------------------------------


def _command_output(cmd: Sequence[str], timeout: float = 30.0) -> str:
    try:
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (result.stdout + result.stderr).strip()


def _first_match(pattern: str, text: str, default: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else default


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, software versions, date, load."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    meminfo = Path("/proc/meminfo").read_text(errors="replace")
    tomcat = _command_output(
        [
            "java",
            "-cp",
            str(CATALINA_HOME / "lib" / "catalina.jar"),
            "org.apache.catalina.util.ServerInfo",
        ]
    )
    git = ["git", "-C", str(REPO_ROOT)]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _first_match(r"^model name\s*:\s*(.+)$", cpuinfo, platform.machine()),
        "mem_total": _first_match(r"^MemTotal:\s*(.+)$", meminfo, "unknown"),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": shown_program(sys.executable),
        "twisted": _version("twisted"),
        "ajpbalancer": _version("ajpbalancer"),
        # What the proxy process runs: the installed package, native or pure Python.
        "ajpbalancer_build": _command_output([twistd(), "ajpbalancer", "--version"]).strip(),
        "git_commit": _command_output([*git, "rev-parse", "HEAD"]),
        "git_dirty": bool(_command_output([*git, "status", "--porcelain", "--", "ajpbalancer"])),
        "tomcat": _first_match(r"Server version:\s*(.+)$", tomcat, "Tomcat (version unknown)"),
        "java": _command_output(["java", "-version"]).splitlines()[0],
        "apache": _first_match(
            r"Server version:\s*(.+)$",
            _command_output([str(APACHE_BIN), "-v"]),
            "Apache (version unknown)",
        ),
        "nginx": _first_match(
            r"nginx version:\s*(.+)$",
            _command_output([str(NGINX_BIN), "-v"]),
            "nginx (version unknown)",
        ),
        "haproxy": "HAProxy "
        + _first_match(
            r"^HAProxy version (\S+)",
            _command_output([str(HAPROXY_BIN), "-v"]),
            "(version unknown)",
        ),
        "wrk": _first_match(r"^(wrk \S+)", _command_output(["wrk", "-v"]), "wrk"),
        "loadavg_start": os.getloadavg(),
    }


# --- command line -------------------------------------------------------------------------


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers: {text!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> Settings:
    """The command line as `Settings` (explicit flags win over ``--quick``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.protocols",
        description="Tomcat direct vs ajpbalancer (HTTP, AJP) vs Apache httpd (HTTP, AJP), "
        "nginx, HAProxy and Twisted's proxy, and the seed's sticky balancer of two nodes in "
        "ajpbalancer and Apache (HTTP, AJP), with wrk, in one run. See bench/README.md.",
    )
    parser.add_argument(
        "--duration", type=int, help=f"seconds per run (default {DEFAULT_DURATION})"
    )
    parser.add_argument(
        "--concurrency", type=_int_list, help="connections, comma-separated (default 1,32,64)"
    )
    parser.add_argument("--sizes", type=_int_list, help="body bytes (default 100,65536)")
    parser.add_argument("--large", action="store_true", help="add 1 MiB bodies to the sizes")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test: concurrency 32, {QUICK_DURATION} s"
    )
    parser.add_argument(
        "--targets",
        type=target_list(TARGETS),
        default=tuple(TARGETS),
        help=f"comma-separated subset of: {', '.join(TARGETS)}",
    )
    parser.add_argument(
        "--warmup", type=int, help=f"warm-up seconds per target and cell (default {WARMUP_SECONDS})"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measured runs per target and cell, interleaved; the median is reported",
    )
    parser.add_argument(
        "--workers", default="1", help="ajpbalancer's 'workers' setting (N or auto; default 1)"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.rounds > 20:
        parser.error("--rounds must be 1..20")
    if not re.fullmatch(r"\d+|auto", args.workers):
        parser.error("--workers must be a number or 'auto'")
    duration = args.duration or (QUICK_DURATION if args.quick else DEFAULT_DURATION)
    if not 1 <= duration <= 600:
        parser.error("--duration must be 1..600 seconds")
    sizes = args.sizes or DEFAULT_SIZES
    if args.large and LARGE_SIZE not in sizes:
        sizes = (*sizes, LARGE_SIZE)
    warmup = args.warmup if args.warmup is not None else WARMUP_SECONDS
    return Settings(
        duration=duration,
        concurrency=args.concurrency or (QUICK_CONCURRENCY if args.quick else DEFAULT_CONCURRENCY),
        sizes=sizes,
        targets=args.targets,
        warmup=max(0, min(warmup, 60)),
        global_warmup=0 if args.quick else GLOBAL_WARMUP_SECONDS,
        rounds=args.rounds,
        workers=args.workers,
        out=args.out,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every ``finally`` stops what it started."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; write the JSON and Markdown; print the table."""
    settings = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found (apt install wrk)")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    started = time.monotonic()
    machine = machine_facts()
    targets = {name: Target(name) for name in settings.targets}
    runs: list[dict[str, Any]] = []
    aborted: str | None = None
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="ajpb-bench-"))
        stack.callback(shutil.rmtree, workdir, True)
        seed = bool(SEED_TARGETS.intersection(settings.targets))
        print(f"starting Tomcat ({'two nodes' if seed else 'one node'}) ...", file=sys.stderr)
        nodes = start_nodes(stack, NODES if seed else NODES[:1])
        try:
            print("starting the proxies ...", file=sys.stderr, flush=True)
            start_targets(targets, nodes, settings, workdir, stack)
            for name, target in targets.items():
                if target.available:
                    probe(target, settings.sizes)
                if target.available and name in SEED_TARGETS:
                    probe_seed(target, SeedSetup.of(nodes, name.rsplit("-", 1)[1]))
            global_warmup(settings, targets)
            run(settings, targets, nodes, runs)
        except (KeyboardInterrupt, SystemExit) as exc:
            aborted = f"interrupted ({type(exc).__name__} {exc})"
            raise
        finally:
            print("stopping everything ...", file=sys.stderr, flush=True)
            stack.close()
            if runs or aborted is None:
                report = build_report(
                    settings,
                    machine=machine,
                    targets=targets,
                    nodes=nodes,
                    runs=runs,
                    started=started,
                    aborted=aborted,
                )
                write_report("protocols", report, markdown(report), settings.out, latest=True)
    return 0


def start_targets(
    targets: dict[str, Target],
    nodes: Sequence[Tomcat],
    settings: Settings,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> None:
    """Start the process behind every target asked for (the Tomcat nodes are already up).

    Every target but the seed ones goes to the first node alone.
    """
    tomcat = nodes[0]
    for name, target in targets.items():
        if name == "tomcat":
            target.base_url = tomcat.http_url
            target.alive = lambda: tomcat.running
            target.log_tail = lambda: _tail(tomcat.log_tail())
            target.available = True
        elif name == "ajpbalancer-http":
            config = ajpbalancer_config(tomcat.http_url, settings.workers)
            start_ajpbalancer(target, config, workdir, stack)
        elif name == "ajpbalancer-ajp":
            config = ajpbalancer_config(tomcat.ajp_url, settings.workers)
            start_ajpbalancer(target, config, workdir, stack)
        elif name == "apache-http":
            start_apache(target, http_proxy(tomcat.http_url, path="/"), stack)
        elif name == "apache-ajp":
            start_apache(target, ajp_proxy(tomcat.ajp_url, path="/"), stack)
        elif name == "nginx":
            start_nginx(target, tomcat, stack)
        elif name == "haproxy":
            start_haproxy(target, tomcat, stack)
        elif name == "twisted-proxy":
            start_twisted_proxy(target, tomcat, workdir, stack)
        elif name in SEED_TARGETS:
            proxy, _, protocol = name.partition("-seed-")
            setup = SeedSetup.of(nodes, protocol)
            target.script = STICKY_SCRIPT
            if proxy == "ajpbalancer":
                config = setup.ajpbalancer_config(settings.workers)
                start_ajpbalancer(target, config, workdir, stack)
            else:
                start_apache(target, setup.apache_config(), stack)


def build_report(
    settings: Settings,
    *,
    machine: dict[str, Any],
    targets: dict[str, Target],
    nodes: Sequence[Tomcat],
    runs: list[dict[str, Any]],
    started: float,
    aborted: str | None,
) -> dict[str, Any]:
    """Everything of the run as one JSON-able dict."""
    machine = {**machine, "loadavg_end": os.getloadavg()}
    report: dict[str, Any] = {
        "schema": 1,
        "command": [shown_program(sys.argv[0]), *sys.argv[1:]],
        "machine": machine,
        "settings": {
            **{k: v for k, v in dataclasses.asdict(settings).items() if k != "out"},
            "wrk": f"wrk -t1 -cC -d{settings.duration}s --timeout={WRK_TIMEOUT_SECONDS}s --latency",
            "clk_tck": CLK_TCK,
            "tomcat": {
                "address": nodes[0].address,
                "http_port": nodes[0].http_port,
                "ajp_port": nodes[0].ajp_port,
                "tweaks": "no AccessLogValve; full tiered JIT",
                "nodes": [
                    {"name": node.name, "address": node.address, "jvm_route": node.jvm_route}
                    for node in nodes
                ],
            },
            "sticky_script": STICKY_SCRIPT.read_text() if SEED_TARGETS & set(targets) else None,
            "apache_tweaks": [f"{a}\n->\n{b}" for a, b in APACHE_TWEAKS] + ["CustomLog off"],
        },
        "targets": {
            name: {
                "label": t.label,
                "available": t.available,
                "reason": t.reason,
                "url": t.base_url or None,
                **t.details,
            }
            for name, t in targets.items()
        },
        "runs": runs,
        "wall_seconds": time.monotonic() - started,
        "aborted": aborted,
    }
    report["cells"] = summarize(runs, settings)
    sizes = sorted(settings.sizes)
    report["bars"] = {
        "one node": judge(report["cells"], one_node_bars(sizes)),
        "seed setup": judge(report["cells"], seed_bars(sizes)),
    }
    return report


if __name__ == "__main__":
    sys.exit(main())
