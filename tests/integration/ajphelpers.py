"""Helpers of the AJP integration tests: a raw HTTP/1.x client, configs, an AJP recorder.

`exchange` sends a request given as bytes (so header order, repeats, case and the HTTP
version are exactly what the test wrote) over plain TCP or TLS from `CLIENT_ADDRESS`, and
reads the answer with the standard library's parser. The same function drives Apache and
ajpbalancer in the differential tests. `ajp_frontend` writes an ajpbalancer config with one
frontend proxying ``/app`` to one member; `start_proxy` runs it outside the function-scoped
``proxy_factory`` so a module can share one process. `RecordingContainer` is a minimal AJP
container that keeps every FORWARD_REQUEST it gets, and `parse_forward_request` decodes one
with its own tables (not the codec's), so two proxies' packets can be compared field by field.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .proxy import ProxyProcess

CLIENT_ADDRESS = "127.0.0.9"
"""A loopback address no server uses: what Tomcat reports as remoteAddr must be this."""

PLAIN_LISTEN = "tcp:{port}:interface=127.0.0.1"

DOWNLOAD_MOD = 251
"""``/app/download`` sends byte i as ``i % 251``."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One response as the client received it, and the client's side of the connection."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    client_port: int
    cipher: tuple[str, str, int] | None
    """``(name, protocol, secret bits)`` the TLS client negotiated; None over plain TCP."""

    def header(self, name: str) -> list[str]:
        """Every value of response field `name` (any case), in order."""
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def json(self) -> dict[str, Any]:
        """The body as JSON (``/app/echo`` and friends); fails the test if it is not."""
        assert self.status == 200, (self.status, self.body[:500])
        result: dict[str, Any] = json.loads(self.body)
        return result


def build_request(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    """A request head written exactly as given, then `body` (Content-Length is not added)."""
    lines = [f"{method} {target} {version}"]
    lines += [f"{name}: {value}" for name, value in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def exchange(
    address: str,
    port: int,
    request: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    source: str = CLIENT_ADDRESS,
    timeout: float = 30.0,
) -> Reply:
    """Send `request` on a new connection from `source`, read one response, close.

    With `tls` the connection is TLS with that context; `address` is a literal IP, so no
    SNI is sent (both Apache and ajpbalancer then pick their only certificate, and
    mod_ssl's SNI/Host consistency check cannot refuse a request without Host).
    """
    method = request.split(b" ", 1)[0].decode("ascii")
    raw = socket.create_connection((address, port), timeout=timeout, source_address=(source, 0))
    sock: socket.socket = raw
    try:
        if tls is not None:
            sock = tls.wrap_socket(raw, server_hostname=address)
        client_port: int = sock.getsockname()[1]
        cipher = sock.cipher() if isinstance(sock, ssl.SSLSocket) else None
        sock.sendall(request)
        resp = http.client.HTTPResponse(sock, method=method)
        try:
            resp.begin()
            body = resp.read()
        finally:
            resp.close()
    finally:
        sock.close()
    return Reply(resp.status, resp.reason, resp.getheaders(), body, client_port, cipher)


def ajp_frontend(target: str, params: str = "", *, listen: str = PLAIN_LISTEN) -> str:
    """An ajpbalancer config: one frontend, ``ProxyPass /app TARGET/app PARAMS``."""
    return f"""
[ajpbalancer]
access_log = access.log

[frontend]
listen = {listen}
ProxyPass = /app {target}/app {params}
"""


def start_proxy(config: str, workdir: Path) -> ProxyProcess:
    """Start ajpbalancer with `config` in `workdir` (created); the caller stops it."""
    workdir.mkdir(parents=True, exist_ok=True)
    return ProxyProcess(config, workdir).start()


def download_sha256(size: int) -> str:
    """SHA-256 of what ``/app/download?size=SIZE`` sends."""
    pattern = bytes(i % DOWNLOAD_MOD for i in range(DOWNLOAD_MOD * 1024))
    digest = hashlib.sha256()
    full, rest = divmod(size, len(pattern))
    for _ in range(full):
        digest.update(pattern)
    digest.update(pattern[:rest])
    return digest.hexdigest()


# --- a container that records what it is sent ----------------------------------------------

AJP_CODED_REQUEST_HEADERS = {
    0xA001: "accept",
    0xA002: "accept-charset",
    0xA003: "accept-encoding",
    0xA004: "accept-language",
    0xA005: "authorization",
    0xA006: "connection",
    0xA007: "content-type",
    0xA008: "content-length",
    0xA009: "cookie",
    0xA00A: "cookie2",
    0xA00B: "host",
    0xA00C: "pragma",
    0xA00D: "referer",
    0xA00E: "user-agent",
}
"""Written out here rather than imported: the recorder must not share the codec's tables."""

AJP_ATTRIBUTE_NAMES = {
    0x01: "context",
    0x02: "servlet_path",
    0x03: "remote_user",
    0x04: "auth_type",
    0x05: "query_string",
    0x06: "jvm_route",
    0x07: "ssl_cert",
    0x08: "ssl_cipher",
    0x09: "ssl_session",
    0x0A: "req_attribute",
    0x0B: "ssl_key_size",
    0x0C: "secret",
    0x0D: "stored_method",
}


class _Reader:
    """Reads AJP13 primitives from one packet payload (big-endian, strings NUL-ended)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint16(self) -> int:
        value = int.from_bytes(self.data[self.pos : self.pos + 2], "big")
        self.pos += 2
        return value

    def peek_uint16(self) -> int:
        return int.from_bytes(self.data[self.pos : self.pos + 2], "big")

    def string(self) -> str | None:
        """A string as latin-1 text; None for the null string (length 0xFFFF)."""
        length = self.uint16()
        if length == 0xFFFF:
            return None
        value = self.data[self.pos : self.pos + length]
        assert self.data[self.pos + length] == 0, "string without its NUL terminator"
        self.pos += length + 1
        return value.decode("latin-1")


def parse_forward_request(payload: bytes) -> dict[str, Any]:
    """Every field of a FORWARD_REQUEST payload, in order (headers and attributes as lists).

    Coded header names are shown as ``0xA00B:host``; attributes as ``[name, value]`` with
    request attributes as ``req_attribute:NAME``; ``ssl_key_size`` is the integer sent.
    """
    r = _Reader(payload)
    assert r.byte() == 2, "not a FORWARD_REQUEST"
    fields: dict[str, Any] = {"method": r.byte()}
    for name in ("protocol", "req_uri", "remote_addr", "remote_host", "server_name"):
        fields[name] = r.string()
    fields["server_port"] = r.uint16()
    fields["is_ssl"] = r.byte()
    headers = []
    for _ in range(r.uint16()):
        code = r.peek_uint16()
        if code & 0xFF00 == 0xA000:
            r.uint16()
            name = f"0x{code:04X}:{AJP_CODED_REQUEST_HEADERS.get(code, '?')}"
        else:
            name = r.string() or ""
        headers.append([name, r.string()])
    fields["headers"] = headers
    attributes: list[list[Any]] = []
    while (code := r.byte()) != 0xFF:
        label = AJP_ATTRIBUTE_NAMES.get(code, f"0x{code:02X}")
        if code == 0x0A:
            label = f"req_attribute:{r.string()}"
        attributes.append([label, r.uint16() if code == 0x0B else r.string()])
    fields["attributes"] = attributes
    assert r.pos == len(payload), "bytes after the attribute terminator"
    return fields


class RecordingContainer:
    """An AJP13 container on `address` that records each FORWARD_REQUEST and answers 200.

    It answers CPING with CPONG, every FORWARD_REQUEST with ``SEND_HEADERS 200`` (no
    headers) and ``END_RESPONSE`` (reuse), and keeps connections open. Requests must have
    no body. Threads end when `close` is called or after `lifetime` seconds.
    """

    SEND_HEADERS_200 = b"AB\x00\x0a\x04\x00\xc8\x00\x02OK\x00\x00\x00"
    END_RESPONSE_REUSE = b"AB\x00\x02\x05\x01"
    CPONG = b"AB\x00\x01\x09"

    def __init__(self, address: str, lifetime: float = 300.0) -> None:
        self.address = address
        self.packets: list[bytes] = []
        self._lock = threading.Lock()
        self._server = socket.create_server((address, 0))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._deadline = lifetime
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ajp://{self.address}:{self.port}"

    def take(self) -> list[bytes]:
        """The FORWARD_REQUEST payloads received since the last call."""
        with self._lock:
            packets, self.packets = self.packets, []
        return packets

    def close(self) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        end = time.monotonic() + self._deadline
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, end), daemon=True).start()

    def _serve(self, conn: socket.socket, end: float) -> None:
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self._stop.is_set() and time.monotonic() < end:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[2:4], "big"):
                    size = int.from_bytes(buf[2:4], "big")
                    payload, buf = buf[4 : 4 + size], buf[4 + size :]
                    if payload[:1] == b"\x0a":
                        conn.sendall(self.CPONG)
                    elif payload[:1] == b"\x02":
                        with self._lock:
                            self.packets.append(payload)
                        conn.sendall(self.SEND_HEADERS_200 + self.END_RESPONSE_REUSE)
