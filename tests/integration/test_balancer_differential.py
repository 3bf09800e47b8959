"""Differential tests: what a client sees through Apache httpd and through ajpbalancer.

Both proxies get the same balancer of the same Tomcat nodes (node1, node2; AJP members,
then HTTP members) and the same ``ProxyPass``, ``ProxyPassReverse``,
``ProxyPassReverseCookieDomain`` and ``ProxyPassReverseCookiePath`` (`Cluster` renders
both configs). The same requests, in the same order, go through each; the status, the
node that served, and the ``Location``, ``Content-Location``, ``URI``, ``Destination``
and ``Set-Cookie`` fields must be equal. Values that differ by nature are normalized
first: each proxy's own port becomes ``PORT``, Tomcat's session ids become ``<id>``.

The sticky tests replay one sequence of session, ``;jsessionid=``, query, unknown-route
and route-less requests and compare the node that served each; with loadfactors 1:3 and
with a member that refuses connections (failover, its route left to the lbmethod) too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .apache import Apache
from .balancerhelpers import (
    COOKIE_CASES,
    COOKIE_DOMAINS,
    COOKIE_PATHS,
    COOKIE_QUIRKS,
    PROTOCOLS,
    PUBLIC_HOST,
    REVERSE_FORMS,
    STICKY,
    Answer,
    Cluster,
    fetch,
    headers_path,
    member_url,
)
from .conftest import ProxyFactory
from .proxy import ProxyProcess, free_port
from .tomcat import Tomcat

ApacheFactory = Callable[..., Apache]

REWRITTEN = ("Location", "Content-Location", "URI", "Destination", "Set-Cookie")
"""The response fields reverse rewriting may touch: compared after normalization."""

HOSTS = (
    PUBLIC_HOST,
    "public.example",
    None,
    "PUBLIC.Example:8443",
    "public.example.",
    "public.example:80",
    "public.example:08443",
    "[::1]:8443",
)
"""Host of the requests; None: http.client's own (``127.0.0.1:PORT`` of each proxy). How
httpd writes the name and port of a Host it made a Location absolute with (lower case, no
trailing dot, no default port, the port as a number) is part of what is compared."""

_SESSION_ID = re.compile(r"(?<=JSESSIONID=)[0-9A-F]{32}")


@dataclass(frozen=True)
class Pair:
    """Apache and ajpbalancer, each with the same cluster."""

    apache: Apache
    proxy: ProxyProcess

    def both(self, path: str, headers: dict[str, str] | None = None) -> tuple[View, View]:
        """`path` through Apache, then through ajpbalancer: what each client saw."""
        return (
            view(fetch(self.apache.port, path, headers), self.apache.port),
            view(fetch(self.proxy.port, path, headers), self.proxy.port),
        )


View = tuple[int, str | None, tuple[tuple[str, tuple[str, ...]], ...]]
"""(status, node, ((field, values), ...) for each field of `REWRITTEN`)."""


def view(answer: Answer, port: int) -> View:
    """What the client saw of `answer`, with the proxy's `port` and session ids normalized."""
    own_port = re.compile(rf":{port}(?!\d)")

    def normal(value: str) -> str:
        return _SESSION_ID.sub("<id>", own_port.sub(":PORT", value))

    fields = tuple((name, tuple(normal(value) for value in answer.all(name))) for name in REWRITTEN)
    return answer.status, answer.node, fields


def start_pair(
    cluster: Cluster, apache_factory: ApacheFactory, proxy_factory: ProxyFactory
) -> Pair:
    apache = apache_factory(proxy_config=cluster.apache_config())
    proxy = proxy_factory(cluster.ajpbalancer_config())
    return Pair(apache, proxy)


def host_headers(host: str | None) -> dict[str, str]:
    return {} if host is None else {"Host": host}


# --- reverse rewriting ----------------------------------------------------------------------


def location_values(nodes: tuple[Tomcat, Tomcat], protocol: str) -> list[str]:
    """``Location``-like values a node may answer with: its members' URLs, others, relative."""
    one, two = (member_url(node, protocol) for node in nodes)
    elsewhere = "http" if protocol == "ajp" else "ajp"
    return [
        f"{one}/app/x?y=1",
        f"{two}/app",
        f"{one}/app/",
        one,
        f"{two}/",
        f"{one.upper()}/app/x",
        f"{one}/APP/x",
        f"{two}/application",
        f"{one}/other/x",
        f"{member_url(nodes[0], elsewhere)}/app/x",
        "http://elsewhere.example/app/x",
        "/app/echo",
        "/other",
        "echo?x=1",
    ]


@pytest.mark.parametrize("form", sorted(REVERSE_FORMS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_redirect_locations_equal_apaches(
    protocol: str,
    form: str,
    tomcats: tuple[Tomcat, Tomcat],
    apache_factory: ApacheFactory,
    proxy_factory: ProxyFactory,
) -> None:
    """Tomcat's own redirects, the webapp's, and every kind of Location-like value."""
    proxy_pass, reverse = REVERSE_FORMS[form]
    pair = start_pair(
        Cluster(tomcats, protocol, proxy_pass=proxy_pass, reverse=reverse),
        apache_factory,
        proxy_factory,
    )
    paths = [
        "/app",
        "/app/redirect",
        "/app/redirect?to=relative/x",
        "/app/redirect?to=http://elsewhere.example/y",
    ]
    for value in location_values(tomcats, protocol):
        fields = [f"{name}:{value}" for name in ("Location", "Content-Location", "URI")]
        paths.append(headers_path([*fields, f"Destination:{value}"]))
    differences = []
    for host in HOSTS:
        for path in paths:
            apache_view, proxy_view = pair.both(path, host_headers(host))
            if apache_view != proxy_view:
                differences.append((host, path, apache_view, proxy_view))
    assert not differences, format_differences(differences)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_set_cookie_values_equal_apaches(
    protocol: str,
    tomcats: tuple[Tomcat, Tomcat],
    apache_factory: ApacheFactory,
    proxy_factory: ProxyFactory,
) -> None:
    """Cookies set by the webapp and by Tomcat's session manager, domain and path rules."""
    pair = start_pair(
        Cluster(tomcats, protocol, cookie_domain=COOKIE_DOMAINS, cookie_path=COOKIE_PATHS),
        apache_factory,
        proxy_factory,
    )
    raw = [value for value, _ in COOKIE_CASES] + list(COOKIE_QUIRKS)
    paths = [headers_path([f"Set-Cookie:{value}" for value in raw]), "/app/session"]
    paths += [headers_path([f"Set-Cookie:{value}"]) for value in COOKIE_QUIRKS]
    differences = []
    for host in HOSTS:
        for path in paths:
            for _ in range(2):  # each node once
                apache_view, proxy_view = pair.both(path, host_headers(host))
                if apache_view != proxy_view:
                    differences.append((host, path, apache_view, proxy_view))
    assert not differences, format_differences(differences)


def format_differences(differences: list[tuple[str | None, str, View, View]]) -> str:
    lines = [f"{len(differences)} answer(s) differ from Apache's:"]
    for host, path, apache_view, proxy_view in differences[:8]:
        lines.append(f"Host {host or 'default'}, GET {path}")
        lines.append(f"  apache:      {apache_view}")
        lines.append(f"  ajpbalancer: {proxy_view}")
    return "\n".join(lines)


# --- sticky sessions ------------------------------------------------------------------------


def sticky_sequence(port: int) -> list[tuple[int, str | None, str]]:
    """The same requests for either proxy: (status, node that served, what was asked)."""
    served: list[tuple[int, str | None, str]] = []

    def ask(label: str, path: str, cookie: str | None = None) -> Answer:
        answer = fetch(port, path, {"Cookie": cookie} if cookie else {})
        served.append((answer.status, answer.node, label))
        return answer

    first = ask("new session", "/app/session").json()
    second = ask("new session", "/app/session").json()
    for _ in range(3):
        ask("first session, cookie", "/app/session", f"JSESSIONID={first['sessionId']}")
    ask("no route", "/app/echo")
    for _ in range(2):
        ask("second session, ;jsessionid=", second["encodedUrl"])
    ask("unknown route", "/app/echo", "JSESSIONID=ABC.nodeX")
    ask("empty route", "/app/echo", "JSESSIONID=ABC.")
    ask("no route", "/app/echo")
    ask("query beats cookie", "/app/echo?jsessionid=ABC.node2", "JSESSIONID=ABC.node1")
    ask("path beats cookie", "/app/echo;jsessionid=ABC.node1", "JSESSIONID=ABC.node2")
    for _ in range(2):
        ask("route of the refusing member", "/app/echo", "JSESSIONID=ABC.node9")
    for _ in range(3):
        ask("route node2", "/app/echo", "JSESSIONID=ABC.node2")
    for _ in range(5):
        ask("no route", "/app/echo")
    return served


STICKY_VARIANTS = {
    "equal": ((), False, False),
    "1:3": (("loadfactor=1", "loadfactor=3"), False, False),
    "refusing member": ((), True, False),
    "refusing member, nofailover": ((), True, True),
}
"""(per-member extras, whether a member that refuses connections, route node9, is second,
``nofailover=On``)."""


@pytest.mark.parametrize("variant", sorted(STICKY_VARIANTS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sticky_sequence_goes_to_the_same_nodes_as_through_apache(
    protocol: str,
    variant: str,
    tomcats: tuple[Tomcat, Tomcat],
    apache_factory: ApacheFactory,
    proxy_factory: ProxyFactory,
) -> None:
    """``stickysession=JSESSIONID|jsessionid``: the same sequence, the same nodes, in order.

    With ``nofailover=On`` the refusing member's route gets 503 through both.
    """
    extras, refusing, nofailover = STICKY_VARIANTS[variant]
    inserted: list[tuple[int, str]] = []
    if refusing:
        inserted.append((1, f"{protocol}://127.0.0.6:{free_port('127.0.0.6')} route=node9"))
    cluster = Cluster(
        tomcats,
        protocol,
        proxyset=f"{STICKY} nofailover=On" if nofailover else STICKY,
        member_extra=extras,
        extra_members=inserted,
    )
    pair = start_pair(cluster, apache_factory, proxy_factory)
    through_apache = sticky_sequence(pair.apache.port)
    through_proxy = sticky_sequence(pair.proxy.port)
    refused = {label for status, _, label in through_apache if status != 200}
    assert refused == ({"route of the refusing member"} if nofailover else set()), through_apache
    assert through_proxy == through_apache


def failonstatus_sequence(port: int) -> list[tuple[int, str | None, str]]:
    """A member answers 503, then requests with and without its route (well within retry)."""
    served: list[tuple[int, str | None, str]] = []

    def ask(label: str, path: str, cookie: str | None = None) -> None:
        answer = fetch(port, path, {"Cookie": cookie} if cookie else {})
        served.append((answer.status, answer.node, label))

    ask("no route", "/app/echo")
    ask("member answers 503", "/app/status?code=503")
    for _ in range(3):
        ask("no route", "/app/echo")
    for route in ("node1", "node2"):
        ask(f"route {route}", "/app/echo", f"JSESSIONID=ABC.{route}")
    ask("other member answers 503 too", "/app/status?code=503")
    for _ in range(3):  # both in error: forcerecovery
        ask("no route", "/app/echo")
    return served


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_failonstatus_sequence_goes_to_the_same_nodes_as_through_apache(
    protocol: str,
    tomcats: tuple[Tomcat, Tomcat],
    apache_factory: ApacheFactory,
    proxy_factory: ProxyFactory,
) -> None:
    """``failonstatus=503``: the 503s reach the client, and what follows is routed alike."""
    cluster = Cluster(
        tomcats, protocol, proxyset=f"{STICKY} failonstatus=503", member_params="retry=30"
    )
    pair = start_pair(cluster, apache_factory, proxy_factory)
    through_apache = failonstatus_sequence(pair.apache.port)
    through_proxy = failonstatus_sequence(pair.proxy.port)
    assert [status for status, _, _ in through_apache].count(503) == 2, through_apache
    assert through_proxy == through_apache
