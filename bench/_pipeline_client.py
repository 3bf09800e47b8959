"""The client side of the pipelining benchmark (``bench/pipeline.py``).

The requests (one slow GET, then pipelined GETs of a fixed size), a warm-up the member
answers at once, many non-blocking connections from several loopback source addresses,
and the writer that pushes the same bytes down all of them until everything is written
or no socket takes more. Every loop is bounded in count and time; nothing here starts or
stops a process.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.idle import IP_BIND_ADDRESS_NO_PORT

CONNECT_TIMEOUT = 30.0
"""Seconds one batch of connections may take to be established."""
SEND_CHUNK = 256 * 1024
PIPELINED_SIZE = 128
"""Bytes of each pipelined GET (padded with a header); the last absorbs the remainder."""
SLOW_REQUEST = b"GET /slow HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench.pipeline\r\n\r\n"
WARM_REQUEST = b"GET /warm HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench.pipeline\r\n\r\n"
WARM_SEQUENTIAL = 20
WARM_PIPELINED = 50


# --- the requests -------------------------------------------------------------------------


def pipelined_requests(total: int, size: int = PIPELINED_SIZE) -> bytes:
    """Whole GETs of `size` bytes each adding up to exactly `total` (the last one longer).

    Each is ``GET /pipelined HTTP/1.1`` with a ``Host`` and an ``X-Pad`` field that makes
    up the length; `total` below one minimal request gives that many bytes of one.
    """
    head = b"GET /pipelined HTTP/1.1\r\nHost: bench\r\nX-Pad: "
    tail = b"\r\n\r\n"
    minimal = len(head) + len(tail)
    if total < minimal:
        return (head + tail)[:total]
    count = max(1, total // max(size, minimal))
    each = total // count
    last = total - each * (count - 1)
    one = head + b"x" * (each - minimal) + tail
    return one * (count - 1) + head + b"x" * (last - minimal) + tail


# --- the client ---------------------------------------------------------------------------


def _read_answers(sock: socket.socket, count: int, timeout: float) -> None:
    """Read `count` whole answers (each with a Content-Length, status 200) from `sock`;
    RuntimeError if they do not come within `timeout` s."""
    deadline = time.monotonic() + timeout
    buffer = b""
    done = 0
    while done < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = buffer[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                raise RuntimeError(f"warm-up: {head.splitlines()[0]!r}")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(buffer) >= end + 4 + length:
                buffer = buffer[end + 4 + length :]
                done += 1
                continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"warm-up: {done} of {count} answers in {timeout:.0f} s")
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise RuntimeError(f"warm-up: closed after {done} of {count} answers")
        buffer += data


def warm_up(port: int) -> None:
    """Requests the member answers at once: one by one, then pipelined, on one connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(WARM_SEQUENTIAL):
            sock.sendall(WARM_REQUEST)
            _read_answers(sock, 1, 10)
        sock.sendall(WARM_REQUEST * WARM_PIPELINED)
        _read_answers(sock, WARM_PIPELINED, 30)


def open_clients(
    count: int, port: int, sources: Sequence[str], batch: int
) -> tuple[list[socket.socket], list[str]]:
    """Connect `count` non-blocking sockets, `batch` at a time: (connected, errors)."""
    connected: list[socket.socket] = []
    errors: list[str] = []
    for first in range(0, count, batch):
        poller = select.epoll()
        pending: dict[int, socket.socket] = {}
        try:
            for i in range(first, min(first + batch, count)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                try:
                    sock.bind((sources[i % len(sources)], 0))
                    code = sock.connect_ex(("127.0.0.1", port))
                except OSError as exc:
                    errors.append(f"bind/connect: {exc}")
                    sock.close()
                    continue
                if code not in (0, errno.EINPROGRESS):
                    errors.append(f"connect: {os.strerror(code)}")
                    sock.close()
                    continue
                pending[sock.fileno()] = sock
                poller.register(sock.fileno(), select.EPOLLOUT)
            deadline = time.monotonic() + CONNECT_TIMEOUT
            while pending and time.monotonic() < deadline:
                for fd, _ in poller.poll(0.2):
                    poller.unregister(fd)
                    sock = pending.pop(fd)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        errors.append(f"connect: {os.strerror(code)}")
                        sock.close()
                    else:
                        connected.append(sock)
        finally:
            poller.close()
        for sock in pending.values():
            errors.append(f"connect: not established in {CONNECT_TIMEOUT:.0f} s")
            sock.close()
    return connected, errors


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """How far each client got writing its slow GET and the pipelined requests."""

    written: list[int]
    seconds: float
    ended: str
    errors: list[str]


def write_pipelines(
    sockets: Sequence[socket.socket], payload: bytes, *, stall: float, timeout: float
) -> WriteOutcome:
    """Write `payload` on every socket, non-blocking, until all is written, no socket has
    taken a byte for `stall` s, or `timeout` s have passed."""
    view = memoryview(payload)
    written = [0] * len(sockets)
    index = {sock.fileno(): i for i, sock in enumerate(sockets)}
    errors: list[str] = []
    poller = select.epoll()
    started = last_progress = time.monotonic()
    ended = "all written"
    try:
        for sock in sockets:
            poller.register(sock.fileno(), select.EPOLLOUT)
        pending = len(sockets)
        while pending:
            now = time.monotonic()
            if now - started > timeout:
                ended = f"time limit ({timeout:.0f} s)"
                break
            if now - last_progress > stall:
                ended = f"no socket took more for {stall:.1f} s"
                break
            for fd, _ in poller.poll(0.1):
                i = index[fd]
                offset = written[i]
                try:
                    sent = sockets[i].send(view[offset : offset + SEND_CHUNK])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    errors.append(f"send: {exc}")
                    poller.unregister(fd)
                    pending -= 1
                    continue
                if sent:
                    written[i] = offset + sent
                    last_progress = time.monotonic()
                if written[i] >= len(payload):
                    poller.unregister(fd)
                    pending -= 1
    finally:
        poller.close()
    return WriteOutcome(written, time.monotonic() - started, ended, errors)


def answered_early(sockets: Sequence[socket.socket], samples: int = 5) -> tuple[int, list[str]]:
    """How many of `sockets` are readable now (the proxy answered or closed them), and
    what the first `samples` of them hold: the first line of the answer, or how they
    were closed. Nothing is consumed (``MSG_PEEK``)."""
    by_fd = {sock.fileno(): sock for sock in sockets}
    poller = select.epoll()
    readable = 0
    seen: list[str] = []
    try:
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
        for _ in range(len(sockets) // 1000 + 2):
            events = poller.poll(0, 1000)
            readable += len(events)
            for fd, _ in events:
                poller.unregister(fd)
                if len(seen) < samples:
                    seen.append(_peek(by_fd[fd]))
            if len(events) < 1000:
                break
        return readable, seen
    finally:
        poller.close()


def _peek(sock: socket.socket) -> str:
    try:
        data = sock.recv(200, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError as exc:
        return f"error: {exc}"
    if not data:
        return "closed (FIN)"
    return repr(data.split(b"\r\n", 1)[0][:120])
