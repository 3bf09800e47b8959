"""A Redis connection on Twisted: commands answered in order, each within a time limit.

:class:`RedisConnection` is the glue between a transport and the RESP codec
(:mod:`ajpbalancer.resp`): :meth:`~RedisConnection.command` writes a command and returns a
Deferred of its reply; replies come back in the order of the commands. A command not
answered within ``timeout`` seconds fails with :class:`StoreError` and the connection is
aborted, so a server that hangs (``SIGSTOP``) costs one timeout, never a request's wait:
nothing on the request path calls this. After :meth:`~RedisConnection.subscribe` the
connection delivers published messages to ``on_message``. The clock is injected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from ajpbalancer.errors import AJPBalancerError
from ajpbalancer.resp import (
    NEED_DATA,
    ErrorReply,
    Reply,
    ReplyParser,
    RESPProtocolError,
    encode_command,
)


class StoreError(AJPBalancerError):
    """The store did not answer in time, answered an error, or the connection is gone."""


@dataclass
class _Waiting:
    """A command waiting for ``replies`` replies (a SUBSCRIBE gets one per channel)."""

    done: Deferred[Reply]
    replies: int
    timer: IDelayedCall | None
    got: list[Reply] = field(default_factory=list)


class RedisConnection(Protocol):
    """One connection to the store (see the module docstring)."""

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float,
        *,
        on_message: Callable[[bytes, bytes], None] | None = None,
        on_lost: Callable[[RedisConnection, str], None] | None = None,
    ) -> None:
        self._clock = clock
        self.timeout = timeout
        self._on_message = on_message
        self._on_lost = on_lost
        self._parser = ReplyParser()
        self._waiting: deque[_Waiting] = deque()
        self.subscribed = False
        self.closed = False
        self._reason = "the connection closed"

    # -- commands ---------------------------------------------------------------------------

    def command(self, *args: bytes | str | int) -> Deferred[Reply]:
        """Send a command; its reply (an :class:`ErrorReply` fails it with StoreError)."""
        return self._send(encode_command(*args), 1).addCallback(self._no_error)

    def subscribe(self, *channels: str) -> Deferred[Reply]:
        """Subscribe to ``channels``: messages then go to ``on_message``."""
        self.subscribed = True
        return self._send(encode_command("SUBSCRIBE", *channels), len(channels))

    @staticmethod
    def _no_error(reply: Reply) -> Reply:
        if isinstance(reply, ErrorReply):
            raise StoreError(f"the store answered: {reply.message}")
        return reply

    def _send(self, data: bytes, replies: int) -> Deferred[Reply]:
        done: Deferred[Reply] = Deferred()
        if self.closed or self.transport is None:
            done.errback(StoreError(self._reason))
            return done
        waiting = _Waiting(done, replies, None)
        waiting.timer = self._clock.callLater(self.timeout, self._timed_out, waiting)
        self._waiting.append(waiting)
        self.transport.write(data)
        return done

    def _timed_out(self, waiting: _Waiting) -> None:
        waiting.timer = None
        self.abort(f"no answer from the store within {self.timeout:g}s")

    def abort(self, why: str) -> None:
        """Drop the connection; every command waiting fails with ``why``."""
        self._reason = why
        self._fail_all(why)
        if self.transport is not None and not self.closed:
            self.transport.abortConnection()  # type: ignore[attr-defined]  # ITCPTransport

    def _fail_all(self, why: str) -> None:
        waiting, self._waiting = self._waiting, deque()
        for w in waiting:
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            if not w.done.called:
                w.done.errback(StoreError(why))

    # -- the transport ------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        try:
            self._parser.receive_data(data)
            while True:
                reply = self._parser.next_reply()
                if reply is NEED_DATA:
                    return
                self._reply(reply)  # type: ignore[arg-type]  # a Reply, NEED_DATA aside
        except RESPProtocolError as e:
            self.abort(str(e))

    def _reply(self, reply: Reply) -> None:
        if (
            self.subscribed
            and isinstance(reply, list)
            and len(reply) == 3
            and reply[0] == b"message"
        ):
            channel, message = reply[1], reply[2]
            callback = self._on_message
            if callback is not None and isinstance(channel, bytes) and isinstance(message, bytes):
                callback(channel, message)
            return
        if not self._waiting:
            self.abort("the store sent a reply nobody asked for")
            return
        waiting = self._waiting[0]
        waiting.got.append(reply)
        if len(waiting.got) < waiting.replies:
            return
        self._waiting.popleft()
        if waiting.timer is not None and waiting.timer.active():
            waiting.timer.cancel()
        waiting.done.callback(waiting.got[0] if waiting.replies == 1 else list(waiting.got))

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.closed = True
        if not self._reason or self._reason == "the connection closed":
            self._reason = f"the connection to the store was lost: {reason.getErrorMessage()}"
        self._fail_all(self._reason)
        if self._on_lost is not None:
            self._on_lost(self, self._reason)
