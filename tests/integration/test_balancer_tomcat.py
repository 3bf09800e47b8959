"""Balancer semantics of the real ``twistd -n ajpbalancer`` in front of real Tomcat nodes.

Sticky sessions (``JSESSIONID`` cookie, ``;jsessionid=`` URLs, an application's
``BALANCEID``), failover (a node stopped during a run of requests, its sessions moving,
its return after ``retry``; a POST whose body reached a dying node never delivered twice;
``failonstatus``; ``nofailover``) and reverse rewriting (Tomcat's own redirects and the
cookies it sets), each with AJP members and with HTTP members.

The session-scoped ``tomcats`` (node1, node2) serve the tests that stop nothing. Tests
that stop or kill a node use this module's own pair, node3 on 127.0.0.4 and node4 on
127.0.0.5, started once and restarted before each test that finds one down.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .balancerhelpers import (
    COOKIE_CASES,
    COOKIE_DOMAINS,
    COOKIE_PATHS,
    PROTOCOLS,
    PUBLIC_HOST,
    REVERSE_FORMS,
    STICKY,
    Answer,
    Cluster,
    fetch,
    headers_path,
    session_cookie,
)
from .conftest import ProxyFactory, start_nodes
from .proxy import ProxyProcess
from .tomcat import Tomcat, start_all

RETRY = 2
"""``retry`` (seconds) of the members in the failover tests."""
RECOVERY_SLACK = 1.0
"""How late after ``retry`` a member back in service may get its first request."""
SHUTDOWN_SLACK = 0.1
"""How long before the SIGTERM a request answered by a Tomcat shutting down may have
begun (on its way to Tomcat when the signal came)."""

SPARE_ADDRESSES = {"node3": "127.0.0.4", "node4": "127.0.0.5"}


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def spare_pair() -> Iterator[tuple[Tomcat, Tomcat]]:
    """node3 and node4, owned by this module: tests may stop or kill them."""
    node3, node4 = start_nodes(SPARE_ADDRESSES)
    try:
        yield node3, node4
    finally:
        node3.close()
        node4.close()


@pytest.fixture
def spare_nodes(spare_pair: tuple[Tomcat, Tomcat]) -> tuple[Tomcat, Tomcat]:
    """node3 and node4, both running (the ones a previous test left down are restarted)."""
    down = [node for node in spare_pair if not node.running]
    if down:
        start_all(down)
    return spare_pair


@dataclass
class Session:
    """A client's Tomcat session as the proxy handed it out."""

    node: str
    id: str
    counter: int
    encoded_url: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"JSESSIONID={self.id}"}


def new_session(port: int, headers: dict[str, str] | None = None) -> Session:
    """``GET /app/session`` without a session: Tomcat makes one on the node chosen."""
    answer = fetch(port, "/app/session", headers)
    assert answer.status == 200, answer
    seen = answer.json()
    assert seen["counter"] == 1
    assert seen["sessionId"].endswith(f".{answer.node}")
    assert session_cookie(answer) == seen["sessionId"]
    return Session(answer.node or "", seen["sessionId"], 1, seen["encodedUrl"])


def sessions_on_each_node(
    port: int, routes: list[str], per_node: int = 1
) -> dict[str, list[Session]]:
    """`per_node` new sessions on each node of `routes`, made through the balancer."""
    sessions: dict[str, list[Session]] = {route: [] for route in routes}
    for _ in range(4 * per_node * len(routes)):
        if all(len(found) >= per_node for found in sessions.values()):
            return sessions
        session = new_session(port)
        if len(sessions[session.node]) < per_node:
            sessions[session.node].append(session)
    pytest.fail(f"balancing did not spread new sessions over {routes}: {sessions}")


def use_session(port: int, session: Session, *, url_form: bool = False) -> Answer:
    """One more request in `session` (cookie, or its ``;jsessionid=`` URL); checks it stuck."""
    if url_form:
        answer = fetch(port, session.encoded_url)
    else:
        answer = fetch(port, "/app/session", session.cookie)
    assert answer.status == 200, answer
    seen = answer.json()
    assert (answer.node, seen["sessionId"]) == (session.node, session.id)
    assert seen["counter"] == session.counter + 1
    assert session_cookie(answer) is None  # a session Tomcat knows: no new cookie
    session.counter += 1
    return answer


def other(routes: tuple[str, str], route: str | None) -> str:
    return routes[1] if route == routes[0] else routes[0]


# --- sticky sessions ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_session_cookie_keeps_the_session_on_its_node_for_100_requests(
    protocol: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``JSESSIONID=<id>.nodeN`` set by Tomcat: 100 requests per session, all on nodeN."""
    proxy = proxy_factory(Cluster(tomcats, protocol, proxyset=STICKY).ajpbalancer_config())
    sessions = sessions_on_each_node(proxy.port, ["node1", "node2"])
    for _ in range(100):
        for route in ("node1", "node2"):
            use_session(proxy.port, sessions[route][0])
    assert [sessions[r][0].counter for r in ("node1", "node2")] == [101, 101]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_jsessionid_url_keeps_the_session_on_its_node(
    protocol: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``/app/session;jsessionid=<id>.nodeN`` (Tomcat's encodeURL), no cookie: stays on nodeN."""
    proxy = proxy_factory(Cluster(tomcats, protocol, proxyset=STICKY).ajpbalancer_config())
    sessions = sessions_on_each_node(proxy.port, ["node1", "node2"])
    for route in ("node1", "node2"):
        session = sessions[route][0]
        assert session.encoded_url == f"/app/session;jsessionid={session.id}"
    for _ in range(30):
        for route in ("node1", "node2"):
            use_session(proxy.port, sessions[route][0], url_form=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_route_in_the_url_wins_over_the_cookie(
    protocol: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``;jsessionid=`` and ``?jsessionid=`` route the request, even against the cookie."""
    proxy = proxy_factory(Cluster(tomcats, protocol, proxyset=STICKY).ajpbalancer_config())
    for route, cookie_route in (("node1", "node2"), ("node2", "node1")):
        for path in (f"/app/echo;jsessionid=ABC.{route}", f"/app/echo?jsessionid=ABC.{route}"):
            for _ in range(3):
                answer = fetch(proxy.port, path, {"Cookie": f"JSESSIONID=ABC.{cookie_route}"})
                assert (answer.status, answer.node) == (200, route), path


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_balanceid_cookie_set_by_the_application_sticks(
    protocol: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``stickysession=BALANCEID``: the cookie ``balancer.nodeN`` the webapp sets routes to nodeN.

    The request also carries a ``JSESSIONID`` naming the other node, which must not count.
    """
    proxy = proxy_factory(
        Cluster(tomcats, protocol, proxyset="stickysession=BALANCEID").ajpbalancer_config()
    )
    values: dict[str, str] = {}
    for _ in range(4):
        answer = fetch(proxy.port, "/app/balanceid")
        assert answer.status == 200
        value = session_cookie(answer, "BALANCEID")
        assert value == f"balancer.{answer.node}"
        values[answer.node or ""] = value
    assert sorted(values) == ["node1", "node2"]
    for _ in range(25):
        for route, value in values.items():
            cookie = f"JSESSIONID=ABC.{other(('node1', 'node2'), route)}; BALANCEID={value}"
            answer = fetch(proxy.port, "/app/echo", {"Cookie": cookie})
            assert (answer.status, answer.node) == (200, route)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "cookie", ["JSESSIONID=ABC.nodeX", "JSESSIONID=ABC", "JSESSIONID=ABC.", "OTHER=ABC.node1"]
)
def test_unknown_route_is_balanced_normally(
    protocol: str, cookie: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """A route no member has, no route, an empty one: byrequests decides (even ``nofailover``)."""
    config = Cluster(tomcats, protocol, proxyset=f"{STICKY} nofailover=On").ajpbalancer_config()
    proxy = proxy_factory(config)
    served = []
    for _ in range(10):
        answer = fetch(proxy.port, "/app/echo", {"Cookie": cookie})
        assert answer.status == 200
        served.append(answer.node)
    assert served == ["node1", "node2"] * 5


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nofailover_answers_503_when_the_routes_node_is_down(
    protocol: str, spare_nodes: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``nofailover=On``: a session of a stopped node gets 503; everything else still works."""
    _, node4 = spare_nodes
    proxy = proxy_factory(
        Cluster(
            spare_nodes,
            protocol,
            proxyset=f"{STICKY} nofailover=On",
            member_params=f"retry={RETRY}",
        ).ajpbalancer_config()
    )
    sessions = sessions_on_each_node(proxy.port, ["node3", "node4"])
    alive, lost = sessions["node3"][0], sessions["node4"][0]
    node4.stop()
    for _ in range(3):  # first while node4 is not known to be down, then while in error
        assert fetch(proxy.port, "/app/session", lost.cookie).status == 503
        assert fetch(proxy.port, lost.encoded_url).status == 503
        assert fetch(proxy.port, "/app/echo?jsessionid=ABC.node4").status == 503
    for _ in range(5):
        use_session(proxy.port, alive)
        answer = fetch(proxy.port, "/app/echo")
        assert (answer.status, answer.node) == (200, "node3")
        answer = fetch(proxy.port, "/app/echo", {"Cookie": "JSESSIONID=ABC.nodeX"})
        assert (answer.status, answer.node) == (200, "node3")


# --- failover -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request of the failover run, as its client saw it."""

    client: int
    kind: str
    started: float
    answer: Answer | None = None
    error: str | None = None


class Progress:
    """A count shared by the client threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


class BrowserClient:
    """A client with a session on each of two nodes, keeping cookies as a browser does."""

    def __init__(self, index: int, port: int, sessions: dict[str, Session]) -> None:
        self.index = index
        self.port = port
        self.cookies = {route: session.id for route, session in sessions.items()}
        self.outcomes: list[Outcome] = []

    def run(self, rounds: int, done: Progress) -> None:
        for _ in range(rounds):
            for kind in ("plain", *self.cookies):
                outcome = Outcome(self.index, kind, time.monotonic())
                headers = {} if kind == "plain" else {"Cookie": f"JSESSIONID={self.cookies[kind]}"}
                path = "/app/echo" if kind == "plain" else "/app/session"
                try:
                    outcome.answer = fetch(self.port, path, headers)
                except OSError as exc:
                    outcome.error = repr(exc)
                self.outcomes.append(outcome)
                done.add()
                if outcome.answer is not None and kind != "plain":
                    new = session_cookie(outcome.answer)
                    if new is not None:
                        self.cookies[kind] = new


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stopping_a_node_during_a_run_is_invisible_and_it_returns_after_retry(
    protocol: str, spare_nodes: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """Three clients run 900 GETs; node4 is stopped after the first ~100.

    No client sees an error; node4's sessions continue on node3 (Tomcat lost them: a new
    session id, counter 1, a new cookie, then sticky to node3); node3's sessions are
    untouched. Restarted, node4 gets requests again within ``retry`` seconds of being ready.
    """
    _, node4 = spare_nodes
    proxy = proxy_factory(
        Cluster(
            spare_nodes, protocol, proxyset=STICKY, member_params=f"retry={RETRY}"
        ).ajpbalancer_config()
    )
    clients_count, rounds = 3, 100
    sessions = sessions_on_each_node(proxy.port, ["node3", "node4"], per_node=clients_count)
    clients = [
        BrowserClient(i, proxy.port, {r: sessions[r][i] for r in ("node3", "node4")})
        for i in range(clients_count)
    ]
    done = Progress()
    threads = [threading.Thread(target=c.run, args=(rounds, done), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while done.value < 100 and time.monotonic() < deadline:
        time.sleep(0.005)
    stopping = time.monotonic()
    node4.stop()
    stopped = time.monotonic()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a client did not finish within 60 s"

    def tomcats_own_404(o: Outcome) -> bool:
        """Tomcat stops its web applications before it closes its connectors: a request
        on a connection it still has open meanwhile gets Tomcat's own 404 page (nothing
        is mapped any more), a well-formed answer the proxy passes on as mod_proxy does.
        That is allowed for node4's requests begun while it shuts down, and nothing else
        (docs/operations.md: drain a node before stopping it)."""
        return (
            o.kind == "node4"
            and o.answer is not None
            and o.answer.status == 404
            and b"HTTP Status 404" in o.answer.body
            and stopping - SHUTDOWN_SLACK <= o.started <= stopped
        )

    outcomes = [o for c in clients for o in c.outcomes]
    assert len(outcomes) == clients_count * rounds * 3
    assert sum(map(tomcats_own_404, outcomes)) <= clients_count
    failures = [
        (o.kind, o.error or (o.answer.status, o.answer.body[:200]))
        for o in outcomes
        if (o.answer is None or o.answer.status != 200) and not tomcats_own_404(o)
    ]
    assert not failures, f"{len(failures)} client-visible failures: {failures[:5]}"
    after = [o for o in outcomes if o.started > stopped]
    assert len(after) > 300, "node4 was stopped too late in the run"
    assert {o.answer.node for o in after if o.answer} == {"node3"}

    for client in clients:
        mine = [o for o in client.outcomes if o.answer is not None and not tomcats_own_404(o)]
        kept = [o.answer.json() for o in mine if o.kind == "node3" and o.answer]
        assert {(s["node"], s["sessionId"]) for s in kept} == {
            ("node3", sessions["node3"][client.index].id)
        }
        assert [s["counter"] for s in kept] == list(range(2, 2 + rounds))
        moved = [o.answer for o in mine if o.kind == "node4" and o.answer]
        switch = next(i for i, a in enumerate(moved) if a.node == "node3")
        old_id = sessions["node4"][client.index].id
        assert all(a.node == "node4" and a.json()["sessionId"] == old_id for a in moved[:switch])
        first = moved[switch].json()
        assert first["sessionId"] != old_id and first["sessionId"].endswith(".node3")
        assert first["counter"] == 1
        assert session_cookie(moved[switch]) == first["sessionId"]
        rest = [a.json() for a in moved[switch:]]
        assert {(s["node"], s["sessionId"]) for s in rest} == {("node3", first["sessionId"])}
        assert [s["counter"] for s in rest] == list(range(1, 1 + len(rest)))

    # node4 comes back: it is retried once `retry` has passed since its last failure.
    starter = threading.Thread(target=node4.start, daemon=True)
    starter.start()
    ready: float | None = None
    served_by_node4: float | None = None
    deadline = time.monotonic() + 60
    while served_by_node4 is None and time.monotonic() < deadline:
        if ready is None and not starter.is_alive():
            ready = time.monotonic()
            assert node4.running, "node4 did not start again"
        answer = fetch(proxy.port, "/app/echo")
        assert answer.status == 200, answer
        if answer.node == "node4":
            served_by_node4 = time.monotonic()
        time.sleep(0.02)
    starter.join(timeout=30)
    if ready is None:
        ready = time.monotonic()
    assert served_by_node4 is not None, "node4 got no request within 60 s of its restart"
    assert served_by_node4 - ready <= RETRY + RECOVERY_SLACK, served_by_node4 - ready


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_post_whose_body_reached_a_dying_node_is_not_resent(
    protocol: str, spare_nodes: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """A POST routed to node3, which read all of its body, then node3 is killed.

    The client gets 502 (DESIGN: a member failing before its response began) at once,
    and node4 never receives that POST: not in its memory, not in its access log.
    The balancer goes on serving node3's sessions from node4, and a POST refused by
    node3 (nothing of it sent) does fail over, body and all.
    """
    node3, node4 = spare_nodes
    proxy = proxy_factory(
        Cluster(
            spare_nodes, protocol, proxyset=STICKY, member_params=f"retry={RETRY}"
        ).ajpbalancer_config()
    )
    tag = f"post-{protocol}-{time.monotonic_ns()}"
    body = bytes(range(256)) * 400  # 100 KiB: several AJP body packets
    result: list[Answer | BaseException] = []

    def post() -> None:
        try:
            result.append(
                fetch(
                    proxy.port,
                    f"/app/hold?tag={tag}&ms=15000",
                    {"Cookie": "JSESSIONID=ABC.node3", "Content-Type": "application/octet-stream"},
                    method="POST",
                    body=body,
                    timeout=30,
                )
            )
        except BaseException as exc:
            result.append(exc)

    poster = threading.Thread(target=post, daemon=True)
    poster.start()
    deadline = time.monotonic() + 10
    while not _seen(node3, tag):
        assert time.monotonic() < deadline, "node3 never received the POST body"
        time.sleep(0.05)
    node3.kill()
    killed = time.monotonic()
    poster.join(timeout=30)
    assert not poster.is_alive(), "the POST got no answer"
    answered = time.monotonic() - killed
    [answer] = result
    assert isinstance(answer, Answer), answer
    assert answer.status == 502, answer
    assert answered < 5, f"answered {answered:.1f} s after the kill"
    assert not _seen(node4, tag), "node4 received the POST too"
    time.sleep(0.2)
    posts = [line for line in node4.access_log_lines(path_contains=tag) if line.method == "POST"]
    assert posts == []
    answer = fetch(proxy.port, "/app/echo", {"Cookie": "JSESSIONID=ABC.node3"})
    assert (answer.status, answer.node) == (200, "node4")

    # The other side of the rule: a body nothing of which reached a member is replayed.
    # A fresh proxy still thinks node3 usable: the POST goes there, is refused, and fails
    # over to node4 with its whole body.
    fresh = proxy_factory(
        Cluster(
            spare_nodes, protocol, proxyset=STICKY, member_params=f"retry={RETRY}"
        ).ajpbalancer_config()
    )
    replayed = f"{tag}-replayed"
    answer = fetch(
        fresh.port,
        f"/app/hold?tag={replayed}",
        {"Cookie": "JSESSIONID=ABC.node3", "Content-Type": "application/octet-stream"},
        method="POST",
        body=body,
    )
    assert (answer.status, answer.node) == (200, "node4"), answer
    assert answer.json()["bodyLength"] == len(body)
    assert _seen(node4, replayed)


def _seen(node: Tomcat, tag: str) -> bool:
    """Whether `node` received the body of a POST to /app/hold tagged `tag` (asked directly)."""
    answer = _direct(node, f"/app/hold?peek={urllib.parse.quote(tag)}")
    seen: bool = answer.json()["seen"]
    return seen


def _direct(node: Tomcat, path: str) -> Answer:
    conn = http.client.HTTPConnection(node.address, node.http_port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return Answer(resp.status, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_failonstatus_puts_the_member_in_error_for_retry_seconds(
    protocol: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``failonstatus=503``: the 503 reaches the client; the member rests for ``retry`` s."""
    proxy = proxy_factory(
        Cluster(
            tomcats, protocol, proxyset="failonstatus=503", member_params=f"retry={RETRY}"
        ).ajpbalancer_config()
    )
    failing = fetch(proxy.port, "/app/status?code=503")
    in_error = time.monotonic()
    assert failing.status == 503
    assert failing.json() == {"node": failing.node, "code": 503}
    healthy = other(("node1", "node2"), failing.node)
    while time.monotonic() < in_error + RETRY - 0.3:
        answer = fetch(proxy.port, "/app/echo")
        assert (answer.status, answer.node) == (200, healthy)
        time.sleep(0.05)
    deadline = in_error + RETRY + RECOVERY_SLACK
    while True:
        answer = fetch(proxy.port, "/app/echo")
        assert answer.status == 200
        if answer.node == failing.node:
            break
        assert time.monotonic() < deadline, f"{failing.node} not retried after {RETRY} s"
        time.sleep(0.05)


# --- reverse rewriting ----------------------------------------------------------------------


def host_cases(proxy: ProxyProcess) -> list[tuple[dict[str, str], str]]:
    """(request headers, the public base a redirect must come back with)."""
    return [
        ({"Host": PUBLIC_HOST}, f"http://{PUBLIC_HOST}"),
        ({"Host": "public.example"}, "http://public.example"),
        ({"Host": "public.example:80"}, "http://public.example"),
        ({}, f"http://127.0.0.1:{proxy.port}"),
    ]


@pytest.mark.parametrize("form", sorted(REVERSE_FORMS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tomcat_redirects_come_back_with_the_public_host(
    protocol: str, form: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """Tomcat's ``/app`` → ``/app/`` and the webapp's redirects: the client's Host, never a
    member's address."""
    proxy_pass, reverse = REVERSE_FORMS[form]
    proxy = proxy_factory(
        Cluster(tomcats, protocol, proxy_pass=proxy_pass, reverse=reverse).ajpbalancer_config()
    )
    redirects = [
        ("/app", "/app/"),
        ("/app/redirect", "/app/echo"),
        ("/app/redirect?to=/app/session%3Fx%3D1", "/app/session?x=1"),
        ("/app/redirect?to=relative/x", "/app/relative/x"),
    ]
    served = set()
    for headers, base in host_cases(proxy):
        for path, location in redirects:
            for _ in range(2):  # byrequests alternates: each node answers once
                answer = fetch(proxy.port, path, headers)
                assert answer.status == 302, (path, answer)
                assert answer.all("Location") == [base + location], (path, headers)
                served.add(answer.node)
    assert served >= {"node1", "node2"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cookies_set_by_the_node_are_rewritten_and_otherwise_kept_byte_for_byte(
    protocol: str, tomcats: tuple[Tomcat, Tomcat], proxy_factory: ProxyFactory
) -> None:
    """``ProxyPassReverseCookieDomain``/``…CookiePath``: only the ``domain=`` and ``path=``
    values change, whole, by prefix (domain in any case, path case-sensitively)."""
    proxy = proxy_factory(
        Cluster(
            tomcats,
            protocol,
            cookie_domain=COOKIE_DOMAINS,
            cookie_path=COOKIE_PATHS,
        ).ajpbalancer_config()
    )
    untouched = [
        "X-Cookie-Like:Domain=127.0.0.2; Path=/app",
        f"Refresh:0; url=http://127.0.0.2:{tomcats[0].http_port}/app/",
    ]
    path = headers_path([f"Set-Cookie:{raw}" for raw, _ in COOKIE_CASES] + untouched)
    for headers, _ in host_cases(proxy):
        for _ in range(2):  # each node once
            answer = fetch(proxy.port, path, headers)
            assert answer.status == 200
            assert answer.all("Set-Cookie") == [expected for _, expected in COOKIE_CASES]
            assert answer.all("X-Cookie-Like") == ["Domain=127.0.0.2; Path=/app"]
            assert answer.all("Refresh") == [untouched[1].split(":", 1)[1]]
    # Tomcat's own session cookie: its Path=/app becomes /.
    answer = fetch(proxy.port, "/app/session")
    [set_cookie] = answer.all("Set-Cookie")
    assert set_cookie == f"JSESSIONID={answer.json()['sessionId']}; Path=/; HttpOnly"
