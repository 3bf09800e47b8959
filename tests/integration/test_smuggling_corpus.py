"""A broad request-smuggling corpus replayed through the real process to a recording member.

Hundreds of request shapes, built from the published desync research and RFC 9112:
Content-Length and Transfer-Encoding in every combination and spelling (case, whitespace
before and after the colon and the value, vertical tab, NUL, bare CR, quotes, lists,
misspelt names, obs-fold), chunk sizes and extensions that parsers disagree on, trailers,
bare LF and CR line ends, HTTP/1.0 with chunked; each sent whole with a request
smuggled behind it (in its body, as a desync would need it) and a marker request
pipelined after it. The member records every request it parses with h11, an independent
strict parser. The invariant: **every request the member saw is one the proxy logged**
(as many times as it logged it), and the member never failed to parse what it got; so
nothing the client sent was taken by the member as a request the proxy did not know of.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h11
import pytest

from .proxy import ProxyProcess

MEMBER_HOST = "127.0.0.7"
CONCURRENCY = 24
READ_IDLE = 0.4
"""Seconds of silence after which a client stops reading (the proxy kept the connection)."""
READ_LIMIT = 3.0
"""Seconds a client reads at most (every loop here is bounded)."""


# -- the corpus ----------------------------------------------------------------------------

TE_NAMES = [
    b"Transfer-Encoding",
    b"transfer-encoding",
    b"TRANSFER-ENCODING",
    b"Transfer-Encoding ",
    b"Transfer-Encoding\t",
    b"Transfer_Encoding",
    b"Transfer-Encodin",
    b"X-Transfer-Encoding",
    b" Transfer-Encoding",
]
TE_VALUES = [
    b"chunked",
    b" chunked",
    b"chunked ",
    b"\tchunked",
    b"Chunked",
    b"CHUNKED",
    b"chunked\x0b",
    b"\x0bchunked",
    b"chunked,",
    b",chunked",
    b"chunked, chunked",
    b"identity, chunked",
    b"gzip, chunked",
    b"chunked, identity",
    b'"chunked"',
    b"chunk",
    b"xchunked",
    b"chunked\x00",
    b"chunked\r",
    b"chunked;q=1",
    b"",
    b"identity",
]
CL_VALUES = [
    b"5",
    b" 5",
    b"5 ",
    b"+5",
    b"-5",
    b"05",
    b"0x5",
    b"5.0",
    b"5,5",
    b"5, 5",
    b"",
    b"1e1",
    b"99999999999999999999",
    b"5\x00",
]
CHUNKED_BODIES = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"5;x=y\r\nhello\r\n0\r\n\r\n",
    b'5;x="a;b"\r\nhello\r\n0\r\n\r\n',
    b"05\r\nhello\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"5\rhello\r\n0\r\n\r\n",
    b"5\r\nhello\n0\r\n\r\n",
    b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    b"10000000000000000\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX Y: 1\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r",
    b"5\r\nhello\r\n0;ext\r\n\r\n",
    b"5\r\nhelloX0\r\n\r\n",
    b"3\r\nhello\r\n0\r\n\r\n",
]


def smuggled(case: int) -> bytes:
    return b"GET /app/c%d-smuggled HTTP/1.1\r\nHost: x\r\n\r\n" % case


def marker(case: int) -> bytes:
    return b"GET /app/c%d-after HTTP/1.1\r\nHost: x\r\n\r\n" % case


def post(case: int, fields: list[bytes], body: bytes, *, line_end: bytes = b"\r\n") -> bytes:
    head = b"POST /app/c%d HTTP/1.1" % case + line_end + b"Host: x" + line_end
    head += b"".join(f + line_end for f in fields) + line_end
    return head + body


def corpus() -> Iterator[bytes]:
    """Every shape, each with its smuggled request and its marker; case numbers in order."""
    case = itertools.count()

    def chunked_with_smuggled(n: int) -> bytes:
        return b"5\r\nhello\r\n0\r\n\r\n" + smuggled(n)

    for name, value in itertools.product(TE_NAMES, TE_VALUES):
        te = name + b":" + value
        n = next(case)
        yield post(n, [te], chunked_with_smuggled(n)) + marker(n)
        n = next(case)  # CL.TE: the TE says the body ends early, the CL that it goes on
        body = b"0\r\n\r\n" + smuggled(n)
        yield post(n, [b"Content-Length: %d" % len(body), te], body) + marker(n)
        n = next(case)  # TE.CL
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled(n)), smuggled(n))
        yield post(n, [te, b"Content-Length: 4"], body) + marker(n)
    for value in CL_VALUES:
        n = next(case)
        yield post(n, [b"Content-Length:" + value], b"hello" + smuggled(n)) + marker(n)
        n = next(case)
        fields = [b"Content-Length: 5", b"Content-Length:" + value]
        yield post(n, fields, b"hello" + smuggled(n)) + marker(n)
    for body in CHUNKED_BODIES:
        n = next(case)
        yield post(n, [b"Transfer-Encoding: chunked"], body + smuggled(n)) + marker(n)
    for line_end in (b"\n", b"\r", b"\r\r\n"):
        n = next(case)
        yield post(n, [b"Content-Length: 5"], b"hello" + smuggled(n), line_end=line_end)
    n = next(case)  # chunked on HTTP/1.0
    yield (
        b"POST /app/c%d HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" % n
        + b"5\r\nhello\r\n0\r\n\r\n"
        + smuggled(n)
        + marker(n)
    )
    n = next(case)  # a request line with a smuggled one folded into the target
    yield b"GET /app/c%d HTTP/1.1\r\nHost: x\r\n\r\n" % n + smuggled(n) + marker(n)


# -- the recording member ------------------------------------------------------------------


class RecordingMember:
    """An HTTP/1.1 member that parses with h11 and records every request target it sees."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.unparsed: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((MEMBER_HOST, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        parser = h11.Connection(h11.SERVER)
        conn.settimeout(0.5)
        with conn:
            while not self._stop.is_set():
                try:
                    event = parser.next_event()
                except h11.RemoteProtocolError as e:
                    with self._lock:
                        self.unparsed.append(str(e))
                    return
                if event is h11.NEED_DATA:
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        return
                    parser.receive_data(data)
                    if not data:
                        return
                elif isinstance(event, h11.Request):
                    with self._lock:
                        self.seen[event.target.decode("ascii", "replace")] += 1
                elif isinstance(event, h11.EndOfMessage):
                    response = h11.Response(status_code=200, headers=[("Content-Length", "2")])
                    with contextlib.suppress(OSError):
                        conn.sendall(parser.send(response) + parser.send(h11.Data(data=b"ok")))
                        conn.sendall(parser.send(h11.EndOfMessage()))
                    if parser.our_state is h11.MUST_CLOSE:
                        return
                    parser.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accepting.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


# -- the replay ----------------------------------------------------------------------------


def send(port: int, data: bytes) -> None:
    """Send ``data`` whole and read what comes back, within the time bounds."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_LIMIT) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        sock.settimeout(READ_IDLE)
        with contextlib.suppress(OSError):
            for _ in range(1000):
                if not sock.recv(65536):
                    break


LOGGED = re.compile(r'"[A-Z]+ (\S+) HTTP/1\.[01]" ')


def logged_targets(path: Path) -> Counter[str]:
    return Counter(
        m.group(1) for line in path.read_text().splitlines() if (m := LOGGED.search(line))
    )


@pytest.fixture
def member() -> Iterator[RecordingMember]:
    recording = RecordingMember()
    yield recording
    recording.close()


def test_every_request_the_member_sees_is_one_the_proxy_logged(
    member: RecordingMember, tmp_path: Path
) -> None:
    access_log = tmp_path / "access.log"
    config = (
        f"[ajpbalancer]\naccess_log = {access_log}\n"
        "[frontend]\nlisten = tcp:{port}:interface=127.0.0.1\n"
        f"ProxyPass = /app http://{MEMBER_HOST}:{member.port}/app timeout=5\n"
    )
    shapes = list(corpus())
    assert len(shapes) > 600
    proxy = ProxyProcess(config, tmp_path).start()
    try:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda data: send(proxy.port, data), shapes))
    finally:
        proxy.stop()
    logged = logged_targets(access_log)
    assert member.unparsed == [], "the member could not parse what the proxy sent it"
    assert sum(member.seen.values()) > len(shapes) // 4  # valid shapes and markers got through
    unlogged = {t: n for t, n in member.seen.items() if n > logged[t]}
    assert unlogged == {}, f"the member saw requests the proxy never logged: {unlogged}"
