"""Turn a client's request into what a member receives: an HTTP/1.1 head or an AJP13
FORWARD_REQUEST, as mod_proxy_http and mod_proxy_ajp build them.

Sans-I/O: everything the mapping needs about the client connection arrives in a
:class:`ClientInfo`. For AJP, nothing the client sends becomes an attribute: attributes
come only from the connection (addresses, TLS) and the configuration (secret, route).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ajpbalancer.ajp import ForwardRequest
from ajpbalancer.connection import ClientInfo
from ajpbalancer.h1 import Headers, RequestHead, serialize_request_head
from ajpbalancer.headers import request_headers


@dataclass(slots=True, init=False)
class OutgoingRequest:
    """A routed request: the client's head, the mapped path and query, the body framing.

    Read-only (``Final``), with a compiled constructor (see :mod:`ajpbalancer.ajp._events`).
    """

    head: Final[RequestHead]
    path: Final[bytes]
    query: Final[bytes | None]
    length: Final[int | None]
    chunked: Final[bool]
    client: Final[ClientInfo]
    route: Final[bytes | None]

    def __init__(
        self,
        *,
        head: RequestHead,
        path: bytes,
        query: bytes | None,
        length: int | None,
        chunked: bool,
        client: ClientInfo,
        route: bytes | None = None,
    ) -> None:
        self.head = head
        self.path = path
        self.query = query
        self.length = length
        self.chunked = chunked
        self.client = client
        self.route = route

    @property
    def target(self) -> bytes:
        return self.path if self.query is None else self.path + b"?" + self.query


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """An HTTP/1.1 request head that asks the member to switch to ``upgrade`` (the
    client's ``Upgrade`` field, forwarded as Apache forwards it)."""

    head: bytes
    upgrade: bytes


def http_head(
    req: OutgoingRequest,
    *,
    member_host: bytes,
    preserve_host: bool,
    add_forwarded: bool,
    server_name: bytes,
) -> bytes:
    """The HTTP/1.1 request head for an HTTP member (see :mod:`ajpbalancer.headers`)."""
    headers = request_headers(
        req.head.headers,
        member_host=member_host,
        preserve_host=preserve_host,
        add_forwarded=add_forwarded,
        client_ip=req.client.ip,
        server_name=server_name,
        body_length=None if req.chunked else req.length,
        chunked=req.chunked,
    )
    return serialize_request_head(req.head.method, req.target, headers)


def upgrade_head(head: bytes, upgrade: bytes) -> bytes:
    """``head`` (of :func:`http_head`) asking to switch to ``upgrade``: ``Connection:
    Upgrade`` and ``Upgrade`` end it, as mod_proxy_http ends such a request's head."""
    return head[:-2] + b"Connection: Upgrade\r\nUpgrade: " + upgrade + b"\r\n\r\n"


def merge_repeated(headers: Headers) -> tuple[tuple[bytes, bytes], ...]:
    """Repeated fields joined with ``, `` under the first one's name, as httpd's table does."""
    seen: dict[bytes, int] = {}
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        key = name.lower()
        at = seen.get(key)
        if at is None:
            seen[key] = len(out)
            out.append((name, value))
        else:
            first, joined = out[at]
            out[at] = (first, joined + b", " + value)
    return tuple(out)


def _server_name(req: OutgoingRequest) -> bytes:
    """The Host field's host part (UseCanonicalName Off), else the local address.

    As httpd's ``fix_hostname`` leaves ``r->hostname``: without the port, the brackets
    of an IPv6 literal or a trailing dot, in lower case (``WWW.Example.org.:80`` is
    ``www.example.org``).
    """
    host = req.head.get(b"host")
    if not host:
        return req.client.local_ip
    if host.startswith(b"["):
        end = host.find(b"]")
        name = host[1:end] if end > 0 else host
    else:
        colon = host.rfind(b":")
        name = host[:colon] if colon >= 0 else host
        if name.endswith(b".") and len(name) > 1:
            name = name[:-1]
    return name.lower()


def ajp_forward(req: OutgoingRequest, *, secret: bytes | None) -> ForwardRequest:
    """The FORWARD_REQUEST mod_proxy_ajp sends for ``req`` (``ajp_marshal_into_msgb``)."""
    client = req.client
    tls = client.tls
    attributes: list[tuple[bytes, bytes]] = []
    if tls is not None:
        attributes.append((b"AJP_SSL_PROTOCOL", tls.protocol))
    attributes.append((b"AJP_REMOTE_PORT", b"%d" % client.port))
    attributes.append((b"AJP_LOCAL_ADDR", client.local_ip))
    return ForwardRequest(
        method=req.head.method,
        protocol=req.head.version,
        uri=req.path,
        remote_addr=client.ip,
        remote_host=None,
        server_name=_server_name(req),
        server_port=client.local_port,
        is_ssl=tls is not None,
        headers=merge_repeated(req.head.headers),
        secret=secret,
        query_string=req.query,
        jvm_route=req.route,
        ssl_cert=tls.client_cert if tls is not None else None,
        ssl_cipher=tls.cipher if tls is not None else None,
        ssl_session=tls.session_id if tls is not None else None,
        ssl_key_size=tls.key_size if tls is not None else None,
        request_attributes=tuple(attributes),
    )
