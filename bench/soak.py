"""Soak benchmark: mixed traffic through ajpbalancer for minutes while Tomcat restarts.

The target: ten minutes of mixed traffic with member restarts, printing the errors
seen (expected 0 for idempotent requests), the proxy's RSS and open file descriptors at
the start and the end. This starts two Tomcat 10 nodes (node1 on 127.0.0.2, node2 on
127.0.0.3) and one ``twistd -n ajpbalancer`` on 127.0.0.1 with two balancers over the
same two nodes: ``/a/`` through ``balancer://ajp`` (AJP members) and ``/h/`` through
``balancer://http`` (HTTP members). ``--clients`` threads send, for ``--minutes``:

- GETs of ``/app/download?size=N`` for sizes 0, 1 KiB, 64 KiB and 1 MiB, the body's
  length and SHA-256 checked (byte i is ``i % 251``);
- POSTs of ``/app/upload?tag=T`` with 0 to 256 KiB, the SHA-256 Tomcat reports checked;

each on the thread's keep-alive connection, or on a fresh one for one request in four.
Every ``--restart-every`` seconds one node (alternately) is restarted: stopped
gracefully (SIGTERM; ``--kill`` for SIGKILL) and started again.

Errors are counted by category and method. A GET that fails is an error of the proxy
(the balancer has another member; the proxy retries a stale connection and fails over
a refused one). A POST that fails with 502/503 while a node stops is counted apart
(the proxy never resends a body, so it may have reached the dying node). At the end
both nodes are stopped gracefully (their access logs flushed) and every POST tag is
counted in them: a tag logged twice would be a POST delivered twice. The proxy's RSS
and open descriptors are sampled every 5 s, after a short warm-up. The exit status is
1 when a GET failed, a body was wrong, or a POST was delivered twice.

Results: ``OUT/soak-STAMP.json``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as ``python bench/soak.py``
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration.proxy import ProxyProcess  # noqa: E402  (needs REPO_ROOT on sys.path)
from tests.integration.tomcat import Tomcat, TomcatError, find_free_ports, start_all  # noqa: E402

NODES = {"node1": "127.0.0.2", "node2": "127.0.0.3"}
PREFERRED_PORTS = (28080, 28009)
GET_SIZES = (0, 1024, 65536, 1 << 20)
MAX_UPLOAD = 256 * 1024
SAMPLE_EVERY = 5.0
WARMUP = 5.0
CLIENT_TIMEOUT = 30.0


def download_digest(size: int) -> str:
    """The SHA-256 of ``/app/download?size=N`` (byte i is ``i % 251``)."""
    pattern = bytes(range(251))
    data = pattern * (size // 251) + pattern[: size % 251]
    return hashlib.sha256(data).hexdigest()


def proxy_config(http_port: int, ajp_port: int, retry: int) -> str:
    """One frontend, two balancers over the same two nodes: AJP under /a, HTTP under /h."""
    ajp = "\n                 ".join(
        f"ajp://{a}:{ajp_port} route={n} retry={retry}" for n, a in NODES.items()
    )
    web = "\n                 ".join(
        f"http://{a}:{http_port} route={n} retry={retry}" for n, a in NODES.items()
    )
    return (
        "# Written by bench/soak.py\n[ajpbalancer]\naccess_log = off\n\n"
        "[frontend]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        "ProxyPass = /a/app balancer://ajp/app\n            /h/app balancer://http/app\n\n"
        f"[balancer://ajp]\nBalancerMember = {ajp}\n\n"
        f"[balancer://http]\nBalancerMember = {web}\n"
    )


def proc_figures(pid: int) -> dict[str, int]:
    """The process's resident set (KiB) and number of open file descriptors."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class Stats:
    """Counters shared by the client threads (one lock; contention is negligible)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}
        self.tags: set[str] = set()

    def success(self, kind: str) -> None:
        with self.lock:
            self.ok[kind] += 1

    def error(self, category: str, detail: str) -> None:
        with self.lock:
            self.errors[category] += 1
            self.examples.setdefault(category, detail[:300])


class Client(threading.Thread):
    """One client: a keep-alive connection, mixed GETs and POSTs, until ``stop`` is set."""

    def __init__(self, index: int, port: int, stats: Stats, stop: threading.Event) -> None:
        super().__init__(name=f"client-{index}", daemon=True)
        self.index = index
        self.port = port
        self.stats = stats
        self.stop = stop
        self.rng = random.Random(index)
        self.conn: http.client.HTTPConnection | None = None
        self.digests = {size: download_digest(size) for size in GET_SIZES}
        self.previous = self.last = ""
        """The request before this one on the thread, and this one (for error reports)."""

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            prefix = self.rng.choice(("/a", "/h"))
            fresh = self.rng.random() < 0.25
            if self.rng.random() < 0.7:
                self.one_get(prefix, fresh)
            else:
                self.one_post(prefix, fresh, f"c{self.index}n{n}")
        if self.conn is not None:
            self.conn.close()

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        if fresh and self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
        return self.conn

    def _request(
        self, method: str, target: str, body: bytes | None, fresh: bool
    ) -> tuple[int, bytes]:
        conn = self._connection(fresh)
        self.previous, self.last = self.last, f"{method} {target}"
        try:
            conn.request(method, target, body=body)
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                conn.close()
                self.conn = None
            return resp.status, data
        except Exception:
            conn.close()
            self.conn = None
            raise

    def one_get(self, prefix: str, fresh: bool) -> None:
        size = self.rng.choice(GET_SIZES)
        target = f"{prefix}/app/download?size={size}"
        how = "new connection" if fresh or self.conn is None else "kept-alive connection"
        try:
            status, data = self._request("GET", target, None, fresh)
        except (OSError, http.client.HTTPException) as exc:
            self.stats.error(
                f"GET connection error ({how})", f"{target} (after {self.previous}): {exc!r}"
            )
            return
        if status != 200:
            self.stats.error(f"GET status {status}", f"{target}: {data[:200]!r}")
        elif len(data) != size or hashlib.sha256(data).hexdigest() != self.digests[size]:
            self.stats.error("GET wrong body", f"{target}: {len(data)} bytes")
        else:
            self.stats.success(f"GET {prefix}")

    def one_post(self, prefix: str, fresh: bool, tag: str) -> None:
        size = self.rng.randrange(MAX_UPLOAD + 1)
        body = self.rng.randbytes(size)
        target = f"{prefix}/app/upload?tag={tag}"
        how = "new connection" if fresh or self.conn is None else "kept-alive connection"
        with self.stats.lock:
            self.stats.tags.add(tag)
        try:
            status, data = self._request("POST", target, body, fresh)
        except (OSError, http.client.HTTPException) as exc:
            self.stats.error(
                f"POST connection error ({how})", f"{target} (after {self.previous}): {exc!r}"
            )
            return
        if status in (502, 503):
            self.stats.error(f"POST status {status} (node stopping)", f"{target}")
            return
        if status != 200:
            self.stats.error(f"POST status {status}", f"{target}: {data[:200]!r}")
            return
        try:
            answer = json.loads(data)
        except ValueError:
            self.stats.error("POST wrong answer", f"{target}: {data[:200]!r}")
            return
        if answer.get("bodySha256") != hashlib.sha256(body).hexdigest():
            self.stats.error("POST wrong checksum", f"{target}: {answer!r}"[:300])
        else:
            self.stats.success(f"POST {prefix}")


def start_nodes(base: Path) -> list[Tomcat]:
    """node1 and node2 at the same two free ports, bases under `base` (kept for restarts)."""
    http_port, ajp_port = find_free_ports(list(NODES.values()), PREFERRED_PORTS)
    nodes = [
        Tomcat(name, address, http_port, ajp_port, base_dir=base / name)
        for name, address in NODES.items()
    ]
    start_all(nodes)
    return nodes


def post_deliveries(nodes: Sequence[Tomcat], tags: set[str]) -> collections.Counter[str]:
    """How many times each POST tag appears in the nodes' access logs."""
    seen: collections.Counter[str] = collections.Counter()
    for node in nodes:
        for line in node.access_log_lines():
            if line.method == "POST" and "tag=" in line.path:
                tag = line.path.split("tag=", 1)[1].split("&", 1)[0]
                if tag in tags:
                    seen[tag] += 1
    return seen


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; return the results (also what is written as JSON)."""
    workdir = Path(tempfile.mkdtemp(prefix="ajpb-soak-"))
    nodes: list[Tomcat] = []
    proxy: ProxyProcess | None = None
    try:
        nodes = start_nodes(workdir)
        (workdir / "proxy").mkdir()
        proxy = ProxyProcess(
            proxy_config(nodes[0].http_port, nodes[0].ajp_port, args.retry), workdir / "proxy"
        ).start()
        stats, stop = Stats(), threading.Event()
        clients = [Client(i, proxy.port, stats, stop) for i in range(args.clients)]
        began = time.monotonic()
        for client in clients:
            client.start()
        time.sleep(WARMUP)
        samples = [{"t": round(time.monotonic() - began, 1), **proc_figures(proxy.pid)}]
        restarts: list[dict[str, Any]] = []
        end = began + args.minutes * 60
        next_restart, next_sample, turn = began + args.restart_every, began + SAMPLE_EVERY, 0
        while (now := time.monotonic()) < end:
            if now >= next_restart:
                node = nodes[turn % len(nodes)]
                turn += 1
                t0 = time.monotonic()
                node.kill() if args.kill else node.stop()
                node.start()
                restarts.append(
                    {
                        "node": node.name,
                        "at": round(t0 - began, 1),
                        "down_s": round(time.monotonic() - t0, 1),
                    }
                )
                print(f"[{t0 - began:6.1f}s] restarted {node.name}", file=sys.stderr)
                next_restart = time.monotonic() + args.restart_every
            if now >= next_sample:
                samples.append({"t": round(now - began, 1), **proc_figures(proxy.pid)})
                next_sample += SAMPLE_EVERY
            time.sleep(0.2)
        stop.set()
        for client in clients:
            client.join(CLIENT_TIMEOUT + 5)
        time.sleep(1.0)
        samples.append({"t": round(time.monotonic() - began, 1), **proc_figures(proxy.pid)})
        for node in nodes:
            node.stop()
        deliveries = post_deliveries(nodes, stats.tags)
        duplicates = sorted(tag for tag, count in deliveries.items() if count > 1)
        get_errors = sum(c for k, c in stats.errors.items() if k.startswith("GET"))
        bad_posts = sum(
            c for k, c in stats.errors.items() if k.startswith("POST") and "stopping" not in k
        )
        return {
            "bench": "soak",
            "stamp": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
            "minutes": args.minutes,
            "clients": args.clients,
            "restart_every_s": args.restart_every,
            "restart_signal": "SIGKILL" if args.kill else "SIGTERM",
            "requests_ok": dict(stats.ok),
            "requests_total": sum(stats.ok.values()) + sum(stats.errors.values()),
            "errors": dict(stats.errors),
            "error_examples": stats.examples,
            "posts_sent": len(stats.tags),
            "posts_delivered_twice": duplicates,
            "restarts": restarts,
            "proxy_start": samples[0],
            "proxy_end": samples[-1],
            "samples": samples,
            "verdict": "pass" if not (get_errors or bad_posts or duplicates) else "fail",
        }
    finally:
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            with contextlib.suppress(TomcatError, OSError):
                node.close()
        shutil.rmtree(workdir, ignore_errors=True)


def report(result: dict[str, Any]) -> str:
    """The figures a reader wants, as text."""
    start, end = result["proxy_start"], result["proxy_end"]
    lines = [
        f"soak: {result['minutes']} min, {result['clients']} clients, "
        f"{len(result['restarts'])} restarts ({result['restart_signal']})",
        f"requests: {result['requests_total']} ({json.dumps(result['requests_ok'])})",
        "errors: " + (json.dumps(result["errors"]) if result["errors"] else "none"),
        f"POSTs: {result['posts_sent']} sent, "
        f"delivered twice: {len(result['posts_delivered_twice'])}",
        f"proxy RSS: {start['rss_kib']} KiB at start, {end['rss_kib']} KiB at end; "
        f"open fds: {start['fds']} at start, {end['fds']} at end",
        f"verdict: {result['verdict']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--restart-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--retry", type=int, default=5, help="members' retry (s)")
    parser.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"soak-{result['stamp']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"results: {path}", file=sys.stderr)
    return 0 if result["verdict"] == "pass" else 1


if __name__ == "__main__":
    raise SystemExit(main())
