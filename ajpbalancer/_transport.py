"""The transport methods the protocols use, as one static type.

Twisted's ``Protocol.transport`` is typed as ``ITransport``; TCP and TLS transports also
provide ``IConsumer``, ``IPushProducer`` and ``abortConnection``, which flow control and
error handling need. :func:`stream` states that once, instead of at every call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Protocol, cast

from twisted.internet.interfaces import IAddress, IPushProducer, ITransport


class StreamTransport(Protocol):
    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: Iterable[bytes]) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> IAddress: ...

    def getHost(self) -> IAddress: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...


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
