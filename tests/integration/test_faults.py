"""Fault injection: what a client gets when a member fails, over HTTP and AJP.

Two kinds of members misbehave here. Scripted members are small socket servers in a
thread on 127.0.0.x: over HTTP they write raw bytes; over AJP they speak the protocol
correctly with the codec's container end (`ServerConnection`) up to the fault. Each
records every request it received and every connection it accepted, so a test proves
that a POST was delivered at most once and that a member connection was not reused
after a fault. Real Tomcat nodes are killed mid-response and mid-request.

For every fault the client's answer is truthful: 502 or 504 before a response began;
once it began, a closed connection and a body that never looks complete (shorter than
its Content-Length, or chunked without the last chunk).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ajpbalancer.ajp import (
    EndResponse,
    ForwardRequest,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)

from .proxy import ProxyProcess
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]
TomcatFactory = Callable[..., list[Tomcat]]

READ_TIMEOUT = 8.0
MEMBER_TIMEOUT = 1
"""The members' ``timeout`` (s): slow-member tests wait a little longer than this."""


# --- scripted members ---------------------------------------------------------------------


@dataclass
class Received:
    """One request a scripted member read: its target and body."""

    target: bytes
    body: bytes


@dataclass
class Peer:
    """What a script gets for one request: the socket, the request, its number (from 1)."""

    sock: socket.socket
    request: Received
    number: int
    ajp: ServerConnection | None = None

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send_ajp(self, *events: SendHeaders | SendBodyChunk | EndResponse) -> None:
        assert self.ajp is not None
        self.sock.sendall(b"".join(self.ajp.send(e) for e in events))


Script = Callable[[Peer], bool]
"""Answers one request; returns whether to keep the connection for another request."""


@dataclass
class ScriptedMember:
    """A member on ``address`` whose answers are ``script``'s; records what it received."""

    address: str
    script: Script
    protocol: str = "http"
    requests: list[Received] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._server = socket.create_server((self.address, 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.address}:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT)
        ajp = ServerConnection() if self.protocol == "ajp" else None
        buf = [b""]
        try:
            while True:
                request = read_ajp(conn, ajp) if ajp is not None else read_http(conn, buf)
                if request is None:
                    return
                self.requests.append(request)
                if not self.script(Peer(conn, request, len(self.requests), ajp)):
                    return
                if ajp is not None:
                    ajp.start_next_cycle()
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def read_http(conn: socket.socket, buf: list[bytes]) -> Received | None:
    """One HTTP request (head and Content-Length body); None when the proxy closed."""
    data = buf[0]
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, data = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(data) < length:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    buf[0] = data[length:]
    return Received(head.split(b" ")[1], data[:length])


def read_ajp(conn: socket.socket, ajp: ServerConnection) -> Received | None:
    """One FORWARD_REQUEST and its (Content-Length) body; None when the proxy closed."""
    forward: ForwardRequest | None = None
    body = b""
    while True:
        piece = conn.recv(65536)
        for event in ajp.receive_data(piece):
            if isinstance(event, ForwardRequest):
                forward = event
            elif isinstance(event, RequestBody):
                body += event.data
        if not piece:
            return None
        if forward is not None and len(body) >= (forward.body_length or 0):
            query = b"" if forward.query_string is None else b"?" + forward.query_string
            return Received(forward.uri + query, body)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedMember]]:
    """Make scripted members owned by the test: ``scripted(script, protocol, address)``."""
    made: list[ScriptedMember] = []

    def make(script: Script, protocol: str = "http", address: str = "127.0.0.21") -> ScriptedMember:
        member = ScriptedMember(address, script, protocol)
        made.append(member)
        return member

    yield make
    for member in made:
        member.close()


def direct(member_url: str, params: str = "", path: str = "/s") -> str:
    """A proxy config sending `path` to one member directly (no balancer, no failover)."""
    return (
        "[ajpbalancer]\naccess_log = off\n[frontend]\n"
        "listen = tcp:{port}:interface=127.0.0.1\n"
        f"ProxyPass = {path} {member_url}{path} timeout={MEMBER_TIMEOUT} {params}\n"
    )


# --- the client ---------------------------------------------------------------------------


@dataclass
class Answer:
    """What the client read: status, header fields (lower-case names), body, closed."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes
    closed: bool

    @property
    def content_length(self) -> int | None:
        value = self.headers.get(b"content-length")
        return None if value is None else int(value)


def fetch(
    port: int, method: str = "GET", target: str = "/s/x", body: bytes | None = None
) -> Answer:
    """One request on a new connection; read until the answer is complete or the proxy closed.

    A body with a Content-Length is complete at that length, a chunked one at its last
    chunk; ``closed`` says the proxy closed the connection (possibly before that). A
    connection closed (or reset) before any byte is status 0: the proxy aborts the
    client connection when a member fails after the response began, and the bytes of
    the head it had queued may be dropped with it.
    """
    fields = f"{method} {target} HTTP/1.1\r\nHost: x\r\n"
    if body is not None:
        fields += f"Content-Length: {len(body)}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(fields.encode() + b"\r\n" + (body or b""))
        data, closed = b"", False
        while True:
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                answer = Answer(int(lines[0].split()[1]), headers, rest, closed)
                length = answer.content_length
                if length is not None and len(rest) >= length:
                    return answer
                if headers.get(b"transfer-encoding") == b"chunked" and rest.endswith(b"0\r\n\r\n"):
                    return answer
                if closed:
                    return answer
            elif closed:
                assert data == b"", data
                return Answer(0, {}, b"", True)
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                piece = b""
            if not piece:
                closed = True
            data += piece


def ajp_ok(peer: Peer, body: bytes = b"hello", reuse: bool = True) -> bool:
    """A correct AJP answer (200, Content-Length) on the scripted member's codec."""
    peer.send_ajp(
        SendHeaders(status=200, reason=b"OK", headers=((b"Content-Length", b"%d" % len(body)),)),
        SendBodyChunk(data=body),
        EndResponse(reuse=reuse),
    )
    return reuse


def http_ok(peer: Peer, body: bytes = b"hello") -> bool:
    peer.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


def ok(peer: Peer) -> bool:
    return ajp_ok(peer) if peer.ajp is not None else http_ok(peer)


PROTOCOLS = ["http", "ajp"]


# --- killed mid-response ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_member_dying_mid_body_leaves_a_short_body_and_a_closed_connection(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, protocol: str
) -> None:
    """Content-Length 100, 10 bytes, then the member is gone: 10 bytes and a close."""

    def script(peer: Peer) -> bool:
        if peer.ajp is not None:
            headers = ((b"Content-Length", b"100"),)
            peer.send_ajp(SendHeaders(status=200, reason=b"OK", headers=headers))
            peer.send_ajp(SendBodyChunk(data=b"0123456789"))
        else:
            peer.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        time.sleep(0.2)
        peer.reset()
        return False

    proxy = proxy_factory(direct(scripted(script, protocol).url))
    answer = fetch(proxy.port)
    assert (answer.status, answer.content_length, answer.closed) == (200, 100, True)
    assert answer.body == b"0123456789"


def test_chunked_member_dying_mid_body_never_sends_the_last_chunk(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory
) -> None:
    """A chunked response cut short reaches the client without its terminating chunk."""

    def script(peer: Peer) -> bool:
        peer.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.2)
        peer.reset()
        return False

    proxy = proxy_factory(direct(scripted(script).url))
    answer = fetch(proxy.port)
    assert (answer.status, answer.closed) == (200, True)
    assert b"hello" in answer.body
    assert not answer.body.endswith(b"0\r\n\r\n")


def test_ajp_end_response_before_content_length_is_not_a_complete_response(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory
) -> None:
    """END_RESPONSE after 10 of 100 declared bytes: the client's connection is closed."""

    def script(peer: Peer) -> bool:
        headers = ((b"Content-Length", b"100"),)
        peer.send_ajp(
            SendHeaders(status=200, reason=b"OK", headers=headers),
            SendBodyChunk(data=b"0123456789"),
            EndResponse(reuse=True),
        )
        return True

    member = scripted(script, "ajp")
    proxy = proxy_factory(direct(member.url))
    answer = fetch(proxy.port)
    assert answer.closed
    if answer.status != 0:
        assert (answer.status, answer.content_length) == (200, 100)
        assert len(answer.body) < 100


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tomcat_killed_mid_download_leaves_a_short_body(
    tomcat_factory: TomcatFactory, proxy_factory: ProxyFactory, protocol: str
) -> None:
    """Real Tomcat SIGKILLed while it streams: fewer bytes than Content-Length, then a close."""
    [node] = tomcat_factory(
        {f"fault{protocol}": "127.0.0.22" if protocol == "http" else "127.0.0.23"}
    )
    url = node.http_url if protocol == "http" else node.ajp_url
    proxy = proxy_factory(direct(url, path="/app"))
    size = 10 << 20
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=READ_TIMEOUT)
    conn.request("GET", f"/app/download?size={size}&delayms=100")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.length == size
    got = resp.read1(65536)
    node.kill()
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        got += resp.read()
    assert len(got) < size
    conn.close()


# --- reset before the response ------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_reset_before_the_response_gives_502_and_no_resend(
    scripted: Callable[..., ScriptedMember],
    proxy_factory: ProxyFactory,
    protocol: str,
    method: str,
) -> None:
    """The member reads the request and resets: 502, and it received the request once."""

    def script(peer: Peer) -> bool:
        peer.reset()
        return False

    member = scripted(script, protocol)
    proxy = proxy_factory(direct(member.url))
    body = b"x" * 1000 if method == "POST" else None
    answer = fetch(proxy.port, method, "/s/reset", body)
    assert answer.status == 502
    time.sleep(0.3)
    assert [r.target for r in member.requests] == [b"/s/reset"]
    assert member.requests[0].body == (body or b"")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reset_get_fails_over_post_does_not(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, protocol: str
) -> None:
    """In a balancer: a GET reset by one member is answered by the other; a POST is 502."""

    def reset(peer: Peer) -> bool:
        peer.reset()
        return False

    bad = scripted(reset, protocol, "127.0.0.24")
    good = scripted(ok, protocol, "127.0.0.25")
    config = (
        "[ajpbalancer]\naccess_log = off\n[frontend]\n"
        "listen = tcp:{port}:interface=127.0.0.1\nProxyPass = /s balancer://b/s\n"
        f"[balancer://b]\nBalancerMember = {bad.url} route=bad\n"
        f"                 {good.url} route=good\n"
        "ProxySet = stickysession=JSESSIONID|jsessionid\n"
    )
    proxy = proxy_factory(config)
    sticky = "/s/get;jsessionid=x.bad"
    assert fetch(proxy.port, "GET", sticky).status == 200
    assert [r.target.split(b";")[0] for r in bad.requests] == [b"/s/get"]
    assert len(good.requests) == 1
    # The bad member is in error now (retry 60 s): a POST pinned to it goes to the other,
    # which is fine; so restart the count with a POST that reaches the bad one first.
    proxy.stop()
    bad.requests.clear()
    good.requests.clear()
    proxy = proxy_factory(config)
    answer = fetch(proxy.port, "POST", "/s/post;jsessionid=x.bad", b"once")
    assert answer.status == 502
    time.sleep(0.3)
    assert [r.body for r in bad.requests] == [b"once"]
    assert good.requests == []


def test_tomcat_killed_while_holding_a_post_gives_502_and_no_second_delivery(
    tomcat_factory: TomcatFactory, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """A POST received by a Tomcat killed before answering: 502; the other node never saw it."""
    [victim] = tomcat_factory({"victim": "127.0.0.26"})
    other = tomcats[0]
    config = (
        "[ajpbalancer]\naccess_log = off\n[frontend]\n"
        "listen = tcp:{port}:interface=127.0.0.1\nProxyPass = /app balancer://b/app\n"
        f"[balancer://b]\nBalancerMember = {victim.ajp_url} route=victim\n"
        f"                 {other.ajp_url} route={other.jvm_route}\n"
        "ProxySet = stickysession=JSESSIONID|jsessionid\n"
    )
    proxy = proxy_factory(config)
    tag = uuid.uuid4().hex
    result: list[Answer] = []
    thread = threading.Thread(
        target=lambda: result.append(
            fetch(
                proxy.port, "POST", f"/app/hold;jsessionid=x.victim?tag={tag}&ms=5000", b"b" * 5000
            )
        )
    )
    thread.start()
    time.sleep(1.5)
    victim.kill()
    thread.join(READ_TIMEOUT + 2)
    assert [a.status for a in result] == [502]
    conn = http.client.HTTPConnection(other.address, other.http_port, timeout=READ_TIMEOUT)
    conn.request("GET", f"/app/hold?peek={tag}")
    assert json.loads(conn.getresponse().read())["seen"] is False
    conn.close()


# --- slow members -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_headers_beyond_timeout_give_504(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, protocol: str
) -> None:
    def script(peer: Peer) -> bool:
        time.sleep(MEMBER_TIMEOUT + 1.5)
        return False

    proxy = proxy_factory(direct(scripted(script, protocol).url))
    started = time.monotonic()
    assert fetch(proxy.port).status == 504
    assert time.monotonic() - started < MEMBER_TIMEOUT + 1.4


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_body_beyond_timeout_closes_the_client_connection(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, protocol: str
) -> None:
    def script(peer: Peer) -> bool:
        if peer.ajp is not None:
            headers = ((b"Content-Length", b"100"),)
            peer.send_ajp(
                SendHeaders(status=200, reason=b"OK", headers=headers),
                SendBodyChunk(data=b"0123456789"),
            )
        else:
            peer.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        time.sleep(MEMBER_TIMEOUT + 1.5)
        return False

    proxy = proxy_factory(direct(scripted(script, protocol).url))
    answer = fetch(proxy.port)
    assert (answer.status, answer.body, answer.closed) == (200, b"0123456789", True)


# --- malformed answers --------------------------------------------------------------------

MALFORMED_HTTP: dict[str, bytes] = {
    "garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "line-too-long": b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n",
    "malformed-line": b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n",
    "cl-and-te": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    ),
    "two-content-lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    ),
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED_HTTP))
def test_malformed_http_answer_gives_502_or_close_and_a_fresh_connection(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, name: str
) -> None:
    """A malformed answer: 502 (or a close once the head passed); the member connection
    is discarded, so the next request comes on a new connection and is answered."""

    def script(peer: Peer) -> bool:
        if peer.number == 1:
            peer.sock.sendall(MALFORMED_HTTP[name])
            return True  # the member would keep the connection: the proxy must not
        return http_ok(peer)

    member = scripted(script)
    proxy = proxy_factory(direct(member.url))
    answer = fetch(proxy.port)
    if answer.status != 502:
        assert answer.closed
        assert answer.content_length is None or len(answer.body) < answer.content_length
        assert not answer.body.endswith(b"0\r\n\r\n")
    second = fetch(proxy.port, target="/s/second")
    assert (second.status, second.body) == (200, b"hello")
    assert member.connections == 2


def test_bytes_after_the_declared_end_are_never_read_as_the_next_response(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory
) -> None:
    """Extra bytes after a Content-Length body: that connection is never reused."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

    def script(peer: Peer) -> bool:
        if peer.number == 1:
            peer.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + smuggled)
            return True
        return http_ok(peer, b"second")

    member = scripted(script)
    proxy = proxy_factory(direct(member.url))
    first = fetch(proxy.port)
    assert first.status in (200, 502)
    if first.status == 200:
        assert first.body == b"hello"
    second = fetch(proxy.port, target="/s/second")
    assert (second.status, second.body) == (200, b"second")
    assert member.connections == 2


MALFORMED_AJP: dict[str, bytes] = {
    "bad-magic": b"XY\x00\x01\x05",
    "unknown-type": b"AB\x00\x01\x7f",
    "truncated-headers": b"AB\x00\x03\x04\x00\xc8",
    "oversize-length": b"AB\xff\xff\x03",
    "body-before-headers": b"AB\x00\x08\x03\x00\x04abcd\x00",
}


@pytest.mark.parametrize("name", list(MALFORMED_AJP))
def test_malformed_ajp_packet_gives_502_and_does_not_desynchronise(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, name: str
) -> None:
    """A malformed packet: 502; the next request, on a new connection, gets its own answer."""

    def script(peer: Peer) -> bool:
        if peer.number == 1:
            peer.sock.sendall(MALFORMED_AJP[name])
            time.sleep(0.5)
            return False
        return ajp_ok(peer, peer.request.target)

    member = scripted(script, "ajp")
    proxy = proxy_factory(direct(member.url))
    assert fetch(proxy.port).status == 502
    second = fetch(proxy.port, target="/s/second")
    assert (second.status, second.body) == (200, b"/s/second")
    assert member.connections == 2


# --- closed between pooled requests -------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connection_closed_between_pooled_requests(
    scripted: Callable[..., ScriptedMember], proxy_factory: ProxyFactory, protocol: str
) -> None:
    """The member closes a kept-alive connection as the proxy reuses it (it reads the
    request, then closes without answering): a GET is retried on a fresh connection; a
    POST whose body went out is not resent (502), and the member saw it once."""
    stale = {2, 4}

    def script(peer: Peer) -> bool:
        if peer.number in stale:
            return False  # close without answering
        return ok(peer)

    member = scripted(script, protocol)
    proxy = proxy_factory(direct(member.url))
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=READ_TIMEOUT)
    conn.request("GET", "/s/one")
    assert conn.getresponse().read() == b"hello"
    conn.request("GET", "/s/two")  # reaches the member as request 2 (stale), then 3
    assert conn.getresponse().read() == b"hello"
    conn.request("POST", "/s/three", body=b"payload")  # request 4: stale, body sent
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 502
    time.sleep(0.3)
    targets = [r.target for r in member.requests]
    assert targets == [b"/s/one", b"/s/two", b"/s/two", b"/s/three"]
    assert member.connections == 2
    conn.close()
