"""``workers = 2`` with real processes: a supervisor, two workers, balancer state shared.

Workers are found as the children of the twistd process in ``/proc``; which worker
served a connection is found from the socket inodes each holds (``/proc/PID/fd``)
matched against the client's port in ``/proc/net/tcp``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .certs import make_cert
from .conftest import ProxyFactory
from .proxy import ProxyProcess, free_port
from .tomcat import Tomcat

WAIT = 15.0


def config(
    node1: Tomcat, node2: Tomcat, admin_port: int, *, factors: tuple[int, int] = (1, 1)
) -> str:
    return f"""
[ajpbalancer]
workers = 2
admin = tcp:{admin_port}:interface=127.0.0.1
access_log = access.log

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = /app balancer://cluster/app

[balancer://cluster]
BalancerMember = {node1.http_url} route=node1 loadfactor={factors[0]}
                 {node2.http_url} route=node2 loadfactor={factors[1]}
"""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def workers(proxy: ProxyProcess, count: int = 2) -> list[int]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        pids = children(proxy.pid)
        if len(pids) == count and all(_serving(proxy, pid) for pid in pids):
            return pids
        time.sleep(0.05)
    raise AssertionError(f"not {count} workers: {children(proxy.pid)}\n{proxy.log()}")


def _serving(proxy: ProxyProcess, pid: int) -> bool:
    return f"worker {pid} serving" in proxy.log()


def node_of(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/app/echo")
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, body
    node: str = json.loads(body)["node"]
    return node


def get_node(proxy: ProxyProcess) -> str:
    conn = proxy.connection(timeout=10)
    try:
        return node_of(conn)
    finally:
        conn.close()


def socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                out.add(int(target[8:-1]))
    return out


def server_side_inode(proxy_port: int, client_port: int) -> int | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (
            int(local.split(":")[1], 16) == proxy_port
            and int(remote.split(":")[1], 16) == client_port
        ):
            return int(fields[9])
    return None


def serving_pid(
    proxy: ProxyProcess, conn: http.client.HTTPConnection, pids: list[int]
) -> int | None:
    assert conn.sock is not None
    inode = server_side_inode(proxy.port, conn.sock.getsockname()[1])
    for pid in pids:
        if inode is not None and inode in socket_inodes(pid):
            return pid
    return None


@pytest.fixture
def admin_port() -> int:
    return free_port()


def test_loadfactor_1_3_over_400_requests_is_exact_across_both_workers(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    """8 concurrent clients, a new connection every 5 requests: both workers accept some,
    and the shared byrequests counting still gives exactly 100 to node1."""
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port, factors=(1, 3)))
    pids = workers(proxy)
    counts: Counter[str] = Counter()
    served_by: Counter[int | None] = Counter()
    lock = threading.Lock()

    def client() -> None:
        for _ in range(10):
            conn = proxy.connection(timeout=10)
            try:
                for _ in range(5):
                    node = node_of(conn)
                    pid = serving_pid(proxy, conn, pids)
                    with lock:
                        counts[node] += 1
                        served_by[pid] += 1
            finally:
                conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert counts["node1"] + counts["node2"] == 400, counts
    assert abs(counts["node1"] - 100) <= 1, counts
    assert set(served_by) - {None} == set(pids), served_by  # both workers served requests


def test_a_member_disabled_through_the_admin_page_gets_no_request_from_either_worker(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port))
    workers(proxy)
    admin = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    admin.request("GET", "/status.json")
    nonce = json.loads(admin.getresponse().read())["balancers"][0]["nonce"]
    body = urllib.parse.urlencode(
        {"b": "cluster", "w": node1.http_url, "w_status_D": "1", "nonce": nonce}
    )
    origin = f"http://127.0.0.1:{admin_port}"
    admin.request(
        "POST",
        "/balancer-manager",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"{origin}/balancer-manager",
        },
    )
    reply = admin.getresponse()
    assert reply.status == 200, reply.read()
    reply.read()
    admin.close()
    conns = [proxy.connection(timeout=10) for _ in range(8)]
    nodes = Counter(node_of(conns[i % 8]) for i in range(80))
    for conn in conns:
        conn.close()
    assert nodes == Counter({"node2": 80})


def test_killing_a_worker_loses_no_request_the_other_accepted_and_it_comes_back(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    """Fresh connections, no retries: a request fails only if the killed worker had
    accepted its connection (at most the ones in its hands at the kill)."""
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port))
    pids = workers(proxy)
    failures = 0
    ok = 0
    killed = False
    for i in range(300):
        if i == 100:
            os.kill(pids[0], signal.SIGKILL)
            killed = True
        try:
            get_node(proxy)
            ok += 1
        except (OSError, http.client.HTTPException):
            assert killed
            failures += 1
    assert failures <= 1, failures  # only a connection the killed worker had accepted
    assert ok >= 299
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        now = children(proxy.pid)
        if len(now) == 2 and pids[0] not in now and all(_serving(proxy, p) for p in now):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the killed worker was not replaced: {children(proxy.pid)}")
    new = next(p for p in now if p not in pids)
    conns = [proxy.connection(timeout=10) for _ in range(16)]
    served = {serving_pid(proxy, c, now) for c in conns if node_of(c)}
    for conn in conns:
        conn.close()
    assert new in served, (new, served)
    assert "was killed by a signal" in proxy.log()


def test_sigterm_stops_the_supervisor_and_every_worker(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port))
    pids = workers(proxy)
    assert get_node(proxy) in ("node1", "node2")
    assert proxy.process is not None
    proxy.process.send_signal(signal.SIGTERM)
    assert proxy.process.wait(timeout=WAIT) in (0, -signal.SIGTERM)  # twistd re-raises it
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), pid
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", proxy.port), timeout=2):
        pass


def test_sighup_reloads_the_supervisor_and_the_workers(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port))
    pids = workers(proxy)
    proxy.reload(
        config(node1, node2, admin_port).replace(
            f"{node1.http_url} route=node1", f"{node1.http_url} route=node1 status=+D"
        )
    )
    deadline = time.monotonic() + WAIT
    while proxy.log().count("reloaded ") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.log().count("reloaded ") == 3, proxy.log()  # the supervisor and both workers
    assert children(proxy.pid) == pids
    nodes = Counter(get_node(proxy) for _ in range(20))
    assert nodes == Counter({"node2": 20})


def _nobody_can_run_python() -> bool:
    """Workers are spawned after the drop: the interpreter must be nobody's to run."""
    if os.geteuid() != 0:
        return False
    # As the supervisor will: drop to nobody, then posix_spawn the interpreter.
    probe = (
        "import os, sys\n"
        "os.setgroups([65534]); os.setgid(65534); os.setuid(65534)\n"
        "pid = os.posix_spawnp(sys.executable, [sys.executable, '-c', 'import ajpbalancer.worker'],"
        " dict(os.environ))\n"
        "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, timeout=30, check=False
        )
    except OSError:
        return False
    return result.returncode == 0


@pytest.mark.skipif(
    not _nobody_can_run_python(), reason="needs root, and a Python that nobody may run"
)
def test_with_dropped_privileges_the_workers_run_as_nobody(
    tomcats: tuple[Tomcat, Tomcat], tmp_path: Path, admin_port: int
) -> None:
    node1, node2 = tomcats
    workdir = tmp_path / "priv"
    workdir.mkdir()
    workdir.chmod(0o755)
    proxy = ProxyProcess(
        config(node1, node2, admin_port),
        workdir,
        twistd_args=("-u", "nobody", "-g", "nogroup"),
    )
    proxy.start()
    try:
        pids = workers(proxy)
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1:] == ["65534"] * 4, uid_line
        assert get_node(proxy) in ("node1", "node2")
        assert (workdir / "access.log").read_text().count('"GET /app/echo HTTP/1.1" 200') == 1
    finally:
        proxy.stop()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(admin_port: int) -> Samples:
    """``/metrics`` parsed: every sample by name and labels."""
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        reply = conn.getresponse()
        body = reply.read().decode()
        assert reply.status == 200, body
    finally:
        conn.close()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def requests_by_class(metrics: Samples) -> Counter[str]:
    out: Counter[str] = Counter()
    for (name, labels), value in metrics.items():
        if name == "ajpbalancer_requests_total":
            out[dict(labels)["status_class"]] += int(value)
    return out


def member_latency_count(metrics: Samples) -> int:
    return sum(
        int(value)
        for (name, _labels), value in metrics.items()
        if name == "ajpbalancer_member_request_duration_seconds_count"
    )


def test_metrics_sum_the_requests_of_both_workers_and_survive_a_killed_worker(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port))
    pids = workers(proxy)
    served_by: Counter[int | None] = Counter()
    # The kernel gives each new connection to whichever worker accepts first, with no
    # fairness: go on (bounded) until both workers served some, 80 requests at least.
    total = 0
    while total < 400 and (total < 80 or set(served_by) - {None} != set(pids)):
        conn = proxy.connection(timeout=10)
        node_of(conn)
        served_by[serving_pid(proxy, conn, pids)] += 1
        conn.close()
        total += 1
    for _ in range(5):
        assert proxy.get("/nowhere")[0].status == 404
    assert set(served_by) - {None} == set(pids), served_by  # both workers counted some
    metrics = scrape(admin_port)
    assert requests_by_class(metrics) == Counter({"2xx": total, "4xx": 5})
    assert member_latency_count(metrics) == total
    frontend = metrics["ajpbalancer_request_duration_seconds_count", (("frontend", ""),)]
    assert frontend == total + 5

    # A worker killed, its replacement serving: the counts never go down.
    os.kill(pids[0], signal.SIGKILL)
    seen = [total]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        seen.append(requests_by_class(scrape(admin_port))["2xx"])
        now = children(proxy.pid)
        if len(now) == 2 and pids[0] not in now and all(_serving(proxy, p) for p in now):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the killed worker was not replaced: {children(proxy.pid)}")
    for _ in range(20):
        get_node(proxy)
    seen.append(requests_by_class(scrape(admin_port))["2xx"])
    assert seen == sorted(seen), seen
    assert seen[-1] == total + 20, seen
    assert member_latency_count(scrape(admin_port)) == total + 20


def member_bytes(admin_port: int) -> tuple[int, int]:
    """Bytes sent to and received from the members, summed over them (``/metrics``)."""
    metrics = scrape(admin_port)

    def total(name: str) -> int:
        return sum(int(v) for (n, _labels), v in metrics.items() if n == name)

    return total("ajpbalancer_member_sent_bytes_total"), total(
        "ajpbalancer_member_received_bytes_total"
    )


def wait_for_bytes(admin_port: int, expected: tuple[int, int], timeout: float = 5.0) -> None:
    """The counts reach ``expected`` exactly (the worker counts a request just after the
    client has its last byte) and never pass it."""
    deadline = time.monotonic() + timeout
    seen = member_bytes(admin_port)
    while seen != expected and time.monotonic() < deadline:
        assert seen[0] <= expected[0] and seen[1] <= expected[1], (seen, expected)
        time.sleep(0.02)
        seen = member_bytes(admin_port)
    assert seen == expected


def test_traffic_of_both_workers_is_counted_exactly_also_while_a_long_response_streams(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, admin_port: int
) -> None:
    """Each worker adds a member's bytes to the shared slot when a request ends (or every
    second while one streams): balancer-manager's To/From and /metrics add up exactly."""
    node1, node2 = tomcats
    proxy = proxy_factory(config(node1, node2, admin_port))
    pids = workers(proxy)
    served_by: Counter[int | None] = Counter()
    sent = received = total = 0
    while total < 400 and (total < 40 or set(served_by) - {None} != set(pids)):
        conn = proxy.connection(timeout=10)
        try:
            conn.request("POST", "/app/echo", body=b"x" * 500)
            resp = conn.getresponse()
            received += len(resp.read())
            assert resp.status == 200
            conn.request("GET", f"/app/download?size={1000 + total}")
            resp = conn.getresponse()
            received += len(resp.read())
            assert resp.status == 200
            served_by[serving_pid(proxy, conn, pids)] += 1
        finally:
            conn.close()
        sent += 500
        total += 1
    assert set(served_by) - {None} == set(pids), served_by  # both workers counted some
    wait_for_bytes(admin_port, (sent, received))

    # 10 x 64 KiB, one every 0.3 s: the bytes show before the response ends.
    size = 10 * 64 * 1024
    conn = proxy.connection(timeout=30)
    try:
        conn.request("GET", f"/app/download?size={size}&delayms=300")
        resp = conn.getresponse()
        assert resp.status == 200
        got = len(resp.read(64 * 1024))
        deadline = time.monotonic() + 2.5
        while member_bytes(admin_port)[1] <= received and time.monotonic() < deadline:
            time.sleep(0.05)
        live = member_bytes(admin_port)[1]
        got += len(resp.read())
    finally:
        conn.close()
    assert received < live < received + size, (received, live)
    assert got == size
    wait_for_bytes(admin_port, (sent, received + size))


# -- listeners of every kind, and a reload that changes them ---------------------------------


def listen_config(node1: Tomcat, node2: Tomcat, *listen: str) -> str:
    lines = "\n         ".join(listen)
    return f"""
[ajpbalancer]
workers = 2
access_log = off

[frontend]
listen = {lines}
ProxyPass = /app balancer://cluster/app

[balancer://cluster]
BalancerMember = {node1.http_url} route=node1
                 {node2.http_url} route=node2
"""


def test_an_ssl_listener_is_served_by_the_workers(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    key, cert = make_cert(tmp_path, "localhost", san_ip=["127.0.0.1"], san_dns=["localhost"])
    listen = f"ssl:{{port}}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    proxy = proxy_factory(listen_config(*tomcats, listen))
    pids = workers(proxy)
    context = ssl.create_default_context(cafile=str(cert))
    served: set[int | None] = set()
    nodes: Counter[str] = Counter()
    for _ in range(10):
        conn = http.client.HTTPSConnection("localhost", proxy.port, context=context, timeout=10)
        try:
            nodes[node_of(conn)] += 1
            served.add(serving_pid(proxy, conn, pids))
        finally:
            conn.close()
    assert nodes == Counter({"node1": 5, "node2": 5})
    assert served and served <= set(pids), (served, pids)  # a worker, not the supervisor


def test_a_unix_listener_is_served_by_the_workers(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    path = tmp_path / "fe.sock"
    proxy = proxy_factory(listen_config(*tomcats, f"unix:{path}"), unix_socket=path)
    workers(proxy)
    nodes: Counter[str] = Counter()
    for _ in range(10):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(path))
            s.sendall(b"GET /app/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        nodes[json.loads(body)["node"]] += 1
    assert nodes == Counter({"node1": 5, "node2": 5})


def _get_on(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return node_of(conn)
    finally:
        conn.close()


def test_sighup_changing_the_listen_lines_replaces_the_workers_without_failing_a_request(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """A client keeps making requests (a new connection each) on the unchanged port while
    the reload drops one port and adds another: none fails, the new port serves, the old
    one refuses connections."""
    node1, node2 = tomcats
    old, new = free_port(), free_port()
    tcp = "tcp:{}:interface=127.0.0.1"
    proxy = proxy_factory(listen_config(node1, node2, tcp.format("{port}"), tcp.format(old)))
    pids = workers(proxy)
    assert _get_on(old) in ("node1", "node2")
    failures: list[BaseException] = []
    ok = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal ok
        while not stop.is_set():
            try:
                get_node(proxy)
                ok += 1
            except (OSError, http.client.HTTPException, AssertionError) as e:
                failures.append(e)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(0.3)
        proxy.reload(listen_config(node1, node2, tcp.format("{port}"), tcp.format(new)))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            now = children(proxy.pid)
            if len(now) == 2 and not set(now) & set(pids) and all(_serving(proxy, p) for p in now):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"workers not replaced: {children(proxy.pid)}\n{proxy.log()}")
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not failures, failures[:3]
    assert ok > 10, ok
    assert _get_on(new) in ("node1", "node2")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", old), timeout=2):
        pass
