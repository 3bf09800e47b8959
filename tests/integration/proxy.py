"""Run the real ``twistd -n ajpbalancer`` process from the installed package, for tests.

:class:`ProxyProcess` writes a config file, starts twistd with its own pid file and
working directory, waits until the frontend accepts connections, and reports the
process's peak resident memory (VmHWM) so streaming tests can bound it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

START_TIMEOUT = 20.0


def twistd() -> str:
    """The twistd script installed beside this Python (the package's environment)."""
    candidate = Path(sys.executable).parent / "twistd"
    return str(candidate) if candidate.exists() else "twistd"


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class ProxyError(Exception):
    pass


class ProxyProcess:
    """One ajpbalancer process serving ``config`` (a string with ``{port}`` for the frontend)."""

    def __init__(
        self,
        config: str,
        workdir: Path,
        *,
        port: int | None = None,
        unix_socket: Path | None = None,
        twistd_path: str | None = None,
        env: Mapping[str, str] | None = None,
        twistd_args: Sequence[str] = (),
    ) -> None:
        """``unix_socket``: wait for this socket path to accept instead of the TCP port;
        ``twistd_path``: run this twistd instead of `twistd()`; ``env``: the process's
        whole environment instead of this one's; ``twistd_args``: twistd's own options
        (``-u nobody -g nogroup``).
        """
        self.twistd_args = tuple(twistd_args)
        self.port = port if port is not None else free_port()
        self.unix_socket = unix_socket
        self.twistd_path = twistd_path
        self.env = dict(env) if env is not None else None
        self.workdir = workdir
        self.config_path = workdir / "lb.ini"
        self.config_path.write_text(config.replace("{port}", str(self.port)))
        self.log_path = workdir / "twistd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProxyProcess:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                self.twistd_path or twistd(),
                "-n",
                "--pidfile",
                str(self.workdir / "twistd.pid"),
                *self.twistd_args,
                "ajpbalancer",
                "--config",
                str(self.config_path),
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProxyError(f"ajpbalancer exited {self.process.returncode}:\n{self.log()}")
            if self._accepts():
                return self
            time.sleep(0.05)
        self.stop()
        raise ProxyError(f"ajpbalancer did not listen within {START_TIMEOUT}s:\n{self.log()}")

    def _accepts(self) -> bool:
        """Whether the frontend (the TCP port, or ``unix_socket`` when given) accepts."""
        with contextlib.suppress(OSError):
            if self.unix_socket is None:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            else:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(0.5)
                    s.connect(str(self.unix_socket))
                    return True
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def peak_rss_kib(self) -> int:
        """The process's peak resident set size (VmHWM) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise ProxyError("no VmHWM in /proc status")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ProxyError("no VmRSS in /proc status")

    def reload(self, config: str) -> None:
        """Write a new configuration and send SIGHUP, as an operator does."""
        self.config_path.write_text(config.replace("{port}", str(self.port)))
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = self.connection()
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()
