"""Operational robustness of the real ``twistd -n ajpbalancer`` process.

- The listen backlog is Apache's 511 (Twisted's 50 dropped SYNs under a burst of
  connections: 1000 sequential connects took 15 s); a reload that changes only the
  backlog keeps the socket.
- What the file alone can tell is a ``file:line`` problem of ``--check`` and of a normal
  start; what only the start can tell (a port in use) is one line and exit status 1,
  never a traceback.
- A reload applies a changed ``access_log`` and refuses a changed ``workers``, naming it.

No Tomcat here: the built-in demo member answers (``demo = http://...``).
"""

from __future__ import annotations

import http.client
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import ProxyFactory
from .proxy import ProxyProcess, free_port, twistd

WAIT = 15.0


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def demo_port() -> int:
    return free_port()


def demo_config(
    demo_port: int, *, settings: str = "", listen: str = "", access_log: str = "off"
) -> str:
    listen = listen or "tcp:{port}:interface=127.0.0.1"
    return f"""
[ajpbalancer]
access_log = {access_log}
demo = http://127.0.0.1:{demo_port} route=d1
{settings}

[frontend]
listen = {listen}
ProxyPass = / http://127.0.0.1:{demo_port}/
"""


def get(proxy: ProxyProcess) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


# -- the listen backlog ------------------------------------------------------------------------


def listen_backlog(port: int) -> int | None:
    """The backlog of the socket listening on 127.0.0.1:``port``, as ``ss`` reports it
    (Send-Q of a LISTEN socket), or None without ``ss``."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    out = subprocess.run(
        [ss, "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.split()
    return int(out[2])


def accept_queue(port: int) -> int:
    """Connections waiting in the accept queue of 127.0.0.1:``port`` (the rx_queue that
    /proc/net/tcp shows for a LISTEN socket)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def syn_retransmitted(sock: socket.socket) -> bool:
    """Whether the kernel had to send this connection's SYN again (``tcpi_total_retrans``
    of ``struct tcp_info``, at byte 100): the first one was dropped."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return bool(struct.unpack_from("I", info, 100)[0])


CONNECTIONS = 1000
BURST = 400
"""Connections made back to back before waiting for the proxy to take them all: more
than Twisted's backlog of 50, fewer than Apache's 511, so that the test does not depend
on how fast the proxy accepts on a loaded machine."""
STALL = 1.0
"""A connect that takes this long waited for a SYN retransmission (Linux's initial RTO)."""


def sequential_connects(port: int) -> list[str]:
    """Make ``CONNECTIONS`` connections one after another, in bursts of ``BURST`` (each
    begun once the accept queue is empty), each closed at once; what stalled."""
    stalls: list[str] = []
    made = 0
    while made < CONNECTIONS:
        assert wait_for(lambda: accept_queue(port) == 0), "the proxy does not accept"
        for _ in range(min(BURST, CONNECTIONS - made)):
            began = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                took = time.monotonic() - began
                if took >= STALL or syn_retransmitted(sock):
                    stalls.append(f"connection {made}: {took:.3f}s")
            made += 1
    return stalls


def test_a_thousand_sequential_connections_never_wait_for_a_dropped_syn(
    proxy_factory: ProxyFactory, demo_port: int
) -> None:
    """With Twisted's backlog of 50, a burst of 400 connects overflowed the accept queue
    and SYNs were dropped (1-3 s each); with 511 none is."""
    proxy = proxy_factory(demo_config(demo_port))
    assert sequential_connects(proxy.port) == []
    assert get(proxy) == 200


def test_the_backlog_is_511_and_a_reload_changes_it_on_the_same_socket(
    proxy_factory: ProxyFactory, demo_port: int
) -> None:
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read a listening socket's backlog")
    admin_port = free_port()
    admin = f"admin = tcp:{admin_port}:interface=127.0.0.1"
    proxy = proxy_factory(demo_config(demo_port, settings=admin))
    assert wait_for(lambda: listen_backlog(admin_port) is not None)
    assert (listen_backlog(proxy.port), listen_backlog(admin_port)) == (511, 511)
    inode = _listening_inode(proxy.port)
    proxy.reload(
        demo_config(
            demo_port,
            settings=admin + ":backlog=64",
            listen="tcp:{port}:interface=127.0.0.1:backlog=1024",
        )
    )
    assert wait_for(lambda: "reloaded" in proxy.log()), proxy.log()
    assert "refused" not in proxy.log() and "in use" not in proxy.log()
    assert (listen_backlog(proxy.port), listen_backlog(admin_port)) == (1024, 64)
    assert _listening_inode(proxy.port) == inode  # the same socket, never closed
    assert get(proxy) == 200


def _listening_inode(port: int) -> str:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            return fields[9]
    raise AssertionError(f"nothing listens on port {port}")


def test_with_workers_a_backlog_reload_keeps_the_socket_and_the_workers(
    proxy_factory: ProxyFactory, demo_port: int, tmp_path: Path
) -> None:
    """The supervisor listens again on the socket it shares with its workers, which
    reload (no worker is replaced); then a changed access_log replaces them, and the new
    ones log to the new file."""
    proxy = proxy_factory(demo_config(demo_port, settings="workers = 2", access_log="a.log"))
    assert wait_for(lambda: proxy.log().count("serving") >= 2), proxy.log()
    inode = _listening_inode(proxy.port)
    started = proxy.log().count("started: pid")
    proxy.reload(
        demo_config(
            demo_port,
            settings="workers = 2",
            access_log="a.log",
            listen="tcp:{port}:interface=127.0.0.1:backlog=1024",
        )
    )
    assert wait_for(lambda: proxy.log().count("reloaded") >= 3), proxy.log()  # and 2 workers
    if shutil.which("ss") is not None:
        assert listen_backlog(proxy.port) == 1024
    assert _listening_inode(proxy.port) == inode
    assert proxy.log().count("started: pid") == started  # no worker replaced
    assert get(proxy) == 200
    workdir = proxy.workdir
    assert wait_for(lambda: (workdir / "a.log").read_text().count('"GET / HTTP/1.1" 200') == 1)

    proxy.reload(demo_config(demo_port, settings="workers = 2", access_log="b.log"))
    assert wait_for(lambda: proxy.log().count("started: pid") >= started + 2), proxy.log()
    assert wait_for(lambda: proxy.log().count("serving") >= 4), proxy.log()
    for _ in range(4):
        assert get(proxy) == 200
    assert wait_for((workdir / "b.log").exists)
    assert wait_for(lambda: (workdir / "b.log").read_text().count('"GET / HTTP/1.1" 200') == 4)
    assert (workdir / "a.log").read_text().count('"GET / HTTP/1.1" 200') == 1


# -- start-time failures -----------------------------------------------------------------------


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """twistd as an operator types it, in the config's directory (messages say lb.ini)."""
    pidfile = str(config.parent / "twistd.pid")
    return subprocess.run(
        [twistd(), "-n", "--pidfile", pidfile, "ajpbalancer", "--config", config.name, *args],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty.htpasswd").write_text("")
    (tmp_path / "apr1.htpasswd").write_text("admin:$apr1$xyz$0123456789abcdefghijkl\n")
    yield tmp_path


ADMIN = "admin = tcp:{admin}:interface=127.0.0.1\nadmin_users = {users}"

FILE_PROBLEMS = [
    (
        ADMIN.format(admin="{admin}", users="missing.htpasswd"),
        "",
        "lb.ini:4: admin_users: cannot read 'missing.htpasswd': No such file or directory",
    ),
    (
        ADMIN.format(admin="{admin}", users="adir"),
        "",
        "lb.ini:4: admin_users: cannot read 'adir': Is a directory",
    ),
    (
        ADMIN.format(admin="{admin}", users="empty.htpasswd"),
        "",
        "lb.ini:4: admin_users: empty.htpasswd: no users",
    ),
    (
        ADMIN.format(admin="{admin}", users="apr1.htpasswd"),
        "",
        "lb.ini:4: admin_users: apr1.htpasswd:1: user 'admin': unsupported password hash "
        "($apr1$, Apache's MD5)",
    ),
    (
        "access_log = nodir/access.log",
        "",
        "lb.ini:3: access_log: cannot create 'nodir/access.log': there is no directory 'nodir'",
    ),
    ("access_log = adir", "", "lb.ini:3: access_log: 'adir' is a directory, not a file"),
    (
        "",
        "tcp:70000",
        "lb.ini:7: listen: invalid endpoint 'tcp:70000': port must be an integer from 0 to "
        "65535, got '70000'",
    ),
    ("", "unix:", "lb.ini:7: listen: invalid endpoint 'unix:': a unix: endpoint needs a socket"),
    (
        "workers = 99999",
        "",
        "lb.ini:3: workers: workers must be an integer from 1 to 256, got '99999'",
    ),
]


@pytest.mark.parametrize(
    ("settings", "listen", "problem"),
    FILE_PROBLEMS,
    ids=[
        "admin_users-missing",
        "admin_users-directory",
        "admin_users-empty",
        "admin_users-apr1",
        "access_log-no-directory",
        "access_log-directory",
        "port-70000",
        "unix-no-path",
        "workers-99999",
    ],
)
def test_what_the_file_tells_is_a_problem_of_check_and_of_the_start(
    workdir: Path, settings: str, listen: str, problem: str
) -> None:
    port, admin = free_port(), free_port()
    config = workdir / "lb.ini"
    text = f"""[ajpbalancer]
demo = http://127.0.0.1:{free_port()} route=d1
{settings.format(admin=admin)}

[frontend]
# the listener
listen = {listen or f"tcp:{port}:interface=127.0.0.1"}
ProxyPass = / http://127.0.0.1:9/
"""
    config.write_text(text)
    for args in (("--check",), ()):
        result = run(config, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert lines[0].startswith(problem), (args, lines)
        assert lines[1:] == ["lb.ini: 1 problem(s); nothing started"], (args, lines)
        assert "Traceback" not in result.stdout + result.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free: nothing listened


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("where", ["listen", "admin"])
def test_a_port_in_use_stops_the_start_with_one_line_and_status_1(
    workdir: Path, taken_port: int, where: str
) -> None:
    port = taken_port if where == "listen" else free_port()
    admin = taken_port if where == "admin" else free_port()
    config = workdir / "lb.ini"
    config.write_text(f"""[ajpbalancer]
access_log = off
admin = tcp:{admin}:interface=127.0.0.1

[frontend:www]
listen = tcp:{port}:interface=127.0.0.1
ProxyPass = / http://127.0.0.1:9/
""")
    assert run(config, "--check").returncode == 0  # the file is fine
    result = run(config)
    assert result.returncode == 1, (result.stdout, result.stderr)
    expected = {
        "listen": f"lb.ini:6: listen: cannot listen on tcp:{port}:interface=127.0.0.1 for "
        "[frontend:www]: Address already in use",
        "admin": f"lb.ini:3: admin: cannot listen on tcp:{admin}:interface=127.0.0.1: "
        "Address already in use",
    }[where]
    assert result.stderr.splitlines() == [expected], result.stderr
    assert f"cannot start: {expected}" in result.stdout  # twistd's log (stdout with -n)
    assert "Traceback" not in result.stdout + result.stderr
    assert not (workdir / "twistd.pid").exists()  # twistd cleaned up


def test_a_reload_onto_a_port_in_use_is_refused_with_one_line(
    proxy_factory: ProxyFactory, demo_port: int, taken_port: int
) -> None:
    proxy = proxy_factory(demo_config(demo_port))
    text = demo_config(demo_port) + (
        f"\n[frontend:b]\nlisten = tcp:{taken_port}:interface=127.0.0.1\nProxyPass = / !\n"
    )
    proxy.reload(text)
    assert wait_for(lambda: "reload refused" in proxy.log()), proxy.log()
    assert (
        f"reload refused: {proxy.config_path}:12: listen: cannot listen on "
        f"tcp:{taken_port}:interface=127.0.0.1 for [frontend:b]: Address already in use; "
        "the running configuration stays"
    ) in proxy.log()
    assert "Traceback" not in proxy.log()
    assert get(proxy) == 200


# -- settings on reload ------------------------------------------------------------------------


def test_a_reload_that_changes_workers_is_refused_naming_it(
    proxy_factory: ProxyFactory, demo_port: int
) -> None:
    proxy = proxy_factory(demo_config(demo_port))
    proxy.reload(demo_config(demo_port, settings="workers = 2"))
    assert wait_for(lambda: "the running configuration stays" in proxy.log()), proxy.log()
    assert f"{proxy.config_path}: workers: changed from 1 to 2; takes a restart" in proxy.log()
    assert "reloaded" not in proxy.log()
    assert get(proxy) == 200


def test_a_reload_that_changes_access_log_writes_the_new_file(
    proxy_factory: ProxyFactory, demo_port: int
) -> None:
    proxy = proxy_factory(demo_config(demo_port, access_log="first.log"))
    assert get(proxy) == 200
    proxy.reload(demo_config(demo_port, access_log="second.log"))
    assert wait_for(lambda: "reloaded" in proxy.log()), proxy.log()
    assert get(proxy) == 200
    first, second = (proxy.workdir / name for name in ("first.log", "second.log"))
    assert first.read_text().count('"GET / HTTP/1.1" 200') == 1
    assert second.read_text().count('"GET / HTTP/1.1" 200') == 1
