"""Header hygiene between client and member, as mod_proxy_http does it (sans-I/O).

Requests: hop-by-hop fields and every field named in ``Connection`` are removed, framing
fields are recomputed from the body actually sent, ``Host`` is the member's unless
``ProxyPreserveHost``, and only then ``X-Forwarded-For/-Host/-Server`` are added (so a
client cannot strip them with ``Connection: X-Forwarded-For``). Responses: hop-by-hop
fields and framing fields are removed; the frontend frames the body itself.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from ajpbalancer.h1 import Headers, HTTPProtocolError

# RFC 9110 §7.6.1 plus the historical ones Apache also drops.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_REQUEST_DROP = HOP_BY_HOP | _FRAMING | {b"expect", b"host"}
_RESPONSE_DROP = HOP_BY_HOP | _FRAMING


def connection_tokens(headers: Headers) -> set[bytes]:
    """Lower-cased field names listed in ``Connection`` (400 on a malformed list)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            for raw in value.split(b","):
                token = raw.strip(b" \t").lower()
                if not token:
                    continue
                if any(c in b' \t"(),/:;<=>?@[\\]{}' for c in token):
                    raise HTTPProtocolError("invalid token in Connection", 400)
                tokens.add(token)
    return tokens


def request_headers(
    headers: Headers,
    *,
    member_host: bytes,
    preserve_host: bool,
    add_forwarded: bool,
    client_ip: bytes,
    server_name: bytes,
    body_length: int | None,
    chunked: bool,
) -> Headers:
    """The fields to send to an HTTP member for a request with ``headers``."""
    drop = _REQUEST_DROP | connection_tokens(headers)
    client_host: bytes | None = None
    out: Headers = []
    xff: bytes | None = None
    xfh: bytes | None = None
    xfs: bytes | None = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"host":
            client_host = value
            continue
        if lname in drop:
            continue
        if add_forwarded:
            # Merged like apr_table_mergen: the client's value, then ours.
            if lname == b"x-forwarded-for":
                xff = value if xff is None else xff + b", " + value
                continue
            if lname == b"x-forwarded-host":
                xfh = value if xfh is None else xfh + b", " + value
                continue
            if lname == b"x-forwarded-server":
                xfs = value if xfs is None else xfs + b", " + value
                continue
        out.append((name, value))
    host = client_host if preserve_host and client_host is not None else member_host
    out.insert(0, (b"Host", host))
    if chunked:
        out.append((b"Transfer-Encoding", b"chunked"))
    elif body_length is not None:
        out.append((b"Content-Length", b"%d" % body_length))
    if add_forwarded:
        out.append((b"X-Forwarded-For", client_ip if xff is None else xff + b", " + client_ip))
        if client_host is not None:
            out.append(
                (b"X-Forwarded-Host", client_host if xfh is None else xfh + b", " + client_host)
            )
        elif xfh is not None:  # no Host (HTTP/1.0): nothing to add, but keep the client's
            out.append((b"X-Forwarded-Host", xfh))
        out.append(
            (b"X-Forwarded-Server", server_name if xfs is None else xfs + b", " + server_name)
        )
    return out


def response_headers(headers: Headers) -> Headers:
    """The member's response fields a client may see (framing is the frontend's job)."""
    return response_fields(headers)[0]


def response_fields(headers: Headers) -> tuple[Headers, bool]:
    """:func:`response_headers`, and whether the member sent a ``Date``: one pass over
    the names (lowered once each), as this runs for every response."""
    lnames = [name.lower() for name, _ in headers]
    drop = _RESPONSE_DROP
    if b"connection" in lnames:
        drop = drop | connection_tokens_lenient(headers)
    out = [field for field, lname in zip(headers, lnames, strict=True) if lname not in drop]
    return out, b"date" in lnames and b"date" not in drop


def connection_tokens_lenient(headers: Headers) -> set[bytes]:
    """``Connection`` tokens of a member's response; malformed ones are simply dropped."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip(b" \t").lower() for t in value.split(b","))
    tokens.discard(b"")
    return tokens


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The current time as an HTTP ``Date`` value (RFC 9110 §5.6.7), computed once a second."""
    global _date_cache  # noqa: PLW0603 -- a one-entry cache of the formatted second
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]
