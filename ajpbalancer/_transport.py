"""The transport methods the protocols use, as one static type.

Twisted's ``Protocol.transport`` is typed as ``ITransport``; TCP and TLS transports also
provide ``IConsumer``, ``IPushProducer`` and ``abortConnection``, which flow control and
error handling need. :func:`stream` states that once, instead of at every call.
"""

from __future__ import annotations

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
