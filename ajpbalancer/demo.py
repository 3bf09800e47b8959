"""Built-in demo members, so that ``etc/demo.ini`` shows a working balancer at once.

Each demo member is a small HTTP/1.1 application server with a route, as a Tomcat node
with a ``jvmRoute`` is: it answers every path with a page naming itself and listing the
request headers it received (``X-Forwarded-*`` included), gives a new visitor a
``JSESSIONID=<id>.<route>`` cookie as Tomcat does, and redirects ``/redirect`` to its own
internal URL. An HTTP demo member is served by the server side of ajpbalancer's own
HTTP/1.1 codec, and takes a WebSocket upgrade on any path: it greets the client with its
name and echoes every message (:class:`WebSocketEcho`). An AJP13 one is served by the
container side of ajpbalancer's own AJP codec, as Tomcat's AJP connector would; as on a
Tomcat node, its WebSocket goes to an HTTP demo member of the same route
(``upgradeurl``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import struct

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IAddress, IReactorTCP
from twisted.internet.protocol import Factory, Protocol

from ajpbalancer.ajp import (
    AJPProtocolError,
    CPing,
    CPong,
    EndResponse,
    ForwardRequest,
    GetBodyChunk,
    RequestBody,
    SendBodyChunk,
    SendHeaders,
    ServerConnection,
)
from ajpbalancer.config import DemoBackend, Scheme
from ajpbalancer.h1 import (
    EndOfMessage,
    HTTPProtocolError,
    LocalProtocolError,
    Request,
    SendState,
    Switched,
)
from ajpbalancer.h1 import ServerConnection as HTTPServerConnection


def render_page(
    route: str,
    *,
    method: bytes,
    uri: bytes,
    headers: list[tuple[bytes, bytes]],
    session: bytes,
    hits: int,
    protocol: str,
) -> bytes:
    """The page every demo member answers with: who served, what it received."""
    rows = "".join(
        f"<tr><td>{html.escape(name.decode('latin-1'))}</td>"
        f"<td>{html.escape(value.decode('latin-1'))}</td></tr>\n"
        for name, value in headers
    )
    page = (
        f"<!DOCTYPE html>\n<html><head><title>demo member {route}</title></head><body>\n"
        f"<h1>Served by demo member {route}</h1>\n"
        f"<p>{html.escape(method.decode('latin-1'))} {html.escape(uri.decode('latin-1'))} "
        f"over {protocol} &mdash; request {hits} on this member; "
        f"session {html.escape(session.decode('latin-1'))}</p>\n"
        f"<table>\n{rows}</table>\n</body></html>\n"
    )
    return page.encode("utf-8")


def new_session(route: str) -> bytes:
    """A session id with the member's route after a dot, as Tomcat's jvmRoute makes it."""
    return f"{secrets.token_hex(8).upper()}.{route}".encode("ascii")


class HTTPDemoProtocol(Protocol):
    """One HTTP/1.1 connection to a demo member: pages, redirects, WebSocket upgrades."""

    def __init__(self, member: HTTPDemoMember) -> None:
        self.member = member
        self.codec = HTTPServerConnection()
        self.request: Request | None = None
        self.echo: WebSocketEcho | None = None

    def dataReceived(self, data: bytes) -> None:
        if self.echo is not None:
            self.echo.received(data)
            return
        try:
            events = self.codec.receive_data(data)
            while events:
                for event in events:
                    if isinstance(event, Request):
                        self.request = event
                    elif isinstance(event, EndOfMessage) and self.request is not None:
                        self._answer(self.request)
                    elif isinstance(event, Switched):
                        self.echo = WebSocketEcho(self, self.member.backend.route)
                        self.echo.received(event.data)
                        return
                if self.codec.send_state is SendState.MUST_CLOSE:
                    self._close()
                    return
                events = self.codec.next_events()
        except (HTTPProtocolError, LocalProtocolError):
            self._close()

    def _answer(self, request: Request) -> None:
        assert self.transport is not None
        self.request = None
        self.member.hits += 1
        route = self.member.backend.route
        head = request.head
        if request.upgrade is not None and b"websocket" in request.upgrade.lower():
            key = head.get(b"sec-websocket-key")
            if key is not None:
                accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
                fields = [
                    (b"Upgrade", b"websocket"),
                    (b"Connection", b"Upgrade"),
                    (b"Sec-WebSocket-Accept", accept),
                    (b"X-Demo-Member", route.encode("ascii")),
                ]
                self.transport.write(self.codec.send_informational(101, fields))
                return
        path = head.target.split(b"?", 1)[0]
        headers = [(b"X-Demo-Member", route.encode("ascii"))]
        if path == b"/redirect":
            location = str(self.member.backend.url).encode("ascii") + b"/"
            self._send(302, [(b"Location", location), *headers], b"")
            return
        cookies = b"; ".join(v for n, v in head.headers if n.lower() == b"cookie")
        session = _cookie(cookies, b"JSESSIONID")
        if session is None:
            session = new_session(route)
            headers.append((b"Set-Cookie", b"JSESSIONID=" + session + b"; Path=/; HttpOnly"))
        headers.append((b"Content-Type", b"text/html; charset=utf-8"))
        page = render_page(
            route,
            method=head.method,
            uri=head.target,
            headers=list(head.headers),
            session=session,
            hits=self.member.hits,
            protocol="HTTP/1.1",
        )
        self._send(200, headers, page)

    def _send(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        assert self.transport is not None
        codec = self.codec
        out = codec.start_response(status, headers, len(body))
        self.transport.write(out + codec.send_body(body) + codec.end_response())

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455's GUID of the ``Sec-WebSocket-Accept`` answer."""
_WS_MAX_FRAME = 16 << 20


class WebSocketEcho:
    """A demo member's WebSocket (RFC 6455, the server's side): a greeting naming the
    member, then every frame echoed as it came (text and binary, fragments too), pings
    answered, and the client's close returned."""

    def __init__(self, protocol: HTTPDemoProtocol, route: str) -> None:
        self.protocol = protocol
        self.buffer = b""
        self.closing = False
        self._send(0x1, f"connected to demo member {route}: send anything, it comes back".encode())

    def received(self, data: bytes) -> None:
        self.buffer += data
        while not self.closing:
            frame = self._frame()
            if frame is None:
                return
            fin_opcode, payload = frame
            opcode = fin_opcode & 0x0F
            if opcode == 0x8:  # close: answer it with the same code, then close
                self.closing = True
                self._send(0x8, payload[:2])
                transport = self.protocol.transport
                if transport is not None:
                    transport.loseConnection()
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode in (0x0, 0x1, 0x2):
                self._send(fin_opcode & 0x0F, payload, fin=bool(fin_opcode & 0x80))

    def _frame(self) -> tuple[int, bytes] | None:
        """The next whole frame (its first byte, its unmasked payload), or None."""
        buf = self.buffer
        if len(buf) < 2:
            return None
        length, at = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            (length,), at = struct.unpack("!H", buf[2:4]), 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,), at = struct.unpack("!Q", buf[2:10]), 10
        if length > _WS_MAX_FRAME:
            self.closing = True
            if self.protocol.transport is not None:
                self.protocol.transport.loseConnection()
            return None
        masked = buf[1] & 0x80
        end = at + (4 if masked else 0) + length
        if len(buf) < end:
            return None
        payload = buf[end - length : end]
        if masked:
            mask = buf[at : at + 4]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.buffer = buf[end:]
        return buf[0], payload

    def _send(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        transport = self.protocol.transport
        if transport is None:
            return
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", first, n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", first, 126, n)
        else:
            head = struct.pack("!BBQ", first, 127, n)
        transport.write(head + payload)


class HTTPDemoMember(Factory):
    """A demo member reached over HTTP/1.1."""

    noisy = False

    def __init__(self, backend: DemoBackend) -> None:
        self.backend = backend
        self.hits = 0

    def buildProtocol(self, addr: IAddress | None) -> HTTPDemoProtocol:
        return HTTPDemoProtocol(self)


class AJPDemoProtocol(Protocol):
    """One AJP13 connection to a demo member: the container side of the codec."""

    def __init__(self, member: AJPDemoMember) -> None:
        self.member = member
        self.codec = ServerConnection()
        self.request: ForwardRequest | None = None
        self.body_bytes = 0

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.codec.receive_data(data)
        except AJPProtocolError:
            self.transport.loseConnection()
            return
        for event in events:
            if isinstance(event, CPing):
                self.transport.write(self.codec.send(CPong()))
            elif isinstance(event, ForwardRequest):
                self.request = event
                self.body_bytes = 0
                chunked = any(n.lower() == b"transfer-encoding" for n, _ in event.headers)
                if chunked:
                    self._ask()
                elif not self.codec.body_expected:
                    self._answer()
            elif isinstance(event, RequestBody):
                self.body_bytes += len(event.data)
                if event.data and not self.codec.body_finished:
                    self._ask()
                else:
                    self._answer()

    def _ask(self) -> None:
        assert self.transport is not None
        self.transport.write(self.codec.send(GetBodyChunk(length=self.codec.max_request_chunk)))

    def _answer(self) -> None:
        assert self.transport is not None and self.request is not None
        request = self.request
        member = self.member
        member.hits += 1
        route = member.backend.route
        cookies = b"; ".join(v for n, v in request.headers if n.lower() == b"cookie")
        session = _cookie(cookies, b"JSESSIONID")
        headers = [
            (b"Content-Type", b"text/html; charset=utf-8"),
            (b"X-Demo-Member", route.encode("ascii")),
        ]
        if session is None:
            session = new_session(route)
            headers.append((b"Set-Cookie", b"JSESSIONID=" + session + b"; Path=/; HttpOnly"))
        uri = (
            request.uri
            if request.query_string is None
            else request.uri + b"?" + request.query_string
        )
        page = render_page(
            route,
            method=request.method,
            uri=uri,
            headers=list(request.headers),
            session=session,
            hits=member.hits,
            protocol="AJP13",
        )
        headers.append((b"Content-Length", b"%d" % len(page)))
        self.transport.write(
            self.codec.send(SendHeaders(status=200, reason=b"OK", headers=tuple(headers)))
            + self.codec.send(SendBodyChunk(data=page))
            + self.codec.send(EndResponse(reuse=True))
        )
        self.codec.start_next_cycle()
        self.request = None


def _cookie(header: bytes, name: bytes) -> bytes | None:
    for part in header.split(b";"):
        key, eq, value = part.strip().partition(b"=")
        if eq and key == name:
            return value
    return None


class AJPDemoMember(Factory):
    """A demo member reached over AJP13."""

    noisy = False

    def __init__(self, backend: DemoBackend) -> None:
        self.backend = backend
        self.hits = 0

    def buildProtocol(self, addr: IAddress | None) -> AJPDemoProtocol:
        return AJPDemoProtocol(self)


def demo_service(reactor: IReactorTCP, backend: DemoBackend) -> IService:
    """A service listening on the demo member's URL (loopback, checked by the config)."""
    port = backend.url.port
    assert port is not None
    host = backend.url.host
    endpoint = (
        TCP6ServerEndpoint(reactor, port, interface=host)
        if ":" in host
        else TCP4ServerEndpoint(reactor, port, interface=host)
    )
    factory: Factory
    if backend.url.scheme is Scheme.AJP:
        factory = AJPDemoMember(backend)
    else:
        factory = HTTPDemoMember(backend)
    service = StreamServerEndpointService(endpoint, factory)
    service._raiseSynchronously = True
    return service
