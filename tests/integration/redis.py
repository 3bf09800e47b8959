"""A real ``redis-server`` on loopback for the tests: started on a free port, no persistence,
paused (``SIGSTOP``), resumed, killed and stopped by its PID only.

Debian's ``redis-server`` package (``scripts/test`` installs it) provides the binary; a
missing one fails the test, never skips it. :meth:`RedisServer.command` speaks RESP
through the project's own codec, so the tests need no client library.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ajpbalancer.resp import NEED_DATA, Reply, ReplyParser, encode_command

from .proxy import free_port

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 10.0


class RedisError(Exception):
    pass


class RedisServer:
    """One redis-server process owned by a test."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @staticmethod
    def binary() -> str:
        found = REDIS_SERVER if Path(REDIS_SERVER).exists() else shutil.which("redis-server")
        if found is None:
            raise RedisError("redis-server is missing: apt-get install redis-server")
        return found

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisError(f"redis-server exited {self.process.returncode}: {self.log()}")
            try:
                if self.command("PING") == b"PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RedisError(f"redis-server did not answer within {START_TIMEOUT}s: {self.log()}")

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *args: str | int, db: int = 0, timeout: float = 5.0) -> Reply:
        """One command on a connection of its own (``SELECT db`` first when not 0)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            commands = [encode_command("SELECT", db)] if db else []
            s.sendall(b"".join([*commands, encode_command(*args)]))
            parser = ReplyParser()
            replies: list[Reply] = []
            while len(replies) < len(commands) + 1:
                data = s.recv(65536)
                if not data:
                    raise RedisError("redis-server closed the connection")
                parser.receive_data(data)
                while (reply := parser.next_reply()) is not NEED_DATA:
                    replies.append(reply)  # type: ignore[arg-type]
            return replies[-1]

    def pause(self) -> None:
        """SIGSTOP: the server hangs (connections stay open, nothing is answered)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL (resumed first if paused): every connection is cut, the data is lost."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
