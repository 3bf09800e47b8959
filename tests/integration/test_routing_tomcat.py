r"""Routing through the real ``twistd`` process to real Tomcat nodes, over HTTP and AJP.

With ``ProxyPass /app/echo/secret !`` before ``/app balancer://…``,
spellings of the excluded path that Tomcat maps to ``/app/echo/secret/…`` (doubled
slashes, escaped letters, ``;parameters`` in any segment) reached Tomcat and got 200.
Each now gets 404 from the proxy and never appears in Tomcat's access log, while a
``;jsessionid=`` path parameter still reaches Tomcat through the forwarding rule.

Item 2: ``ProxyPassMatch ^/api/(\w+)*/x$`` with ``/api/aaa…!`` backtracked for seconds
in Python's ``re`` while every other request waited. It is answered at once now (RE2),
and a pattern only a backtracking engine can run (a look-ahead) gets 500 past its time
limit, logged, while requests on other connections keep being answered.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from .ajphelpers import Reply, build_request, exchange
from .balancerhelpers import member_url
from .proxy import ProxyProcess
from .tomcat import Tomcat

ProxyFactory = Callable[..., ProxyProcess]

CLIENT_TIMEOUT = 20.0
"""A proxy stuck in a regular expression fails the test instead of hanging it."""

BYPASS_SPELLINGS = (
    "/app/echo//secret/{m}",
    "/app//echo/secret/{m}",
    "/app/echo/%73ecret/{m}",
    "/app/ech%6f/secret/{m}",
    "/app/echo/secret;x/{m}",
    "/app/echo;a=b/secret/{m}",
)
"""Six spellings that once bypassed the exclusion (``{m}`` is a marker unique to the test run)."""

MORE_SPELLINGS = (
    "/app/echo/secret%3Bx/{m}",
    "/app/echo/;x/secret/{m}",
    "/app/echo/%2e/secret/{m}",
    "/app/echo/x/..;y/secret/{m}",
    "/%61pp/echo/secret/{m}",
)


def config(nodes: tuple[Tomcat, Tomcat], protocol: str, rules: str) -> str:
    members = "\n                 ".join(
        f"{member_url(node, protocol)} route={node.name}" for node in nodes
    )
    return f"""
[ajpbalancer]
access_log = access.log

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
{rules}

[balancer://cluster]
BalancerMember = {members}
ProxySet = stickysession=JSESSIONID|jsessionid
"""


EXCLUSION = """ProxyPass = /app/echo/secret !
            /app balancer://cluster/app"""


def get(proxy: ProxyProcess, target: str) -> Reply:
    request = build_request("GET", target, [("Host", f"127.0.0.1:{proxy.port}")])
    return exchange("127.0.0.1", proxy.port, request, timeout=CLIENT_TIMEOUT)


def seen_by_tomcat(nodes: tuple[Tomcat, Tomcat], marker: str, min_count: int = 0) -> list[str]:
    """Paths with ``marker`` in both nodes' access logs (waiting for ``min_count``)."""
    paths = []
    for node in nodes:
        lines = node.access_log_lines(
            min_count=min_count, timeout=2.0 if min_count else 0.5, path_contains=marker
        )
        paths += [line.path for line in lines]
    return paths


@pytest.mark.parametrize("protocol", ["http", "ajp"])
def test_excluded_path_is_refused_whatever_its_spelling(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, protocol: str
) -> None:
    """Each spelling gets 404 and Tomcat never sees it; the plain path too (control)."""
    proxy = proxy_factory(config(tomcats, protocol, EXCLUSION))
    marker = uuid.uuid4().hex
    statuses = {
        spelling: get(proxy, spelling.format(m=marker)).status
        for spelling in ("/app/echo/secret/{m}", *BYPASS_SPELLINGS, *MORE_SPELLINGS)
    }
    assert statuses == dict.fromkeys(statuses, 404)
    # A request that does go through, after all of them: once Tomcat logged it, it has
    # logged everything it got before.
    control = f"/app/echo/public/{marker}"
    assert get(proxy, control).status == 200
    seen = seen_by_tomcat(tomcats, marker, min_count=1)
    assert seen == [control]


@pytest.mark.parametrize("protocol", ["http", "ajp"])
def test_path_parameters_reach_tomcat_through_a_forwarding_rule(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, protocol: str
) -> None:
    """``;jsessionid=…node2`` still reaches Tomcat, and routes the request to node2."""
    proxy = proxy_factory(config(tomcats, protocol, EXCLUSION))
    for _ in range(2):  # byrequests would alternate: the route must win both times
        reply = get(proxy, "/app/echo/x;jsessionid=ABC.node2")
        seen = reply.json()
        assert (seen["node"], seen["uri"]) == ("node2", "/app/echo/x;jsessionid=ABC.node2")


@pytest.mark.parametrize("protocol", ["http", "ajp"])
def test_tomcat_gets_the_path_as_apache_forwards_it(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, protocol: str
) -> None:
    """Merged slashes, unreserved escapes decoded, other escapes in upper case."""
    proxy = proxy_factory(config(tomcats, protocol, EXCLUSION))
    for target, uri in (
        ("/app//echo/a", "/app/echo/a"),
        ("/%61pp/%65cho/%7e/b", "/app/echo/~/b"),
        ("/app/echo/caf%c3%a9", "/app/echo/caf%C3%A9"),
        ("/app/echo/a[b]", "/app/echo/a%5Bb%5D"),
    ):
        assert get(proxy, target).json()["uri"] == uri, target


@pytest.mark.parametrize(
    ("target", "status"),
    [("/app/echo/a%2Fb", 404), ("/app/echo/a%00b", 404), ("/app/echo/%zz", 400), ("/../app", 400)],
)
def test_paths_apache_refuses_never_reach_tomcat(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory, target: str, status: int
) -> None:
    proxy = proxy_factory(config(tomcats, "ajp", EXCLUSION))
    assert get(proxy, target).status == status


# -- one regular expression must not stop the proxy -------------------------------------------


def test_nested_quantifier_pattern_answers_a_pathological_path(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``/api/`` + 40 letters + ``!`` would backtrack for days in Python's ``re``."""
    rules = r"ProxyPassMatch = ^/api/(\w+)*/x$ balancer://cluster/app/echo/$1"
    proxy = proxy_factory(config(tomcats, "http", rules))
    for letters in (24, 40, 4000):
        assert get(proxy, "/api/" + "a" * letters + "!").status == 404
    assert get(proxy, "/api/abc/x").json()["uri"] == "/app/echo/abc"


def test_backtracking_pattern_over_its_limit_gets_500_and_others_are_answered(
    tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """A look-ahead runs on the backtracking engine: past its limit, 500 and a log line.

    Pathological requests go one after another on their own connections while ordinary
    ones are sent on others: every ordinary one is answered 200 meanwhile.
    """
    rules = (
        r"ProxyPassMatch = ^/api/(?!z)(a|aa)+$ balancer://cluster/app/echo/$1"
        "\nProxyPass = /app balancer://cluster/app"
    )
    proxy = proxy_factory(config(tomcats, "http", rules))
    bad = "/api/" + "a" * 60 + "!"
    slow: list[int] = []
    done = threading.Event()

    def pathological() -> None:
        try:
            for _ in range(20):
                slow.append(get(proxy, bad).status)
        finally:
            done.set()

    thread = threading.Thread(target=pathological)
    thread.start()
    ordinary: list[int] = []
    while not done.is_set():
        ordinary.append(get(proxy, "/app/echo").status)
    thread.join()
    assert slow == [500] * 20
    assert ordinary and set(ordinary) == {200}
    assert get(proxy, "/api/aaa").json()["uri"] == "/app/echo/a"
    assert "ProxyPassMatch '^/api/(?!z)(a|aa)+$'" in proxy.log()
    assert "answered 500" in proxy.log()
