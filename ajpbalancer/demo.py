"""Built-in demo members, so that ``etc/demo.ini`` shows a working balancer at once.

Each demo member is a small HTTP/1.1 application server with a route, as a Tomcat node
with a ``jvmRoute`` is: it answers every path with a page naming itself and listing the
request headers it received (``X-Forwarded-*`` included), gives a new visitor a
``JSESSIONID=<id>.<route>`` cookie as Tomcat does, and redirects ``/redirect`` to its own
internal URL. It is not on any hot path, so ``twisted.web`` serves it.
"""

from __future__ import annotations

import html
import secrets

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IReactorTCP
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from ajpbalancer.config import DemoBackend


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
    site = Site(DemoPage(backend))
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]  # the proxy logs access
    service = StreamServerEndpointService(endpoint, site)
    service._raiseSynchronously = True
    return service
