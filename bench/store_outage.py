"""Request latency while the runtime state's Redis store is up, hung and gone.

One ajpbalancer process (two built-in demo members, one AJP, one HTTP, in the process)
with ``BalancerPersist = on`` and ``state = redis://…`` on a redis-server of its own.
One client sends sequential GETs on one kept-alive connection, ``--requests`` per phase:
the store up, the store stopped (``SIGSTOP``, for the whole phase), the store killed.
A balancer-manager change is posted at the start of each phase (the store then has
something to do). Prints a Markdown table of latencies (p50, p99, max, in ms) and
errors; every process is stopped by its PID at the end.

    .venv/bin/python -m bench.store_outage --requests 2000
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from pathlib import Path

from tests.integration.fleetkit import Admin, wait_for
from tests.integration.proxy import ProxyProcess, free_port
from tests.integration.redis import RedisServer


def config(admin: int, redis: RedisServer) -> str:
    ajp, http = free_port(), free_port()
    return f"""
[ajpbalancer]
access_log = off
admin = tcp:{admin}:interface=127.0.0.1
BalancerPersist = on
state = {redis.url}/0
demo = ajp://127.0.0.1:{ajp} route=demo1
       http://127.0.0.1:{http} route=demo2

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = / balancer://cluster/

[balancer://cluster]
BalancerMember = ajp://127.0.0.1:{ajp} route=demo1
                 http://127.0.0.1:{http} route=demo2
"""


def phase(proxy: ProxyProcess, requests: int) -> tuple[list[float], int]:
    conn = proxy.connection(timeout=30)
    latencies: list[float] = []
    errors = 0
    for _ in range(requests):
        started = time.perf_counter()
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = proxy.connection(timeout=30)
        latencies.append(time.perf_counter() - started)
    conn.close()
    return latencies, errors


def row(name: str, latencies: list[float], errors: int) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[int(len(ms) * 0.99) - 1]
    return (
        f"| {name} | {len(ms)} | {statistics.median(ms):.2f} | {p99:.2f} | {ms[-1]:.2f} | "
        f"{errors} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_outage")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ajpb-store-") as tmp:
        redis = RedisServer(Path(tmp) / "redis").start()
        admin_port = free_port()
        work = Path(tmp) / "proxy"
        work.mkdir()
        proxy = ProxyProcess(config(admin_port, redis), work)
        try:
            proxy.start()
            admin = Admin(proxy, admin_port)
            wait_for(lambda: admin.status()["state"]["connected"], "connected")
            rows = [
                "| store | requests | p50 ms | p99 ms | max ms | errors |",
                "|---|---|---|---|---|---|",
            ]
            member = admin.status()["balancers"][0]["members"][0]["name"]
            admin.post(w=member, w_lf="2")
            rows.append(row("up", *phase(proxy, args.requests)))
            redis.pause()
            admin.post(w=member, w_lf="3")
            rows.append(row("hung (SIGSTOP)", *phase(proxy, args.requests)))
            redis.kill()
            admin.post(w=member, w_lf="4")
            rows.append(row("killed", *phase(proxy, args.requests)))
            print("\n".join(rows))
        finally:
            proxy.stop()
            redis.stop()


if __name__ == "__main__":
    main()
