"""The transport methods the protocols use, as one static type.

Twisted's ``Protocol.transport`` is typed as ``ITransport``; TCP and TLS transports also
provide ``IConsumer``, ``IPushProducer`` and ``abortConnection``, which flow control and
error handling need. :func:`stream` states that once, instead of at every call.
:func:`write_through` writes without a reactor round trip per write; :class:`Outbox`
coalesces the writes made while one input event is handled.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from typing import Protocol, cast

from twisted.internet.interfaces import IAddress, ITransport
from twisted.internet.tcp import Connection
from twisted.python.failure import Failure


class PushProducer(Protocol):
    """What a transport asks of a streaming producer (Twisted's ``IPushProducer``)."""

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def stopProducing(self) -> None: ...


class StreamTransport(Protocol):
    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: Iterable[bytes]) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def loseWriteConnection(self) -> None:
        """Half-close (TCP and UNIX connections only: see ``tunnel.can_half_close``)."""

    def getPeer(self) -> IAddress: ...

    def getHost(self) -> IAddress: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def registerProducer(self, producer: PushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...


class ConnectionProtocol:
    """What Twisted asks of a protocol, without Twisted's ``Protocol`` base class.

    A transport calls ``makeConnection``, then ``dataReceived`` for each read and
    ``connectionLost`` once; nothing checks for ``IProtocol``. Written here as a plain
    class, the proxy's client and member connections (its subclasses) are native classes
    in the compiled build, where Twisted's base would make them ordinary Python objects.
    """

    def __init__(self) -> None:
        self.transport: ITransport | None = None
        self.connected = 0

    def makeConnection(self, transport: ITransport) -> None:
        self.connected = 1
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        """The connection is up."""

    def dataReceived(self, data: bytes) -> None:
        """Bytes read from the connection."""

    def connectionLost(self, reason: Failure | None = None) -> None:
        """The connection is gone."""

    def logPrefix(self) -> str:
        """What Twisted's log says of this connection."""
        return type(self).__name__


def stream(transport: ITransport | None) -> StreamTransport:
    assert transport is not None
    return cast(StreamTransport, transport)


def no_delay(transport: ITransport | None) -> None:
    """Turn Nagle's algorithm off: a proxy writes a head, then a body, and waits for
    neither to be acknowledged (with Nagle and delayed ACKs that costs ~40 ms a request)."""
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        # OSError: not a TCP socket after all (a UNIX socket under TLS, say).
        with contextlib.suppress(OSError):
            set_no_delay(True)


def write_through(transport: ITransport, data: bytes) -> None:
    """Write ``data`` to ``transport``, with ``send()`` at once when nothing is queued.

    Twisted's ``write`` only buffers: it registers the socket for writability (an
    ``epoll_ctl``), the reactor wakes and dispatches ``doWrite``, which sends and
    unregisters (another ``epoll_ctl``): per proxied request four ``epoll_ctl`` and about
    15% of the process's CPU beyond the sends themselves. When the connection is a plain
    TCP one with nothing queued, sending now is what ``doWrite`` would do next; only what
    the kernel does not take goes to Twisted's buffer, where flow control (pausing a
    streaming producer) and closing work as before. A send that fails otherwise (EPIPE,
    ECONNRESET) hands everything to ``transport.write``: Twisted's own send then fails
    the same way and reports the loss through ``connectionLost``, as it always did.
    Any other transport (TLS, a test's ``StringTransport``) gets ``transport.write``.
    """
    sock = _idle_socket(transport)
    if sock is None:
        transport.write(data)
        return
    try:
        sent = sock.send(data)
    except OSError:  # EAGAIN or ENOBUFS: nothing went; any other error: see above
        sent = 0
    if sent < len(data):
        transport.write(data[sent:] if sent else data)


SCATTER_MIN = 16 * 1024
"""Parts of at least this many bytes together go out with one ``sendmsg`` (the kernel
reads them where they are); smaller ones are joined first, which costs less than the
call's list of buffers."""
SCATTER_MAX_PARTS = 64
"""More parts than this are joined (``sendmsg`` takes at most ``IOV_MAX``)."""


def write_parts(transport: ITransport, parts: list[bytes]) -> None:
    """Write ``parts`` as :func:`write_through` writes one piece, in one send.

    A big answer held by the :class:`Outbox` is its head and body pieces: joining them
    would copy every body byte once more before the kernel copies them again. When they
    are big enough and the socket is idle, ``sendmsg`` sends them as they are; whatever
    the kernel does not take goes to Twisted's buffer, joined (the rare case).
    """
    if len(parts) == 1:
        write_through(transport, parts[0])
        return
    size = 0
    for part in parts:
        size += len(part)
    sock = (
        _idle_socket(transport) if size >= SCATTER_MIN and len(parts) <= SCATTER_MAX_PARTS else None
    )
    if sock is None:
        write_through(transport, b"".join(parts))
        return
    try:
        sent = sock.sendmsg(parts)
    except OSError:  # as in write_through
        sent = 0
    if sent < size:
        transport.write(b"".join(parts)[sent:])


def _idle_socket(transport: ITransport) -> socket.socket | None:
    """The socket of a plain TCP connection with nothing queued, else None.

    Anything that makes Twisted's next send not simply "these bytes" keeps the write on
    Twisted's path: bytes in either of its buffers (``dataBuffer`` past ``offset``,
    ``_tempDataBuffer``, joined at the next ``doWrite``), a close or half-close under
    way, an abort (its buffered bytes are dropped), TLS started on the connection, file
    descriptors to pass (a UNIX connection), or a pull producer, which Twisted resumes
    only once a write drained through its buffer.
    """
    if not isinstance(transport, Connection):
        return None
    if (
        not transport.connected
        or transport.disconnecting
        or transport._writeDisconnecting
        or transport._aborting
        or transport.TLS
        or transport._tempDataBuffer
        or len(transport.dataBuffer) > transport.offset
        or (transport.producer is not None and not transport.streamingProducer)
        or getattr(transport, "_sendmsgQueue", None)
    ):
        return None
    return transport.socket


class Outbox:
    """The one place where writes are coalesced: what is written to any connection while
    one input event is handled leaves as one send per connection.

    With :func:`write_through` every write is a send, and with TCP_NODELAY a segment: a
    response head, its body and the chunked terminator written while handling one member
    read would leave as three, and a request's head and the body that came with it as
    two (Twisted's buffer used to join them). Every entry point of input (a client read,
    a member read, a member connection coming up) holds the outbox around its work; the
    outermost :meth:`release` sends what each connection was given, in order. Outside a
    hold a write is sent at once. A connection's owner flushes it before
    ``loseConnection`` (what was written goes out first) and drops it before
    ``abortConnection`` or after ``connectionLost`` (as Twisted drops its buffer).

    One outbox serves one reactor (one thread): the proxy's composition root makes it and
    hands it to the frontends and the members.
    """

    __slots__ = ("_depth", "_held")

    def __init__(self) -> None:
        self._depth = 0
        self._held: dict[ITransport, list[bytes]] = {}

    @property
    def holding(self) -> bool:
        return self._depth > 0

    def hold(self) -> None:
        """Hold writes until the matching :meth:`release` (holds nest)."""
        self._depth += 1

    def release(self) -> None:
        """End a hold; the outermost one sends what was held."""
        depth = self._depth - 1
        if depth > 0:
            self._depth = depth
            return
        self._depth = 0  # never below 0: an unmatched release must not hold later writes
        held = self._held
        if held:
            for transport, parts in held.items():
                write_parts(transport, parts)
            held.clear()

    def write(self, transport: ITransport, data: bytes) -> None:
        if not data:
            return
        if self._depth:
            parts = self._held.get(transport)
            if parts is None:
                self._held[transport] = [data]
            else:
                parts.append(data)
        else:
            write_through(transport, data)

    def flush(self, transport: ITransport) -> None:
        """Send what is held for ``transport`` now, held or not (before a close)."""
        parts = self._held.pop(transport, None)
        if parts:
            write_parts(transport, parts)

    def drop(self, transport: ITransport) -> None:
        """Forget what is held for ``transport`` (the connection is aborted or gone)."""
        self._held.pop(transport, None)
