"""The admin listener's resources: ``/balancer-manager``, ``/status.json``, ``/metrics``.

``/balancer-manager`` answers GET with the page (``?b=NAME`` selects a balancer's form,
``&w=URL`` a member's; nothing else in the query counts, as in httpd) and applies changes
POSTed by its forms. A change is refused with 403, and nothing changes, unless its
``Referer`` (and ``Origin``, when sent) is this page's own origin, scheme, host and port
(httpd's ``safe_referer`` checks the host only) and it carries the balancer's ``nonce``;
an invalid value is refused with 400, and nothing changes (see :mod:`._edits`). The body
of a POST is bounded (:data:`MAX_FORM_BODY`): the rest is read, dropped and answered 413.

Every answer forbids caching and framing; the page may load nothing from elsewhere.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl, urlsplit

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from ajpbalancer.admin._edits import (
    EditError,
    balancer_values,
    check_fields,
    describe_member_change,
    member_values,
    parse_balancer_edit,
    parse_member_edit,
)
from ajpbalancer.admin._metrics import ProxyMetrics
from ajpbalancer.admin._page import PAGE, PAGE_PATH, render_page
from ajpbalancer.admin._running import RunningBalancer, RunningMember, RuntimeSource, RuntimeValues
from ajpbalancer.admin._snapshot import as_json, snapshot
from ajpbalancer.balancer import Value, apply_member_values, set_balancer_values

log = Logger()

MAX_FORM_BODY = 64 * 1024
"""Bytes of a POST body kept; a balancer-manager form is a few hundred."""

MAX_FORM_FIELDS = 100

SECURITY_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
)


class AdminRequest(Request):
    """A request whose body is kept up to :data:`MAX_FORM_BODY` bytes, the rest dropped."""

    too_large = False

    def handleContentChunk(self, data: bytes) -> None:
        content = self.content
        if self.too_large or content is None:
            return
        if content.tell() + len(data) > MAX_FORM_BODY:
            self.too_large = True
            return
        content.write(data)


def answer(request: Request, status: int, content_type: bytes, body: bytes) -> bytes:
    """Set the status and headers of an admin answer; its body."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type)
    for name, value in SECURITY_HEADERS:
        request.setHeader(name, value)
    return body


def plain(request: Request, status: int, message: str) -> bytes:
    return answer(request, status, b"text/plain; charset=utf-8", message.encode("utf-8") + b"\n")


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def own_origin(request: Request) -> tuple[str, str, int] | None:
    """This page's origin as the client addressed it (``Host``), or the listening address."""
    scheme = "https" if request.isSecure() else "http"
    host = request.getHeader(b"host")
    if host:
        return _origin(f"{scheme}://{host.decode('latin-1')}")
    address = request.getHost()
    if isinstance(address, (IPv4Address, IPv6Address)):
        return scheme, address.host.lower(), address.port
    return None


def cross_site(request: Request) -> str | None:
    """Why a change cannot be trusted to come from this page, or None (``safe_referer``)."""
    own = own_origin(request)
    referer = request.getHeader(b"referer")
    if not referer:
        return "a change needs the Referer of this page; none was sent"
    if own is None or _origin(referer.decode("latin-1")) != own:
        return "a change must come from this page; the Referer is another origin"
    origin = request.getHeader(b"origin")
    if origin is not None and _origin(origin.decode("latin-1")) != own:
        return "a change must come from this page; the Origin is another origin"
    return None


def query_fields(request: Request) -> dict[str, str]:
    """The query string's fields (the last of a repeated one wins, as in httpd)."""
    uri = request.uri.decode("latin-1")
    _, _, query = uri.partition("?")
    try:
        return dict(parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError:
        return {}


def form_fields(request: Request) -> dict[str, str]:
    """The fields of a urlencoded POST body (:class:`EditError` if it is not one)."""
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/x-www-form-urlencoded":
        raise EditError("a change must be posted as application/x-www-form-urlencoded")
    content = request.content
    body = b""
    if content is not None:
        content.seek(0)
        body = content.read()
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise EditError("the form is not valid UTF-8 urlencoded fields") from None
    return dict(pairs)


class BalancerManager(Resource):
    """``/balancer-manager`` (see the module docstring)."""

    isLeaf = True

    def __init__(
        self,
        runtime: RuntimeSource,
        clock: IReactorTime,
        user: str | None,
        values: RuntimeValues | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated
        self._runtime = runtime
        self._clock = clock
        self._user = user
        self._values = values

    def _page(
        self,
        request: Request,
        status: int,
        balancer: str | None,
        member: str | None,
        message: str | None = None,
    ) -> bytes:
        snap = snapshot(self._runtime(), self._clock.seconds(), self._values)
        host = (request.getHeader(b"host") or b"").decode("latin-1") or "ajpbalancer"
        # Links on the path the page was asked on, as httpd writes them (r->uri).
        asked = request.path.split(b"?")[0]
        path = PAGE_PATH + "/" if asked == PAGE_PATH.encode() + b"/" else PAGE_PATH
        page = render_page(
            snap, host=host, balancer=balancer, member=member, message=message, path=path
        )
        return answer(request, status, b"text/html; charset=utf-8", page)

    def render_GET(self, request: Request) -> bytes:
        fields = query_fields(request)
        return self._page(request, 200, fields.get("b"), fields.get("w"))

    def render_POST(self, request: Request) -> bytes:
        if getattr(request, "too_large", False):
            return plain(request, 413, f"a form is at most {MAX_FORM_BODY} bytes")
        refused = cross_site(request)
        if refused is not None:
            log.warn("balancer-manager: change refused: {why}", why=refused)
            return plain(request, 403, refused)
        runtime = self._runtime()
        if runtime is None:
            return plain(request, 503, "the proxy is not running")
        try:
            fields = form_fields(request)
        except EditError as e:
            return plain(request, 400, str(e))
        name = fields.get("b")
        balancer = None if name is None else runtime.balancers.get(name)
        if name is None or balancer is None:
            return plain(request, 400, f"b: no balancer named {name!r}")
        nonce = fields.get("nonce")
        if nonce is None or not hmac.compare_digest(nonce.encode(), balancer.nonce.encode()):
            log.warn("balancer-manager: change to {balancer} refused: wrong nonce", balancer=name)
            return plain(request, 403, "a change needs this page's nonce for the balancer")
        member_url = fields.get("w")
        member = None
        if member_url is not None:
            member = find_member(balancer, member_url)
            if member is None:
                return plain(request, 400, f"w: balancer {name!r} has no member {member_url!r}")
            member_url = member.name
        try:
            check_fields(fields, member=member is not None)
            member_edit = None if member is None else parse_member_edit(fields)
            balancer_edit = parse_balancer_edit(fields)
        except EditError as e:
            return plain(request, 400, str(e))
        member_changes: list[tuple[str, Value]] = []
        balancer_changes: list[tuple[str, Value]] = []
        with balancer.lock:  # with workers = N, the processes' shared state: one change
            if member is not None and member_edit is not None:
                refused = route_taken(balancer, member, member_edit.route)
                if refused is not None:
                    return plain(request, 400, refused)
                member_changes = apply_member_values(
                    balancer.states, member.lb, member_values(member_edit)
                )
                member.route = member.lb.route
            old = balancer.params
            balancer_changes = set_balancer_values(balancer, balancer_values(balancer_edit))
        changes = [describe_member_change(key, value) for key, value in member_changes]
        changes += [f"{k} {getattr(old, k)!r} -> {v!r}" for k, v in balancer_changes]
        target = f"balancer://{name}" + ("" if member is None else f" member {member.name}")
        if changes and self._values is not None:
            by = f"{self._user or '-'} from {_client(request)}"
            if member is not None and member_changes:
                self._values.record(name, member.name, dict(member_changes), by)
            if balancer_changes:
                self._values.record(name, None, dict(balancer_changes), by)
        if changes:
            log.info(
                "balancer-manager: {user} from {client} changed {target}: {changes}",
                user=self._user or "-",
                client=_client(request),
                target=target,
                changes=", ".join(changes),
            )
        message = f"{target}: " + (", ".join(changes) if changes else "nothing changed")
        return self._page(request, 200, name, member_url, message)


def _canonical(url: str) -> str:
    """A member URL as httpd names its worker: lower-case scheme and host, no default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443, "ajp": 8009}.get(scheme)
    shown = "" if port is None or port == default else f":{port}"
    path = "" if parts.path == "/" else parts.path
    return f"{scheme}://{host}{shown}{path}"


def find_member(balancer: RunningBalancer, url: str) -> RunningMember | None:
    """The member ``w`` names: by its URL as configured, else as httpd would write it
    (``ajp://host`` for ``ajp://host:8009``)."""
    exact = next((m for m in balancer.members if m.name == url), None)
    if exact is not None:
        return exact
    wanted = _canonical(url)
    return next((m for m in balancer.members if _canonical(m.name) == wanted), None)


def route_taken(balancer: RunningBalancer, member: RunningMember, route: str | None) -> str | None:
    """Why ``member`` may not take ``route`` (another member of the balancer has it), or None:
    a route may appear once per balancer, as the configuration requires."""
    if not route:
        return None
    other = next((m for m in balancer.members if m is not member and m.lb.route == route), None)
    if other is None:
        return None
    return f"w_wr: route {route!r} is member {other.name}'s; a route may appear once per balancer"


def _client(request: Request) -> str:
    address = request.getClientAddress()
    if isinstance(address, (IPv4Address, IPv6Address)):
        return address.host
    return str(address)


class StatusJSON(Resource):
    """``/status.json``: the page's data as JSON (schema in the README)."""

    isLeaf = True

    def __init__(
        self,
        runtime: RuntimeSource,
        clock: IReactorTime,
        values: RuntimeValues | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._runtime = runtime
        self._clock = clock
        self._values = values
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        tunnels = None if self._metrics is None else self._metrics.tunnels()
        doc = as_json(snapshot(self._runtime(), self._clock.seconds(), self._values, tunnels))
        body = json.dumps(doc, indent=2).encode("utf-8") + b"\n"
        return answer(request, 200, b"application/json", body)


class Metrics(Resource):
    """``/metrics``: Prometheus' text format (OpenMetrics when the scraper asks for it)."""

    isLeaf = True

    def __init__(self, metrics: ProxyMetrics) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        accept = request.getHeader(b"accept")
        body, content_type = self._metrics.expose(
            None if accept is None else accept.decode("latin-1")
        )
        return answer(request, 200, content_type.encode("ascii"), body)


class Index(Resource):
    """``/``: links to the three pages."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def render_GET(self, request: Request) -> bytes:
        body = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>ajpbalancer admin</title></head><body><ul>"
            f'<li><a href="{PAGE}">{PAGE}</a></li>'
            '<li><a href="status.json">status.json</a></li>'
            '<li><a href="metrics">metrics</a></li>'
            "</ul></body></html>\n"
        )
        return answer(request, 200, b"text/html; charset=utf-8", body.encode("utf-8"))


class _Root(Resource):
    """The admin's root: its children, else 404."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def getChild(self, path: bytes, request: object) -> IResource:
        return notFound()


def admin_root(
    runtime: RuntimeSource,
    clock: IReactorTime,
    metrics: ProxyMetrics,
    user: str | None,
    values: RuntimeValues | None = None,
) -> Resource:
    """The admin's resource tree, for ``user`` (None without ``admin_users``)."""
    root = _Root()
    root.putChild(b"", Index())
    root.putChild(PAGE.encode("ascii"), BalancerManager(runtime, clock, user, values))
    root.putChild(b"status.json", StatusJSON(runtime, clock, values, metrics))
    root.putChild(b"metrics", Metrics(metrics))
    return root
