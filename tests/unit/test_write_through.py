"""``write_through`` on real loopback TCP sockets, and the ``Outbox`` that coalesces writes.

A write to a Twisted TCP connection with nothing queued goes out with ``send()`` at once,
without the writer registration and reactor round trip of ``transport.write``; anything
queued, a close under way, an abort or a pull producer keeps Twisted's path, and a failed
send is still reported through ``connectionLost``. The connections here are real
``tcp.Server`` transports over accepted loopback sockets; their reactor is a
``MemoryReactorClock``, so "no reactor iteration" is observable as "no writer registered"
and the tests pump ``doWrite`` themselves where Twisted's buffer is used.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPullProducer, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from ajpbalancer._transport import SCATTER_MIN, Outbox, write_parts, write_through
from ajpbalancer.frontend import FrontendProtocol

PUMP_SECONDS = 20.0
RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: close() sends a reset."""


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection: (ours, the peer's)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
    peer.setblocking(False)
    return ours, peer


class Connection:
    """A ``tcp.Server`` on one end of a loopback pair, driven by a memory reactor."""

    def __init__(self, protocol: Protocol | None = None, *, sndbuf: int = 0) -> None:
        self.reactor = MemoryReactorClock()
        sock, self.peer = tcp_pair()
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            # Not as small at the peer: a tiny receive window crawls (persist timers).
            self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * sndbuf)
        self.protocol = protocol or Protocol()
        self.transport = tcp.Server(
            sock,
            self.protocol,
            sock.getpeername(),
            None,
            0,
            self.reactor,  # type: ignore[arg-type]
        )
        self.transport.repstr = "<test connection>"
        self.protocol.makeConnection(self.transport)

    def close(self) -> None:
        self.peer.close()
        self.reactor.advance(0)  # an abort's pending connectionLost
        if hasattr(self.transport, "socket"):
            self.transport.socket.close()

    @property
    def writing(self) -> bool:
        """Whether the connection waits for the reactor to write (Twisted's path)."""
        return self.transport in self.reactor.getWriters()

    def received_now(self) -> bytes:
        """What the peer can read at once, without any reactor iteration."""
        chunks = []
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def pump(self, expected: int) -> bytes:
        """Play the reactor: ``doWrite`` while writable and registered, read the peer,
        until ``expected`` bytes arrived (bounded in time)."""
        got = bytearray()
        deadline = time.monotonic() + PUMP_SECONDS
        while len(got) < expected:
            assert time.monotonic() < deadline, f"only {len(got)} of {expected} bytes arrived"
            wanted = [self.transport.socket] if self.writing else []
            readable, writable, _ = select.select([self.peer], wanted, [], 1.0)
            if writable:
                assert self.transport.doWrite() is None
            if readable:
                got += self.received_now()
        return bytes(got)


class SendSpy:
    """A socket that records what each ``send`` handed the kernel."""

    def __init__(self, sock: socket.socket, sends: list[bytes]) -> None:
        self._sock = sock
        self._sends = sends

    def send(self, data: bytes) -> int:
        n = self._sock.send(data)
        self._sends.append(bytes(data[:n]))
        return n

    def sendmsg(self, buffers: list[bytes]) -> int:
        n = self._sock.sendmsg(buffers)
        self._sends.append(b"".join(buffers)[:n])
        return n

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


@pytest.fixture
def conn() -> Iterator[Connection]:
    c = Connection()
    yield c
    c.close()


def test_a_write_with_nothing_queued_is_sent_at_once(conn: Connection) -> None:
    write_through(conn.transport, b"hello")
    assert conn.received_now() == b"hello"
    assert not conn.writing
    assert conn.transport.dataBuffer == b""
    assert conn.transport._tempDataBuffer == []


def test_a_write_behind_queued_bytes_is_queued_after_them(conn: Connection) -> None:
    conn.transport.write(b"first ")
    write_through(conn.transport, b"second")
    assert conn.received_now() == b""  # nothing overtook the queued bytes
    assert conn.pump(12) == b"first second"
    write_through(conn.transport, b" third")  # drained: direct again
    assert conn.received_now() == b" third"
    assert not conn.writing


def test_a_write_behind_a_partly_sent_buffer_keeps_its_place(conn: Connection) -> None:
    transport = conn.transport
    transport.dataBuffer, transport.offset = b"0123456789", 4  # as doWrite leaves it
    transport.startWriting()
    write_through(transport, b"abc")
    assert conn.received_now() == b""
    assert conn.pump(9) == b"456789abc"


def test_a_big_write_the_kernel_takes_in_part_arrives_whole_and_in_order() -> None:
    conn = Connection(sndbuf=4096)
    try:
        big = os.urandom(8 << 20)
        write_through(conn.transport, big)
        assert conn.writing  # the kernel took a part; Twisted's buffer holds the rest
        write_through(conn.transport, b"tail")  # queued after the rest, not sent before it
        assert conn.pump(len(big) + 4) == big + b"tail"
        assert not conn.writing
    finally:
        conn.close()


def test_a_big_write_fills_the_buffer_and_pauses_a_streaming_producer() -> None:
    conn = Connection(sndbuf=4096)
    try:

        class Producer:
            paused = 0
            resumed = 0

            def pauseProducing(self) -> None:
                self.paused += 1

            def resumeProducing(self) -> None:
                self.resumed += 1

            def stopProducing(self) -> None:
                pass

        producer = implementer(IPushProducer)(Producer)()
        conn.transport.registerProducer(producer, True)
        big = os.urandom(1 << 20)
        write_through(conn.transport, big)
        assert producer.paused == 1  # Twisted's flow control, as with transport.write
        assert conn.pump(len(big)) == big
        assert producer.resumed == 1
    finally:
        conn.close()


@implementer(IPullProducer)
class PullProducer:
    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda t: t.loseConnection(), id="closing"),
        pytest.param(lambda t: t.loseWriteConnection(), id="half-closing"),
        pytest.param(lambda t: t.registerProducer(PullProducer(), False), id="pull-producer"),
        pytest.param(lambda t: t.writeSequence([b""]), id="empty-sequence-queued"),
    ],
)
def test_a_connection_twisted_must_write_for_keeps_twisted_s_path(
    conn: Connection, setup: object
) -> None:
    setup(conn.transport)  # type: ignore[operator]
    write_through(conn.transport, b"queued")
    assert conn.received_now() == b""
    assert b"queued" in conn.transport._tempDataBuffer


def test_an_aborted_connection_drops_the_write_as_twisted_does(conn: Connection) -> None:
    conn.transport.abortConnection()
    write_through(conn.transport, b"dropped")
    assert conn.received_now() == b""
    conn.reactor.advance(0)  # the abort's connectionLost: a reset, nothing sent
    with pytest.raises(ConnectionResetError):
        conn.peer.recv(100)


def test_a_closed_connection_drops_the_write(conn: Connection) -> None:
    conn.transport.connectionLost(Failure(ConnectionDone()))
    write_through(conn.transport, b"dropped")
    assert conn.received_now() == b""


def test_a_failed_send_hands_everything_to_twisted(conn: Connection) -> None:
    conn.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    conn.peer.close()  # a reset
    time.sleep(0.05)
    write_through(conn.transport, b"lost")
    assert conn.writing
    assert conn.transport._tempDataBuffer == [b"lost"]
    assert isinstance(conn.transport.doWrite(), ConnectionLost)  # the reactor's next step


def test_big_parts_go_out_in_one_send_without_being_joined_first(conn: Connection) -> None:
    sends: list[bytes] = []
    conn.transport.socket = SendSpy(conn.transport.socket, sends)  # type: ignore[assignment]
    head, body = b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n", os.urandom(65536)
    parts = [head, body[:8192], body[8192:]]
    write_parts(conn.transport, parts)
    assert len(sends) == 1 and sends[0] == head + body  # one sendmsg
    assert not conn.writing
    assert conn.received_now() == head + body


def test_small_parts_are_joined_into_one_send(conn: Connection) -> None:
    sends: list[bytes] = []
    conn.transport.socket = SendSpy(conn.transport.socket, sends)  # type: ignore[assignment]
    write_parts(conn.transport, [b"a" * 100, b"b" * (SCATTER_MIN - 200)])
    assert sends == [b"a" * 100 + b"b" * (SCATTER_MIN - 200)]
    assert conn.received_now() == sends[0]


def test_parts_the_kernel_takes_in_part_arrive_whole_and_in_order() -> None:
    conn = Connection(sndbuf=4096)
    try:
        parts = [os.urandom(300), os.urandom(1 << 20), os.urandom(5000)]
        write_parts(conn.transport, parts)
        assert conn.writing  # the rest is in Twisted's buffer
        write_through(conn.transport, b"tail")  # queued after the rest, not sent before it
        assert conn.pump(sum(map(len, parts)) + 4) == b"".join(parts) + b"tail"
    finally:
        conn.close()


def test_parts_to_a_busy_connection_keep_twisted_s_path(conn: Connection) -> None:
    conn.transport.loseConnection()
    write_parts(conn.transport, [b"x" * SCATTER_MIN, b"y"])
    assert conn.received_now() == b""
    assert b"x" * SCATTER_MIN + b"y" in conn.transport._tempDataBuffer


def test_other_transports_get_write() -> None:
    transport = StringTransport()
    write_through(transport, b"abc")
    write_through(transport, b"def")
    write_parts(transport, [b"g" * SCATTER_MIN, b"h"])
    assert transport.value() == b"abcdef" + b"g" * SCATTER_MIN + b"h"


class Watched(Protocol):
    """Says when it is connected and how the connection was lost."""

    def __init__(self) -> None:
        self.made: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def connectionMade(self) -> None:
        self.made.callback(None)

    def connectionLost(self, reason: Failure = ConnectionDone) -> None:  # type: ignore[assignment]
        self.reason = reason
        self.lost.callback(None)


@pytest_twisted.inlineCallbacks
def test_a_reset_peer_is_reported_through_connection_lost_by_the_real_reactor():  # type: ignore[no-untyped-def]
    """The reactor runs: a direct send registers no writer, and a send that fails still
    reaches ``connectionLost`` (reading is stopped, so only the write can notice)."""
    from twisted.internet import reactor  # noqa: PLC0415  (pytest-twisted installs it)

    proto = Watched()
    port = reactor.listenTCP(0, Factory.forProtocol(lambda: proto), interface="127.0.0.1")  # type: ignore[attr-defined]
    peer = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        yield proto.made.addTimeout(5, reactor)
        transport = proto.transport
        write_through(transport, b"direct")
        assert transport not in reactor.getWriters()  # type: ignore[attr-defined]
        assert peer.recv(100) == b"direct"
        transport.stopReading()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        peer.close()
        yield deferLater(reactor, 0.05, lambda: None)  # the reset arrives
        write_through(transport, b"x" * 1000)
        yield proto.lost.addTimeout(5, reactor)
        assert proto.reason is not None and proto.reason.check(ConnectionLost) is not None
    finally:
        peer.close()
        yield port.stopListening()


# -- Outbox -------------------------------------------------------------------------------


class Counting(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


def test_outbox_holds_writes_and_sends_them_joined_at_the_outermost_release() -> None:
    transport = Counting()
    outbox = Outbox()
    outbox.hold()
    outbox.write(transport, b"head ")
    outbox.hold()
    outbox.write(transport, b"5\r\nhello\r\n")
    outbox.release()
    assert transport.writes == []
    outbox.write(transport, b"0\r\n\r\n")
    outbox.release()
    assert transport.writes == [b"head 5\r\nhello\r\n0\r\n\r\n"]
    outbox.write(transport, b"next")  # not held: at once
    assert transport.writes[-1] == b"next"


def test_one_release_sends_each_connections_writes_as_one() -> None:
    client, member = Counting(), Counting()
    outbox = Outbox()
    outbox.hold()
    outbox.write(member, b"GET / HTTP/1.1\r\n")
    outbox.write(client, b"HTTP/1.1 200 OK\r\n")
    outbox.write(member, b"Host: m\r\n\r\n")
    outbox.write(client, b"\r\n")
    outbox.release()
    assert member.writes == [b"GET / HTTP/1.1\r\nHost: m\r\n\r\n"]
    assert client.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]


def test_an_unmatched_release_does_not_hold_later_writes() -> None:
    transport = Counting()
    outbox = Outbox()
    outbox.release()
    outbox.write(transport, b"x")
    assert transport.writes == [b"x"]


def test_outbox_drop_forgets_what_was_held_for_that_connection_only() -> None:
    gone, kept = Counting(), Counting()
    outbox = Outbox()
    outbox.hold()
    outbox.write(gone, b"gone")
    outbox.write(kept, b"kept")
    outbox.drop(gone)
    outbox.release()
    assert gone.writes == []
    assert kept.writes == [b"kept"]


def test_outbox_flush_sends_one_connections_writes_while_held() -> None:
    transport = Counting()
    outbox = Outbox()
    outbox.hold()
    outbox.write(transport, b"before the close")
    outbox.flush(transport)
    assert transport.writes == [b"before the close"]
    outbox.release()
    assert transport.writes == [b"before the close"]


def test_a_frontend_error_answer_reaches_a_real_peer_as_one_send() -> None:
    clock = MemoryReactorClock()

    def no_exchange(*args: object) -> object:
        raise AssertionError("no request reaches an exchange here")

    proto = FrontendProtocol(clock, no_exchange)  # type: ignore[arg-type]
    conn = Connection(proto)
    try:
        writes: list[bytes] = []
        conn.transport.socket = SendSpy(conn.transport.socket, writes)  # type: ignore[assignment]
        proto.dataReceived(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400 and a close
        assert len(writes) == 1  # head and page: one send, before the close
        data = conn.received_now()
        assert data == writes[0]
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert data.endswith(b"</html>\n")
        assert conn.transport.disconnecting
        assert conn.transport._tempDataBuffer == [] and conn.transport.dataBuffer == b""
    finally:
        conn.close()
