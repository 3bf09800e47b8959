"""The events of an HTTP/1.1 server connection (:mod:`._server`), as read-only values.

Received (``receive_data`` returns them): :class:`Request`, :class:`Data`,
:class:`EndOfMessage`, :class:`ConnectionClosed` and :class:`Switched`. Sent (``send``
takes them): :class:`InformationalResponse`, :class:`Response`, :class:`Data`,
:class:`EndOfMessage`. Each is checked when it is made, so an event that would frame a
message wrongly cannot exist.

The events made for every request have constructors of their own, as the AJP events do
(see :mod:`ajpbalancer.ajp._events`): compiled, where ``dataclass`` would generate an
interpreted one. Their fields are ``Final``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ajpbalancer.h1._head import RequestHead


class BodyMode(Enum):
    """How a message body is delimited."""

    # Members compare by identity; an identity hash keeps them cheap as dict keys.
    __hash__ = object.__hash__

    NONE = "none"
    """No body (none declared, or ``Content-Length: 0``)."""
    LENGTH = "length"
    """``Content-Length`` bytes."""
    CHUNKED = "chunked"
    """``Transfer-Encoding: chunked``."""


@dataclass(slots=True, init=False)
class Request:
    """A request head arrived; its body (if any) follows as :class:`Data` events and an
    :class:`EndOfMessage`.

    ``length`` is the declared Content-Length (None when chunked or absent);
    ``expect_continue``: the client waits for ``100 Continue`` before its body;
    ``upgrade``: the protocols of the ``Upgrade`` field when the request asks to switch
    (HTTP/1.1 with ``upgrade`` in ``Connection``), else None.
    """

    head: Final[RequestHead]
    body: Final[BodyMode]
    length: Final[int | None]
    expect_continue: Final[bool]
    upgrade: Final[bytes | None]

    def __init__(
        self,
        head: RequestHead,
        body: BodyMode,
        length: int | None,
        expect_continue: bool = False,
        upgrade: bytes | None = None,
    ) -> None:
        self.head = head
        self.body = body
        self.length = length
        self.expect_continue = expect_continue
        self.upgrade = upgrade


@dataclass(slots=True, init=False, unsafe_hash=True)
class Data:
    """A piece of a body, framing removed (received) or to be framed (sent)."""

    data: Final[bytes]

    def __init__(self, data: bytes) -> None:
        self.data = data


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The body ended (received), or the response is complete (sent)."""


END_OF_MESSAGE = EndOfMessage()
"""The one instance needed: the event carries nothing."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed the connection between requests."""


@dataclass(slots=True, init=False, unsafe_hash=True)
class Switched:
    """A ``101 Switching Protocols`` was sent: from now on the connection carries another
    protocol. ``data``: what the client sent after the request, that protocol's first
    bytes. The connection takes no more input."""

    data: Final[bytes]

    def __init__(self, data: bytes) -> None:
        self.data = data


@dataclass(slots=True, init=False, unsafe_hash=True)
class InformationalResponse:
    """A 1xx response: ``100 Continue``, or ``101 Switching Protocols`` with its fields."""

    status: Final[int]
    headers: Final[Sequence[tuple[bytes, bytes]]]
    reason: Final[bytes]

    def __init__(
        self, status: int, headers: Sequence[tuple[bytes, bytes]] = (), reason: bytes = b""
    ) -> None:
        if not 100 <= status <= 199:
            raise ValueError(f"an informational response has a 1xx status, not {status}")
        self.status = status
        self.headers = headers
        self.reason = reason


@dataclass(slots=True, init=False, unsafe_hash=True)
class Response:
    """A final response head. ``length``: the body's length when known (framed with
    Content-Length; otherwise chunked for HTTP/1.1, close-delimited for HTTP/1.0);
    ``close``: end the connection after this response."""

    status: Final[int]
    headers: Final[Sequence[tuple[bytes, bytes]]]
    length: Final[int | None]
    reason: Final[bytes]
    close: Final[bool]

    def __init__(
        self,
        status: int,
        headers: Sequence[tuple[bytes, bytes]] = (),
        length: int | None = None,
        reason: bytes = b"",
        close: bool = False,
    ) -> None:
        if not 200 <= status <= 999:
            raise ValueError(f"a final response has a status of 200 to 999, not {status}")
        if length is not None and length < 0:
            raise ValueError(f"a body length cannot be negative ({length})")
        self.status = status
        self.headers = headers
        self.length = length
        self.reason = reason
        self.close = close


Event = Request | Data | EndOfMessage | ConnectionClosed | Switched
"""What :meth:`ServerConnection.receive_data` returns."""

SendEvent = InformationalResponse | Response | Data | EndOfMessage
"""What :meth:`ServerConnection.send` takes."""
