"""Shared pieces of the balancer integration tests (sticky sessions, failover, rewriting).

One description of a balancer (`Cluster`) renders both as an ajpbalancer config and as the
same Apache httpd directives, so the tests against Tomcat and the differential tests
against Apache use exactly the same setup. `fetch` makes one request on a new connection
and keeps every response header field, in order.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .tomcat import Tomcat

PROTOCOLS = ("ajp", "http")
"""Member protocols every balancer test runs with."""

STICKY = "stickysession=JSESSIONID|jsessionid"
"""Tomcat's session cookie and URL parameter, as Apache's documentation configures them."""

PUBLIC_HOST = "public.example:8443"
"""The Host a client uses in the rewriting tests: what redirects must come back with."""

CLIENT_TIMEOUT = 20.0
"""Seconds a test client waits for any answer (a hung proxy fails the test, never hangs it)."""


def member_url(node: Tomcat, protocol: str) -> str:
    """``ajp://ADDRESS:AJP_PORT`` or ``http://ADDRESS:HTTP_PORT`` of `node`."""
    if protocol == "ajp":
        return node.ajp_url
    if protocol == "http":
        return node.http_url
    raise ValueError(f"unknown member protocol {protocol!r}")


@dataclass(frozen=True)
class Cluster:
    """A balancer ``cluster`` of Tomcat nodes behind one frontend, for both proxies.

    `proxy_pass` and `reverse` are (public path, internal path after ``balancer://cluster``);
    `member_params` go on every member line, `member_extra` on the member of that index
    only; `proxyset` is the ``ProxySet`` line (empty: none). `cookie_domain` and
    `cookie_path` are (internal, public) pairs of ``ProxyPassReverseCookieDomain`` and
    ``ProxyPassReverseCookiePath``.
    """

    nodes: Sequence[Tomcat]
    protocol: str
    proxyset: str = ""
    member_params: str = ""
    member_extra: Sequence[str] = ()
    proxy_pass: tuple[str, str] = ("/app", "/app")
    reverse: tuple[str, str] | None = ("/app", "/app")
    cookie_domain: Sequence[tuple[str, str]] = ()
    cookie_path: Sequence[tuple[str, str]] = ()
    frontend_extra: str = ""
    access_log: bool = False
    extra_members: Sequence[tuple[int, str]] = field(default=())
    """(index, ``URL route=R ...``) members that are no Tomcat node, inserted at index."""

    def member_lines(self) -> list[str]:
        """``URL route=R params`` for each member, in configuration order."""
        lines = []
        for index, node in enumerate(self.nodes):
            parts = [member_url(node, self.protocol), f"route={node.jvm_route}"]
            if self.member_params:
                parts.append(self.member_params)
            if index < len(self.member_extra) and self.member_extra[index]:
                parts.append(self.member_extra[index])
            lines.append(" ".join(parts))
        for index, line in sorted(self.extra_members):
            lines.insert(index, line)
        return lines

    def ajpbalancer_config(self) -> str:
        """The ajpbalancer INI config (frontend port left as ``{port}``)."""
        settings = "[ajpbalancer]\naccess_log = access.log\n\n" if self.access_log else ""
        frontend = [
            "[frontend:www]",
            "listen = tcp:{port}:interface=127.0.0.1",
            f"ProxyPass = {self.proxy_pass[0]} balancer://cluster{self.proxy_pass[1]}",
        ]
        if self.reverse is not None:
            frontend.append(
                f"ProxyPassReverse = {self.reverse[0]} balancer://cluster{self.reverse[1]}"
            )
        frontend += _multi("ProxyPassReverseCookieDomain", self.cookie_domain)
        frontend += _multi("ProxyPassReverseCookiePath", self.cookie_path)
        if self.frontend_extra:
            frontend.append(self.frontend_extra)
        members = self.member_lines()
        balancer = [
            "[balancer://cluster]",
            "BalancerMember = " + ("\n" + " " * 17).join(members),
        ]
        if self.proxyset:
            balancer.append(f"ProxySet = {self.proxyset}")
        return settings + "\n".join(frontend) + "\n\n" + "\n".join(balancer) + "\n"

    def apache_config(self) -> str:
        """The same balancer and rules as Apache httpd directives (inside the VirtualHost)."""
        lines = ["<Proxy balancer://cluster>"]
        lines += [f"    BalancerMember {member}" for member in self.member_lines()]
        if self.proxyset:
            lines.append(f"    ProxySet {self.proxyset}")
        lines.append("</Proxy>")
        lines.append(f"ProxyPass {self.proxy_pass[0]} balancer://cluster{self.proxy_pass[1]}")
        if self.reverse is not None:
            lines.append(f"ProxyPassReverse {self.reverse[0]} balancer://cluster{self.reverse[1]}")
        lines += [f"ProxyPassReverseCookieDomain {a} {b}" for a, b in self.cookie_domain]
        lines += [f"ProxyPassReverseCookiePath {a} {b}" for a, b in self.cookie_path]
        return "\n".join(lines) + "\n"


def _multi(key: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
    if not pairs:
        return []
    values = [f"{a} {b}" for a, b in pairs]
    indent = "\n" + " " * (len(key) + 3)
    return [f"{key} = " + indent.join(values)]


@dataclass(frozen=True)
class Answer:
    """One response: status, every header field in order, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        """Values of every field named `name` (any case), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str | None:
        """The value of the one field `name`, None if absent (two is an error)."""
        values = self.all(name)
        assert len(values) <= 1, (name, values)
        return values[0] if values else None

    @property
    def node(self) -> str | None:
        """The node that served (the webapp's ``X-Node``), None if the webapp did not."""
        return self.one("X-Node")

    def json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


def fetch(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = CLIENT_TIMEOUT,
) -> Answer:
    """One request to ``127.0.0.1:port`` on a new connection; the whole answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Answer(resp.status, list(resp.getheaders()), data)
    finally:
        conn.close()


_COOKIE_VALUE = re.compile(r"^\s*([^=;\s]+)\s*=\s*([^;]*)")


def cookie_pair(set_cookie: str) -> tuple[str, str]:
    """(name, value) of a ``Set-Cookie`` field value."""
    match = _COOKIE_VALUE.match(set_cookie)
    assert match is not None, set_cookie
    return match.group(1), match.group(2).strip()


def session_cookie(answer: Answer, name: str = "JSESSIONID") -> str | None:
    """The value the answer sets for cookie `name`, None if it sets none."""
    for value in answer.all("Set-Cookie"):
        cookie, cookie_value = cookie_pair(value)
        if cookie == name:
            return cookie_value
    return None


REVERSE_FORMS = {
    "app": (("/app", "/app"), ("/app", "/app")),
    "root": (("/", "/"), ("/", "/")),
    "mixed": (("/app", "/app"), ("/", "/")),
}
"""(``ProxyPass``, ``ProxyPassReverse``) forms, each (public path, path after
``balancer://cluster``): the one matching ``ProxyPass``, the whole-server one, and
``ProxyPassReverse / balancer://cluster/`` under ``ProxyPass /app balancer://cluster/app``."""

COOKIE_DOMAINS = (
    ("127.0.0.2", "public.example"),
    ("127.0.0.3", "public.example"),
    ("internal.example", "www.public.example"),
)
COOKIE_PATHS = (("/app", "/"),)

COOKIE_CASES = (
    ("X=1; Domain=127.0.0.2; Path=/app", "X=1; Domain=public.example; Path=/"),
    ("Y=2;domain=127.0.0.3;path=/app/sub;HttpOnly", "Y=2;domain=public.example;path=/;HttpOnly"),
    ("Z=3; Path=/appendix; DOMAIN=Internal.Example", "Z=3; Path=/; DOMAIN=www.public.example"),
    (
        "fakedomain=127.0.0.2;  fakepath=/app;Domain=127.0.0.2",
        "fakedomain=127.0.0.2;  fakepath=/app;Domain=public.example",
    ),
    ("U=4; Path=/APP; Domain=.127.0.0.2; Secure", "U=4; Path=/APP; Domain=.127.0.0.2; Secure"),
    (
        "V=5; Max-Age=60; PATH=/app ; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
        "V=5; Max-Age=60; PATH=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    ),
    ('W="a;b"; Path=/other; SameSite=Lax', 'W="a;b"; Path=/other; SameSite=Lax'),
)
"""(``Set-Cookie`` as the node sends it, as the client must get it) with `COOKIE_DOMAINS`
and `COOKIE_PATHS`: whole values replaced on a prefix match (domains in any case, paths
case-sensitively), a cookie merely named ``…domain``/``…path`` untouched (PR 61560), and
everything else byte for byte."""


COOKIE_QUIRKS = (
    "T=6; path=/app; domain=127.0.0.2; path=/x",
    "S=7; Path=/x; Path=/app/longer/path; Domain=internal.example; domain=127.0.0.3",
    "P=1; path=/app; path=/x; domain=127.0.0.2; domain=other.example",
    "P=2; domain=other.example; domain=127.0.0.2; path=/app/zz; domain=y",
    "P=3; Path=/app;Path=",
    "R=8; domain=; path=",
    "Q=9;path=/app;;; domain=127.0.0.2 ;",
    "path=/app/x; domain=127.0.0.3",
)
"""``Set-Cookie`` values with repeated or empty attributes: compared with Apache only."""


def headers_path(fields: Sequence[str]) -> str:
    """``/app/headers?set=...``: the webapp answers with each ``Name:Value`` of `fields`."""
    return "/app/headers?" + "&".join("set=" + urllib.parse.quote(spec, safe="") for spec in fields)
