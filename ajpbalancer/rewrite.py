"""Reverse rewriting of response headers from members: ``ProxyPassReverse`` and its cookie kin.

Ported from httpd's ``ap_proxy_location_reverse_map`` and ``ap_proxy_cookie_reverse_map``
(proxy_util.c), on bytes, so that nothing outside the rewritten part changes.

Locations (``Location``, ``Content-Location``, ``URI`` and, as httpd also maps it,
``Destination``): the rules are tried in order and the first match wins. A rule's URL is
matched as a case-insensitive prefix of the value and replaced by the rule's public path;
for ``balancer://NAME[/part]`` each member's URL (then ``/part``, case-sensitively) is tried
instead, in configuration order, and with a public path of ``/`` a value continuing with
``/`` is not given a second slash. A result that is not an absolute URL is prefixed with
the frontend's ``scheme://host[:port]`` (``ap_construct_url``).

Cookies (``Set-Cookie``, each field on its own): the value is split on ``;``; an attribute
whose name, after leading white space, is ``path=`` or ``domain=`` in any case has its
whole value replaced by the public value of the first rule whose internal value is a
prefix of it (case-sensitive for paths, case-insensitive for domains). Only attributes
count: ``fakedomain=local`` is a cookie, not a domain. As in httpd, a token is an
attribute by its spelling alone, the first (name=value) token included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ajpbalancer.config import Balancer, CookieRule, Frontend, ReverseRule, Scheme

_C_SPACE = frozenset(b" \t\n\v\f\r")
_SCHEME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")

LOCATION_HEADERS = frozenset({b"location", b"content-location", b"uri", b"destination"})
"""Response headers (lower case) that :func:`reverse_location` applies to, as in httpd."""
COOKIE_HEADERS = frozenset({b"set-cookie"})
"""Response headers (lower case) that :func:`reverse_cookie` applies to."""


def is_url(value: bytes) -> bool:
    """``ap_is_url``: a non-empty scheme of letters, digits, ``+ - .`` before a ``:``."""
    colon = value.find(b":")
    return colon > 0 and all(c in _SCHEME_CHARS for c in value[:colon])


def frontend_base(scheme: str, host: str, port: int) -> bytes:
    """``scheme://host[:port]`` of the frontend, the port left out when it is the default.

    ``host`` is the name the client used (an IPv6 literal is bracketed here).
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    suffix = "" if port == default else f":{port}"
    name = host.encode("ascii") if host.isascii() else host.encode("idna")
    return scheme.encode("ascii") + b"://" + name + suffix.encode("ascii")


def request_base(scheme: str, host_field: bytes | None, local_ip: str, local_port: int) -> bytes:
    """``scheme://host[:port]`` of a request as httpd's ``ap_construct_url`` makes it.

    With UseCanonicalName Off: the Host field's name as ``fix_hostname`` leaves it (lower
    case, one trailing dot dropped) and its port as a number, left out when it is the
    scheme's default (``Host: WWW.Example.:080`` gives ``http://www.example``); without a
    Host field, the address and port the client connected to. A field that does not
    parse (a port that is not digits, a name that is not ASCII) is used as it came.
    """
    if not host_field:
        return frontend_base(scheme, local_ip, local_port)
    raw = scheme.encode("ascii") + b"://" + host_field
    if not host_field.isascii():
        return raw
    text = host_field.decode("ascii")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return raw
        name, rest = text[1:end], text[end + 1 :]
    else:
        name, colon, port_text = text.partition(":")
        rest = colon + port_text
    if rest and (not rest.startswith(":") or not rest[1:].isdigit()):
        return raw
    port = int(rest[1:]) if rest else {"http": 80, "https": 443}.get(scheme, 0)
    name = name.lower()
    if name.endswith(".") and len(name) > 1:
        name = name[:-1]
    return frontend_base(scheme, name, port)


def _absolute(value: bytes, base: bytes) -> bytes:
    return value if is_url(value) else base + value


def _reverse_via_balancer(
    value: bytes, fake: bytes, urlpart: bytes, members: Sequence[str], base: bytes
) -> bytes | None:
    size = len(value)
    lowered = value.lower()
    for name in members:
        member = name.encode("utf-8")
        l2 = len(member)
        if urlpart:
            if member.endswith(b"/"):
                l2 -= 1
            l3 = len(urlpart)
            if (
                size >= l2 + l3
                and lowered[:l2] == member[:l2].lower()
                and value[l2 : l2 + l3] == urlpart
            ):
                return _absolute(fake + value[l2 + l3 :], base)
        elif size >= l2 and lowered[:l2] == member.lower():
            if fake == b"/" and value[l2 : l2 + 1] == b"/":
                return _absolute(value[l2:], base)
            return _absolute(fake + value[l2:], base)
    return None


def reverse_location(
    value: bytes,
    rules: Sequence[ReverseRule],
    members_by_balancer: Mapping[str, Sequence[str]],
    public_base: bytes,
) -> bytes:
    """``value`` of a ``Location``-like header as the client must see it.

    ``members_by_balancer`` maps a balancer name to its members' URLs (``Member.name``) in
    configuration order; ``public_base`` is the frontend's ``scheme://host[:port]`` (see
    :func:`frontend_base`). A ``balancer://`` rule naming no known balancer is compared as
    written, so it never matches a member's URL. Unmatched values come back unchanged.
    """
    balancers = {name.lower(): members for name, members in members_by_balancer.items()}
    for rule in rules:
        fake = rule.path.encode("utf-8")
        if rule.url is None:
            mapped = _reverse_path(value, fake, (rule.internal_path or "/").encode("utf-8"))
            if mapped is not None:
                return _absolute(mapped, public_base)
            continue
        members = balancers.get(rule.url.host.lower())
        if rule.url.scheme is Scheme.BALANCER and members is not None:
            urlpart = rule.url.path.encode("utf-8")
            if urlpart == b"/":
                urlpart = b""
            mapped = _reverse_via_balancer(value, fake, urlpart, members, public_base)
            if mapped is not None:
                return mapped
            continue
        real = str(rule.url).encode("utf-8")
        if len(value) >= len(real) and value[: len(real)].lower() == real.lower():
            return _absolute(fake + value[len(real) :], public_base)
    return value


def _reverse_path(value: bytes, fake: bytes, real: bytes) -> bytes | None:
    """A path-only internal value: compared with the path part of ``value`` (httpd's
    ``real[0] == '/'`` branch), the scheme and host of an absolute ``value`` dropped."""
    part = value
    scheme_end = value.find(b"://")
    if scheme_end >= 0:
        slash = value.find(b"/", scheme_end + 3)
        if slash >= 0:
            part = value[slash:]
    if len(part) >= len(real) and part[: len(real)].lower() == real.lower():
        return fake + part[len(real) :]
    return None


def _tokens(value: bytes) -> list[tuple[int, int]]:
    """(start, end) of each run of bytes between ``;`` (empty runs skipped, as apr_strtok)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in (*(i for i, c in enumerate(value) if c == 0x3B), len(value)):
        if end > start:
            spans.append((start, end))
        start = end + 1
    return spans


def reverse_cookie(
    set_cookie_value: bytes,
    domain_rules: Sequence[CookieRule],
    path_rules: Sequence[CookieRule],
) -> bytes:
    """One ``Set-Cookie`` value with its ``domain=`` and ``path=`` values reverse-mapped.

    The rules are ``ProxyPassReverseCookieDomain`` and ``…CookiePath`` lines, each
    ``internal public``. Everything but the replaced values is kept byte for byte
    (trailing white space inside a replaced value goes with it, as in httpd). With a
    repeated attribute, the last occurrence alone decides: it is rewritten if it matches a
    rule, and no occurrence is otherwise (httpd 2.4.71, observed; httpd before 2.4.68 wrote
    the public value of an earlier matching occurrence over the last one, the heap overflow
    CVE-2026-34356 fixed).
    """
    value = set_cookie_value
    path_span: tuple[int, int] | None = None
    domain_span: tuple[int, int] | None = None
    new_path: bytes | None = None
    new_domain: bytes | None = None
    for first, end in _tokens(value):
        start = first
        while start < end and value[start] in _C_SPACE:
            start += 1
        token = value[start:end]
        head = token[:7].lower()
        if head.startswith(b"path="):
            path_span = (start + 5, end)
            current = token[5:]
            new_path = None
            for rule in path_rules:
                internal = rule.internal.encode("utf-8")
                if current.startswith(internal):
                    new_path = rule.public.encode("utf-8")
                    break
        elif head == b"domain=":
            domain_span = (start + 7, end)
            current = token[7:].lower()
            new_domain = None
            for rule in domain_rules:
                if current.startswith(rule.internal.encode("utf-8").lower()):
                    new_domain = rule.public.encode("utf-8")
                    break
    edits: list[tuple[tuple[int, int], bytes]] = []
    if new_path is not None and path_span is not None:
        edits.append((path_span, new_path))
    if new_domain is not None and domain_span is not None:
        edits.append((domain_span, new_domain))
    for (start, end), replacement in sorted(edits, reverse=True):
        value = value[:start] + replacement + value[end:]
    return value


@dataclass(frozen=True, slots=True)
class ReverseMap:
    """A frontend's reverse-mapping rules, ready to apply to its members' responses.

    ``members_by_balancer`` maps each balancer name to its members' URLs in
    configuration order (what ``balancer://`` rules expand to).
    """

    rules: tuple[ReverseRule, ...] = ()
    members_by_balancer: Mapping[str, Sequence[str]] = field(default_factory=dict)
    cookie_domain: tuple[CookieRule, ...] = ()
    cookie_path: tuple[CookieRule, ...] = ()

    @classmethod
    def for_frontend(cls, frontend: Frontend, balancers: Sequence[Balancer]) -> ReverseMap:
        return cls(
            frontend.reverse,
            {b.name: tuple(m.name for m in b.members) for b in balancers},
            frontend.cookie_domain,
            frontend.cookie_path,
        )

    def headers(
        self, fields: list[tuple[bytes, bytes]], public_base: Callable[[], bytes]
    ) -> list[tuple[bytes, bytes]]:
        """``fields`` of a response with every mapping applied (:meth:`header` on each).

        ``public_base`` gives the frontend's ``scheme://host[:port]`` for this request; it
        is asked for only when a field needs it (most responses have none)."""
        out = fields
        for i, (name, value) in enumerate(fields):
            folded = name.lower()
            if folded in LOCATION_HEADERS:
                mapped = reverse_location(
                    value, self.rules, self.members_by_balancer, public_base()
                )
            elif folded in COOKIE_HEADERS:
                mapped = reverse_cookie(value, self.cookie_domain, self.cookie_path)
            else:
                continue
            if mapped is not value:
                if out is fields:
                    out = list(fields)
                out[i] = (name, mapped)
        return out

    def header(self, name: bytes, value: bytes, public_base: bytes) -> bytes:
        """``value`` of response header ``name`` after whichever mapping applies to it.

        ``public_base`` is the frontend's ``scheme://host[:port]`` for this request.
        """
        folded = name.lower()
        if folded in LOCATION_HEADERS:
            return reverse_location(value, self.rules, self.members_by_balancer, public_base)
        if folded in COOKIE_HEADERS:
            return reverse_cookie(value, self.cookie_domain, self.cookie_path)
        return value
