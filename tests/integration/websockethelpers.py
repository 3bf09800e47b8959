"""Shared pieces of the WebSocket integration tests: a real client, a raw one, the echo.

The webapp's endpoint ``/app/ws/echo`` (``WsEcho.java``) echoes text and binary
messages, answers ``whoami`` with ``node=ROUTE``, closes on ``close:CODE:REASON`` and
sends ``flood:N`` binary messages of 64 KiB. `connect` is the ``websockets`` package's
client with every wait bounded; `RawWebSocket` speaks the handshake and masked frames over
a plain socket, for a client that must misbehave (never read) or a handshake that must
be seen byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Coroutine
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

WS_PATH = "/app/ws/echo"
TIMEOUT = 20.0
"""Seconds any one wait of a test client may take (a hung proxy fails, never hangs)."""

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """Run ``coro`` to its end, within ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(port: int, cookie: str | None = None, path: str = WS_PATH) -> ws_connect:
    """A ``websockets`` client to ``127.0.0.1:port`` (no compression, no keepalive pings,
    no size limit, no proxy from the environment), with ``JSESSIONID=cookie``."""
    headers = {"Cookie": f"JSESSIONID={cookie}"} if cookie else {}
    return ws_connect(
        f"ws://127.0.0.1:{port}{path}",
        additional_headers=headers,
        compression=None,
        proxy=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        ping_interval=None,
        max_size=None,
    )


async def ask(ws: ClientConnection, message: str | bytes) -> str | bytes:
    """Send ``message``, return the next message received."""
    await ws.send(message)
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def whoami(port: int, cookie: str | None = None) -> str:
    """The route of the node that serves a new WebSocket (``node=ROUTE``)."""
    async with connect(port, cookie) as ws:
        answer = await ask(ws, "whoami")
    assert isinstance(answer, str)
    return answer.removeprefix("node=")


class RawWebSocket:
    """A client over a plain socket: the handshake as bytes, masked frames out."""

    KEY = base64.b64encode(b"ajpbalancer-test").decode("ascii")

    def __init__(self, port: int, path: str = WS_PATH, headers: dict[str, str] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Key: {self.KEY}",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(4096)
            assert data, f"closed during the handshake after {head!r}"
            head += data
        self.head, self.rest = head.split(b"\r\n\r\n", 1)

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def fields(self) -> list[tuple[str, str]]:
        """The handshake answer's fields, in order (names lower-cased)."""
        out = []
        for line in self.head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            out.append((name.strip().lower(), value.strip()))
        return out

    def send_text(self, text: str) -> None:
        payload = text.encode("utf-8")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)

    def close(self) -> None:
        self.sock.close()
