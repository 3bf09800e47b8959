"""Built-in demo members, so that ``etc/demo.ini`` shows a working balancer at once.

Each demo member is a small HTTP/1.1 application server with a route, as a Tomcat node
with a ``jvmRoute`` is: it answers every path with a page naming itself and listing the
request headers it received (``X-Forwarded-*`` included), gives a new visitor a
``JSESSIONID=<id>.<route>`` cookie as Tomcat does, and redirects ``/redirect`` to its own
internal URL. An HTTP demo member is served by ``twisted.web`` (it is on no hot path); an AJP13 one
by the container side of ajpbalancer's own AJP codec, as Tomcat's AJP connector would.
"""

from __future__ import annotations

import html
import secrets

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IAddress, IReactorTCP
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

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


class DemoPage(Resource):
    """Every path of one HTTP demo member."""

    isLeaf = True

    def __init__(self, backend: DemoBackend) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated
        self.backend = backend
        self.hits = 0

    def render(self, request: Request) -> bytes:
        self.hits += 1
        route = self.backend.route
        path = request.uri.split(b"?", 1)[0]
        if path == b"/redirect":
            request.redirect(str(self.backend.url).encode("ascii") + b"/")
            return b""
        session = request.getCookie(b"JSESSIONID")
        if session is None:
            session = new_session(route)
            request.addCookie(b"JSESSIONID", session, path=b"/", httpOnly=True)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"x-demo-member", route.encode("ascii"))
        headers = [
            (name, value)
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
        return render_page(
            route,
            method=request.method,
            uri=request.uri,
            headers=headers,
            session=session,
            hits=self.hits,
            protocol="HTTP/1.1",
        )


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
    factory: Factory | Site
    if backend.url.scheme is Scheme.AJP:
        factory = AJPDemoMember(backend)
    else:
        site = Site(DemoPage(backend))
        site.noisy = False
        site.log = lambda request: None  # type: ignore[method-assign]  # the proxy logs access
        factory = site
    service = StreamServerEndpointService(endpoint, factory)
    service._raiseSynchronously = True
    return service
