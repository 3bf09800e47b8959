"""A slow HTTP/1.1 member for the pipelining benchmark, in a thread of the bench process.

`SlowMember` listens on a loopback address, accepts every connection and reads every
request head. A request for ``/warm...`` is answered at once (keep-alive); any other
request is held, unanswered, until `SlowMember.release` is called: then every held
request, and every request that comes later (until `SlowMember.hold`), is answered
with ``Connection: close`` and its connection closed. It keeps no request bytes beyond
one partial head per connection (at most `MAX_BUFFER`), accepts at most
``max_connections`` connections at once (closing the others at once), and stops by
itself after ``lifetime`` seconds; `stop` ends it sooner. Request bodies are not
expected (the benchmark sends only GETs) and not read as such.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass

MAX_BUFFER = 64 * 1024
"""Bytes of an unfinished request head kept per connection; a longer one is closed."""
READ_SIZE = 64 * 1024
POLL_SECONDS = 0.1
WARM_PREFIX = b"/warm"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
CLOSING_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\nok\n"
)


@dataclass(slots=True)
class _Conn:
    """One accepted connection: the unparsed rest, requests held, bytes still to send."""

    sock: socket.socket
    buffer: bytes = b""
    held: int = 0
    out: bytes = b""
    closing: bool = False


@dataclass(frozen=True, slots=True)
class MemberCounts:
    """What the member has seen so far."""

    accepted: int
    refused: int
    open: int
    held: int
    """Requests held right now (not answered yet)."""
    held_total: int
    """Requests ever held."""
    answered_warm: int
    answered_after_release: int
    bytes_read: int


class SlowMember:
    """The member (see the module docstring); `start` binds and starts the thread."""

    def __init__(self, address: str, *, max_connections: int, lifetime: float) -> None:
        self.address = address
        self.max_connections = max_connections
        self.lifetime = lifetime
        self.port = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[int, _Conn] = {}
        self._accepted = 0
        self._refused = 0
        self._held = 0
        self._held_total = 0
        self._answered_warm = 0
        self._answered_after_release = 0
        self._bytes_read = 0
        self.error: str | None = None
        """Why the thread ended early, if it did."""

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def start(self) -> SlowMember:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.address, 0))
        listener.listen(max(128, min(self.max_connections, 4096)))
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="slow-member", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Answer every held request, and all later ones, with ``Connection: close``."""
        self._release.set()

    def hold(self) -> None:
        """Hold requests again (after `release`), as when started."""
        self._release.clear()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread and close every socket (bounded by `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def counts(self) -> MemberCounts:
        with self._lock:
            return MemberCounts(
                accepted=self._accepted,
                refused=self._refused,
                open=len(self._conns),
                held=self._held,
                held_total=self._held_total,
                answered_warm=self._answered_warm,
                answered_after_release=self._answered_after_release,
                bytes_read=self._bytes_read,
            )

    def wait_held(self, count: int, timeout: float) -> int:
        """Wait until `count` requests are held (or `timeout` s); how many are."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.counts().held
            if held >= count:
                return held
            time.sleep(0.05)
        return self.counts().held

    def wait_open_at_most(self, count: int, timeout: float) -> int:
        """Wait until at most `count` connections are open (or `timeout` s); how many are."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.counts().open > count:
            time.sleep(0.05)
        return self.counts().open

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        deadline = time.monotonic() + self.lifetime
        released = False
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                was_released, released = released, self._release.is_set()
                if released and not was_released:
                    for held in list(self._conns.values()):
                        self._answer_held(selector, held)
                for key, events in selector.select(POLL_SECONDS):
                    if key.fileobj is self._listener:
                        self._accept(selector)
                        continue
                    found = self._conns.get(key.fd)
                    if found is None:
                        continue
                    conn = found
                    if events & selectors.EVENT_WRITE:
                        self._flush(selector, conn)
                    if events & selectors.EVENT_READ and key.fd in self._conns:
                        self._read(selector, conn, released=released)
            if not self._stop.is_set():
                self.error = f"stopped by itself after {self.lifetime:.0f} s"
        except Exception as exc:  # reported, not raised: the thread has no caller
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            for left in list(self._conns.values()):
                self._close(selector, left)
            selector.close()
            self._listener.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        for _ in range(256):  # a bounded burst per wake-up
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            with self._lock:
                if len(self._conns) >= self.max_connections:
                    self._refused += 1
                    sock.close()
                    continue
                self._accepted += 1
                sock.setblocking(False)
                self._conns[sock.fileno()] = _Conn(sock)
            selector.register(sock, selectors.EVENT_READ)

    def _read(self, selector: selectors.BaseSelector, conn: _Conn, *, released: bool) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(selector, conn)
            return
        with self._lock:
            self._bytes_read += len(data)
        buffer = conn.buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buffer = buffer[:end], buffer[end + 4 :]
            parts = head.split(b" ", 2)
            target = parts[1] if len(parts) > 1 else b""
            if released:
                self._respond(selector, conn, CLOSING_ANSWER)
                with self._lock:
                    self._answered_after_release += 1
                return  # closing: whatever follows is not answered
            if conn.held or not target.startswith(WARM_PREFIX):
                conn.held += 1
                with self._lock:
                    self._held += 1
                    self._held_total += 1
            else:
                self._respond(selector, conn, ANSWER)
                with self._lock:
                    self._answered_warm += 1
        if len(buffer) > MAX_BUFFER:
            self._close(selector, conn)
            return
        conn.buffer = buffer

    def _answer_held(self, selector: selectors.BaseSelector, conn: _Conn) -> None:
        if not conn.held:
            return
        with self._lock:
            self._held -= conn.held
            self._answered_after_release += 1
        conn.held = 0
        self._respond(selector, conn, CLOSING_ANSWER)  # one answer, then close

    def _respond(self, selector: selectors.BaseSelector, conn: _Conn, answer: bytes) -> None:
        conn.out += answer
        conn.closing = answer is CLOSING_ANSWER
        self._flush(selector, conn)

    def _flush(self, selector: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(selector, conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        elif conn.closing:
            self._close(selector, conn)
        else:
            selector.modify(conn.sock, selectors.EVENT_READ)

    def _close(self, selector: selectors.BaseSelector, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        with self._lock:
            if self._conns.pop(fd, None) is None:
                return
            self._held -= conn.held
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(conn.sock)
        conn.sock.close()
