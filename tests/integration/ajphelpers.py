"""Helpers of the AJP integration tests: a raw HTTP/1.x client, frontend configs, digests.

`exchange` sends a request given as bytes (so header order, repeats, case and the HTTP
version are exactly what the test wrote) over plain TCP or TLS from `CLIENT_ADDRESS`, and
reads the answer with the standard library's parser. The same function drives Apache and
ajpbalancer in the differential tests. `ajp_frontend` writes an ajpbalancer config with one
frontend proxying ``/app`` to one member; `start_proxy` runs it outside the function-scoped
``proxy_factory`` so a module can share one process.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
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
