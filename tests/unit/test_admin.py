"""The admin listener in memory: balancer-manager, /status.json, /metrics and Basic auth.

Requests go through the real ``twisted.web`` site (HTTP parsing, guard, resources) over
a ``StringTransport``; the proxy behind it is the in-memory harness, so counters move
as real exchanges end. bcrypt is checked synchronously here (in a thread in production).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import bcrypt
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.web.server import Site

from ajpbalancer.admin import (
    MAX_FORM_BODY,
    AdminUsersError,
    Htpasswd,
    HtpasswdChecker,
    ProxyMetrics,
    admin_site,
    as_json,
    snapshot,
    status_words,
)
from ajpbalancer.admin._htpasswd import bcrypt_matches, sha_matches
from ajpbalancer.admin._page import strfsize
from ajpbalancer.balancer import STATUS_LETTERS, MemberState, Status
from ajpbalancer.config import parse
from ajpbalancer.service import ProxyRuntime, ProxyService, StartError
from tests.unit.proxyharness import Harness, Member, response

CONFIG = """
[ajpbalancer]
access_log = off

[frontend]
listen = tcp:8080:interface=127.0.0.1
ProxyPass = /app balancer://c/app
            /direct http://127.0.0.9:9000/d
            /hc balancer://checked/

[balancer://c]
BalancerMember = http://127.0.0.2:8080 route=node1 timeout=30 connectiontimeout=3
                 http://127.0.0.3:8080 route=node2 timeout=30 connectiontimeout=3 loadfactor=3
ProxySet = stickysession=JSESSIONID|jsessionid

[balancer://checked]
BalancerMember = http://127.0.0.4:8080 hcmethod=GET hcuri=/ok
"""

M1 = "http://127.0.0.2:8080"
M2 = "http://127.0.0.3:8080"
HOST = "127.0.0.1:8081"
PAGE_URL = f"http://{HOST}/balancer-manager"
GET = b"GET /app/x HTTP/1.1\r\nHost: www.example\r\n\r\n"


# --- an HTTP client for the site, in memory ----------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return None if values is None else values[-1]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(
    site: Site,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    assert proto is not None
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 50000),
    )
    proto.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1"]
    all_headers = {"Host": HOST, **(headers or {})}
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    proto.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
    raw = transport.value()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(parsed["content-length"][0]) if "content-length" in parsed else len(rest)
    return Reply(int(status_line.split()[1]), parsed, rest[:length])


@dataclass
class Admin:
    """The harness's proxy with metrics, and the admin site in front of it."""

    harness: Harness
    metrics: ProxyMetrics
    site: Site
    verified: list[bytes] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)

    @property
    def runtime(self) -> ProxyRuntime:
        return self.harness.runtime

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return request(self.site, "GET", path, headers)

    def post(
        self,
        fields: Mapping[str, str] | str,
        *,
        referer: str | None = PAGE_URL,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> Reply:
        body = fields if isinstance(fields, str) else urlencode(fields)
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if referer is not None:
            all_headers["Referer"] = referer
        return request(self.site, "POST", "/balancer-manager", all_headers, body.encode())

    def nonce(self, balancer: str = "c") -> str:
        return self.runtime.balancers[balancer].nonce

    def member(self, name: str, balancer: str = "c") -> MemberState:
        return next(w.lb for w in self.runtime.balancers[balancer].members if w.name == name)

    def state(self) -> dict[str, Any]:
        """Everything the admin shows, to prove that nothing changed."""
        return as_json(snapshot(self.runtime, 0.0))

    def metric_samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        reply = self.get("/metrics")
        assert reply.status == 200
        out: dict[tuple[tuple[str, str], ...], float] = {}
        for family in text_string_to_metric_families(reply.text):
            for sample in family.samples:
                if sample.name == name:
                    out[tuple(sorted(sample.labels.items()))] = sample.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metric_samples(name).get(tuple(sorted(labels.items())), 0.0)


def make_admin(config: str = CONFIG, checker: HtpasswdChecker | None = None) -> Admin:
    h = Harness(config)
    metrics = ProxyMetrics(lambda: h.runtime)
    # The runtime the service builds: every frontend context reports to the metrics.
    h.runtime = ProxyRuntime(
        h.reactor, h.config, access_log=None, server_name=b"proxy.example", observer=metrics
    )
    h.context = h.runtime.contexts[""]
    site = admin_site(h.reactor, lambda: h.runtime, metrics, checker)
    return Admin(h, metrics, site)


@pytest.fixture
def admin() -> Admin:
    return make_admin()


def member_fields(member: str = M1, balancer: str = "c", **fields: str) -> dict[str, str]:
    return {"b": balancer, "w": member, **fields}


# --- the page ------------------------------------------------------------------------------


def test_page_shows_each_balancer_with_httpds_parameter_columns(admin: Admin) -> None:
    page = admin.get("/balancer-manager").text
    assert "<h1>Load Balancer Manager for 127.0.0.1:8081</h1>" in page
    link = f"/balancer-manager?b=c&amp;nonce={admin.nonce()}"
    assert f'<a href="{link}">balancer://c</a>' in page
    assert (
        "<th>MaxMembers</th><th>StickySession</th><th>DisableFailover</th><th>Timeout</th>"
        "<th>FailoverAttempts</th><th>Method</th>"
    ) in page
    assert (
        "<tr><td>2 [2 Used]</td><td>JSESSIONID | jsessionid</td><td>Off</td>"
        "<td>0</td><td>1</td><td>byrequests</td></tr>"
    ) in page


def test_page_shows_each_member_with_httpds_columns_and_errors(admin: Admin) -> None:
    state = admin.member(M2)
    state.elected, state.busy, state.lbstatus = 7, 2, -150
    state.transferred, state.read, state.errors = 2048, 5 * 1024 * 1024, 3
    state.set_status(Status.DISABLED, True)
    page = admin.get("/balancer-manager").text
    assert (
        "<th>Worker URL</th><th>Route</th><th>RouteRedir</th><th>Factor</th><th>Set</th>"
        "<th>Status</th><th>Elected</th><th>Busy</th><th>Load</th><th>To</th>"
        "<th>From</th><th>Flags</th><th>Errors</th></tr>"
    ) in page
    link = f"/balancer-manager?b=c&amp;w=http://127.0.0.3:8080&amp;nonce={admin.nonce()}"
    assert (
        f'<tr><td><a href="{link}">{M2}</a></td><td>node2</td><td></td><td>3.00</td>'
        "<td>0</td><td>Init Dis</td><td>7</td><td>2</td><td>-150</td>"
        "<td>2.0K</td><td>5.0M</td><td>D</td><td>3</td></tr>"
    ) in page


def test_health_check_columns_appear_for_a_balancer_whose_members_have_one(admin: Admin) -> None:
    page = admin.get("/balancer-manager").text
    checked = page.split("balancer://checked")[1]
    assert "<th>HC Method</th><th>HC Interval</th><th>Passes</th><th>Fails</th>" in checked
    assert "<td>GET</td><td>30000ms</td>" in checked
    assert "<td>/ok</td><td>Passing</td>" in checked
    first = page.split("balancer://checked")[0]
    assert "HC Method" not in first


def test_direct_proxypass_targets_are_listed_without_forms(admin: Admin) -> None:
    page = admin.get("/balancer-manager").text
    direct = page.split("Workers of ProxyPass rules")[1]
    assert "<td>http://127.0.0.9:9000</td>" in direct


def test_page_escapes_every_value_it_shows(admin: Admin) -> None:
    admin.member(M1).route = '<script>alert("x")</script>'
    admin.member(M1).redirect = "a&b"
    page = admin.get(f"/balancer-manager?b=c&w={M1}").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'value="a&amp;b"' in page


def test_a_sticky_name_with_token_punctuation_is_escaped() -> None:
    a = make_admin(CONFIG.replace("JSESSIONID|jsessionid", "a&b'c"))
    page = a.get("/balancer-manager?b=c").text
    assert "<td>a&amp;b&#x27;c</td>" in page
    assert 'value="a&amp;b&#x27;c"' in page


def test_member_link_opens_its_form_with_the_balancers_nonce(admin: Admin) -> None:
    page = admin.get("/balancer-manager?b=c&w=http%3A%2F%2F127.0.0.2%3A8080").text
    assert f"<h3>Edit worker settings for {M1}</h3>" in page
    assert 'action="/balancer-manager"' in page
    for name, value in [("w_lf", "1.00"), ("w_ls", "0"), ("w_wr", "node1"), ("w_rr", "")]:
        assert f'<input name="{name}" id="{name}" type="text" value="{value}">' in page
    assert f'<input type="hidden" name="w" id="w" value="{M1}">' in page
    assert '<input type="hidden" name="b" id="b" value="c">' in page
    assert f'<input type="hidden" name="nonce" id="nonce" value="{admin.nonce()}">' in page
    for letter in "INDHRS":
        radio = f'name="w_status_{letter}" id="w_status_{letter}0" value="0" type="radio" checked'
        assert radio in page
    assert "w_status_C" not in page  # no health check on this member


def test_member_form_offers_hc_fail_only_with_a_health_check(admin: Admin) -> None:
    page = admin.get("/balancer-manager?b=checked&w=http://127.0.0.4:8080").text
    assert "<th>HC Fail</th>" in page
    assert 'id="w_status_C0" value="0" type="radio" checked' in page


def test_balancer_link_opens_its_form(admin: Admin) -> None:
    page = admin.get("/balancer-manager?b=c").text
    assert "<h3>Edit balancer settings for balancer://c</h3>" in page
    assert '<option value="byrequests" selected>byrequests</option>' in page
    assert '<input name="b_tmo" id="b_tmo" type="text" value="0">' in page
    assert '<input name="b_max" id="b_max" type="text" value="1">' in page
    assert 'id="b_sforce0" value="0" type="radio" checked' in page
    assert 'value="JSESSIONID | jsessionid"' in page
    assert f'name="nonce" id="nonce" value="{admin.nonce()}"' in page


def test_unknown_balancer_or_member_in_the_query_shows_the_page_without_a_form(
    admin: Admin,
) -> None:
    assert "Edit" not in admin.get("/balancer-manager?b=nope").text
    page = admin.get("/balancer-manager?b=c&w=http://elsewhere").text
    assert "Edit balancer settings" in page


def test_a_get_never_changes_anything(admin: Admin) -> None:
    before = admin.state()
    reply = admin.get(
        f"/balancer-manager?b=c&w={M1}&w_status_D=1&w_lf=5&nonce={admin.nonce()}",
        {"Referer": PAGE_URL},
    )
    assert reply.status == 200
    assert admin.state() == before


def test_answers_forbid_caching_framing_and_foreign_content(admin: Admin) -> None:
    for path in ("/balancer-manager", "/status.json", "/metrics", "/"):
        reply = admin.get(path)
        assert reply.header("cache-control") == "no-store"
        assert reply.header("x-frame-options") == "DENY"
        assert "frame-ancestors 'none'" in (reply.header("content-security-policy") or "")
        assert reply.header("referrer-policy") == "same-origin"


def test_index_links_the_three_pages_and_other_paths_are_404(admin: Admin) -> None:
    index = admin.get("/").text
    for link in ("balancer-manager", "status.json", "metrics"):
        assert f'href="{link}"' in index
    assert admin.get("/nothing").status == 404


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Twisted's own 501 page
def test_methods_other_than_get_head_post_are_refused(admin: Admin) -> None:
    before = admin.state()
    reply = request(admin.site, "PUT", "/balancer-manager", body=b"b=c")
    assert reply.status == 501
    assert admin.state() == before


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ("", "Init Ok"),
        ("D", "Init Dis"),
        ("E", "Init Err"),
        ("S", "Init Stop"),
        ("C", "Init HcFl"),
        ("N", "Init Drn Ok"),
        ("H", "Init Stby Ok"),
        ("R", "Init Spar Ok"),
        ("I", "Init Ign Ok"),
        ("IDE", "Init Ign Dis Err"),
    ],
)
def test_status_words_are_httpds(flags: str, words: str) -> None:
    state = MemberState(100)
    for letter in flags:
        state.set_status(STATUS_LETTERS[letter], True)
    assert status_words(state) == words


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0"),
        (972, "972"),
        (973, "1.0K"),
        (1536, "1.5K"),
        (9 * 1024, "9.0K"),
        (10 * 1024, "10K"),
        (500 * 1024, "500K"),
        (1024 * 1024, "1.0M"),
        (3 * 1024**3, "3.0G"),
    ],
)
def test_byte_counts_are_shown_as_apr_strfsize_does(size: int, shown: str) -> None:
    assert strfsize(size) == shown


# --- /status.json --------------------------------------------------------------------------


def test_status_json_has_the_pages_data(admin: Admin) -> None:
    proto, _client = admin.harness.client()
    proto.dataReceived(GET)
    member = admin.harness.accept_member()
    member.sent()
    member.reply(response(b"hello"))
    reply = admin.get("/status.json")
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"
    doc = json.loads(reply.body)
    assert doc["version"] == "0.1.0"
    assert [b["name"] for b in doc["balancers"]] == ["c", "checked"]
    c = doc["balancers"][0]
    assert {k: c[k] for k in ("lbmethod", "stickysession", "nofailover", "maxattempts")} == {
        "lbmethod": "byrequests",
        "stickysession": ["JSESSIONID", "jsessionid"],
        "nofailover": False,
        "maxattempts": 1,
    }
    assert c["timeout"] == 0.0
    assert c["nonce"] == admin.nonce()
    served = c["members"][1]
    assert served == {
        "name": M2,
        "scheme": "http",
        "route": "node2",
        "redirect": None,
        "loadfactor": 3.0,
        "lbset": 0,
        "status": "Init Ok",
        "flags": "",
        "usable": True,
        "elected": 1,
        "busy": 0,
        "lbstatus": -100,
        "transferred": 0,
        "read": len(b"hello"),
        "errors": 0,
        "retries": 0,
        "error_time": None,
        "retry": 60.0,
        "pool": {"open": 1, "idle": 1},
        "health_check": None,
        "sources": {
            key: "file"
            for key in (
                "loadfactor",
                "lbset",
                "route",
                "redirect",
                *(f"status_{letter}" for letter in "INDHRSC"),
            )
        },
        "runtime": {},
        "tunnels": {"open": 0, "opened": 0, "sent": 0, "received": 0},
    }
    checked = doc["balancers"][1]["members"][0]["health_check"]
    assert checked == {
        "method": "GET",
        "uri": "/ok",
        "interval": 30.0,
        "passes": 1,
        "fails": 1,
        "passing": True,
        "pcount": 0,
        "fcount": 0,
    }
    assert [w["name"] for w in doc["workers"]] == ["http://127.0.0.9:9000"]


def test_status_json_shows_error_state_and_its_time(admin: Admin) -> None:
    admin.harness.reactor.advance(1000)
    proto, _client = admin.harness.client()
    proto.dataReceived(GET)
    admin.harness.refuse_member()
    doc = json.loads(admin.get("/status.json").body)
    refused = doc["balancers"][0]["members"][1]
    assert refused["flags"] == "E"
    assert refused["status"] == "Init Err"
    assert refused["errors"] == 1
    assert refused["error_time"] == 1000.0


# --- changes: nonce and Referer ----------------------------------------------------------


def test_a_change_without_referer_is_403_and_changes_nothing(admin: Admin) -> None:
    before = admin.state()
    reply = admin.post(member_fields(w_status_D="1", nonce=admin.nonce()), referer=None)
    assert reply.status == 403
    assert "Referer" in reply.text
    assert admin.state() == before


@pytest.mark.parametrize(
    "referer",
    [
        "http://evil.example/balancer-manager",
        "http://127.0.0.1:8080/balancer-manager",  # the proxy's own frontend, another port
        "https://127.0.0.1:8081/balancer-manager",  # another scheme
        "http://127.0.0.1.evil.example:8081/",
        "balancer-manager",
        "not a url",
        "http://[::1/",
    ],
)
def test_a_change_with_a_foreign_referer_is_403_and_changes_nothing(
    admin: Admin, referer: str
) -> None:
    before = admin.state()
    reply = admin.post(member_fields(w_status_D="1", nonce=admin.nonce()), referer=referer)
    assert reply.status == 403
    assert admin.state() == before


def test_referer_host_is_compared_without_case(admin: Admin) -> None:
    reply = admin.post(
        member_fields(w_status_D="1", nonce=admin.nonce()),
        referer="HTTP://127.0.0.1:8081/balancer-manager?b=c",
    )
    assert reply.status == 200
    assert admin.member(M1).has(Status.DISABLED)


def test_a_change_with_a_foreign_origin_is_403_and_changes_nothing(admin: Admin) -> None:
    before = admin.state()
    reply = admin.post(
        member_fields(w_status_D="1", nonce=admin.nonce()),
        headers={"Origin": "http://evil.example"},
    )
    assert reply.status == 403
    assert "Origin" in reply.text
    assert admin.state() == before


def test_a_same_origin_origin_header_is_accepted(admin: Admin) -> None:
    reply = admin.post(
        member_fields(w_status_D="1", nonce=admin.nonce()), headers={"Origin": f"http://{HOST}"}
    )
    assert reply.status == 200


@pytest.mark.parametrize("nonce", [None, "", "0" * 36, "other balancer"])
def test_a_change_without_the_balancers_nonce_is_403_and_changes_nothing(
    admin: Admin, nonce: str | None
) -> None:
    fields = member_fields(w_status_D="1")
    if nonce == "other balancer":
        fields["nonce"] = admin.nonce("checked")
    elif nonce is not None:
        fields["nonce"] = nonce
    before = admin.state()
    reply = admin.post(fields)
    assert reply.status == 403
    assert "nonce" in reply.text
    assert admin.state() == before


def test_every_balancer_has_its_own_nonce_a_uuid(admin: Admin) -> None:
    nonces = {b.nonce for b in admin.runtime.balancers.values()}
    assert len(nonces) == 2
    assert all(len(n) == 36 and n.count("-") == 4 for n in nonces)


# --- changes: each field -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("w_lf", "2.5", lambda s: s.lbfactor == 250),
        ("w_lf", "100", lambda s: s.lbfactor == 10000),
        ("w_ls", "3", lambda s: s.lbset == 3),
        ("w_wr", "nodeX", lambda s: s.route == "nodeX"),
        ("w_wr", "", lambda s: s.route is None),
        ("w_rr", "node2", lambda s: s.redirect == "node2"),
    ],
)
def test_each_member_field_sets_its_value(admin: Admin, field: str, value: str, check: Any) -> None:
    reply = admin.post(member_fields(nonce=admin.nonce(), **{field: value}))
    assert reply.status == 200, reply.text
    assert check(admin.member(M1))
    assert admin.member(M2).lbfactor == 300  # the other member is left alone


@pytest.mark.parametrize("letter", "INDHRSC")
def test_each_status_flag_is_set_and_cleared(admin: Admin, letter: str) -> None:
    flag = STATUS_LETTERS[letter]
    assert admin.post(member_fields(nonce=admin.nonce(), **{f"w_status_{letter}": "1"})).status
    assert admin.member(M1).status == flag
    assert admin.member(M2).status == Status(0)
    admin.post(member_fields(nonce=admin.nonce(), **{f"w_status_{letter}": "0"}))
    assert admin.member(M1).status == Status(0)


def test_the_page_form_as_a_browser_posts_it_changes_only_what_was_changed(
    admin: Admin,
) -> None:
    # Every field of the form is posted, the unchanged ones with their current values.
    fields = member_fields(
        nonce=admin.nonce(), w_lf="1.00", w_ls="0", w_wr="node1", w_rr="", w_status_D="1"
    )
    fields.update({f"w_status_{x}": "0" for x in "INHRS"})
    state = admin.member(M2)
    state.lbstatus = 42
    reply = admin.post(fields)
    assert reply.status == 200
    assert f"balancer://c member {M1}: +D" in reply.text
    assert admin.member(M1).status == Status.DISABLED
    assert admin.member(M1).lbfactor == 100
    assert state.lbstatus == 42  # no recalculation: the loadfactor did not change


def test_a_new_loadfactor_recalculates_lbstatus_as_httpd(admin: Admin) -> None:
    admin.member(M1).lbstatus, admin.member(M2).lbstatus = -7, 7
    admin.post(member_fields(nonce=admin.nonce(), w_lf="2"))
    assert (admin.member(M1).lbstatus, admin.member(M2).lbstatus) == (200, 300)


def test_a_member_made_usable_again_resets_the_balancers_lbstatus(admin: Admin) -> None:
    admin.member(M1).set_status(Status.DISABLED, True)
    admin.member(M1).lbstatus, admin.member(M2).lbstatus = 5, -5
    admin.post(member_fields(nonce=admin.nonce(), w_status_D="0"))
    assert (admin.member(M1).lbstatus, admin.member(M2).lbstatus) == (0, 0)


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("b_lbm", "bybusyness", "lbmethod", "bybusyness"),
        ("b_lbm", "BYTRAFFIC", "lbmethod", "bytraffic"),
        ("b_tmo", "5", "timeout", 5.0),
        ("b_tmo", "0", "timeout", 0.0),
        ("b_max", "0", "maxattempts", 0),
        ("b_sforce", "1", "nofailover", True),
        ("b_ss", "SID | sid", "stickysession", ("SID", "sid")),
        ("b_ss", "ROUTEID", "stickysession", ("ROUTEID",)),
        ("b_ss", "-", "stickysession", ()),
        ("b_ss", "", "stickysession", ("JSESSIONID", "jsessionid")),
    ],
)
def test_each_balancer_field_sets_its_parameter(
    admin: Admin, field: str, value: str, attribute: str, expected: object
) -> None:
    reply = admin.post({"b": "c", "nonce": admin.nonce(), field: value})
    assert reply.status == 200, reply.text
    assert getattr(admin.runtime.balancers["c"].params, attribute) == expected


def test_maxattempts_from_the_page_governs_failover(admin: Admin) -> None:
    admin.post({"b": "c", "nonce": admin.nonce(), "b_max": "0"})
    assert admin.runtime.balancers["c"].max_attempts == 0
    proto, client = admin.harness.client()
    proto.dataReceived(GET)
    admin.harness.refuse_member()
    assert client.value().startswith(b"HTTP/1.1 503 ")  # no second attempt


def test_a_new_lbmethod_resets_lbstatus(admin: Admin) -> None:
    admin.member(M1).lbstatus = 9
    admin.post({"b": "c", "nonce": admin.nonce(), "b_lbm": "bybusyness"})
    assert admin.member(M1).lbstatus == 0


def test_a_disabled_member_gets_no_new_request(admin: Admin) -> None:
    admin.post(member_fields(member=M2, nonce=admin.nonce(), w_status_D="1"))
    hosts = [serve(admin, port=41000 + i) for i in range(6)]
    assert set(hosts) == {"127.0.0.2"}


def test_a_change_is_logged_with_its_user_client_and_what_changed(admin: Admin) -> None:
    seen: list[dict[str, Any]] = []
    observer = cast(ILogObserver, seen.append)
    globalLogPublisher.addObserver(observer)
    try:
        admin.post(member_fields(nonce=admin.nonce(), w_status_N="1", w_ls="2"))
    finally:
        globalLogPublisher.removeObserver(observer)
    changed = [e for e in seen if e.get("target") == f"balancer://c member {M1}"]
    assert changed and changed[0]["changes"] == "lbset 2, +N"
    assert changed[0]["client"] == "127.0.0.1"
    assert changed[0]["user"] == "-"


# --- changes: invalid values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"w_lf": "0"}, "w_lf must be a number from 1 to 100, got '0'"),
        ({"w_lf": "101"}, "w_lf must be a number from 1 to 100"),
        ({"w_lf": "abc"}, "w_lf must be a number"),
        ({"w_lf": "nan"}, "w_lf must be a number"),
        ({"w_ls": "100"}, "w_ls must be an integer from 0 to 99"),
        ({"w_ls": "-1"}, "w_ls must be an integer"),
        ({"w_wr": "a b"}, "w_wr must be a token"),
        ({"w_rr": "x;y"}, "w_rr must be a token"),
        ({"w_status_D": "2"}, "w_status_D must be 1 (on) or 0 (off)"),
        ({"w_status_D": "on"}, "w_status_D must be 1 (on) or 0 (off)"),
        ({"w_status_E": "1"}, "w_status_E: unknown member field"),
        ({"w_hm": "GET"}, "w_hm: health check method is not supported"),
        ({"b_lbm": "roundrobin"}, "b_lbm 'roundrobin' is not one of byrequests"),
        ({"b_tmo": "7201"}, "b_tmo must be an integer from 0 to 7200"),
        ({"b_tmo": "1.5"}, "b_tmo must be an integer"),
        ({"b_max": "100"}, "b_max must be an integer from 0 to 99"),
        ({"b_sforce": "On"}, "b_sforce must be 1 (on) or 0 (off)"),
        ({"b_ss": "a b|c"}, "b_ss must be tokens separated by '|'"),
        ({"b_nwrkr": "http://x", "b_wyes": "1"}, "adding a member is not supported"),
        ({"b_foo": "1"}, "b_foo: unknown balancer field"),
        # A valid change next to an invalid one is not applied either.
        ({"w_status_D": "1", "w_lf": "abc"}, "w_lf must be a number"),
        ({"w_status_D": "1", "b_max": "x"}, "b_max must be an integer"),
    ],
)
def test_an_invalid_value_is_400_with_its_message_and_changes_nothing(
    admin: Admin, fields: dict[str, str], message: str
) -> None:
    before = admin.state()
    reply = admin.post(member_fields(nonce=admin.nonce(), **fields))
    assert reply.status == 400
    assert message in reply.text
    assert admin.state() == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"b": "nope"}, "b: no balancer named 'nope'"),
        ({}, "b: no balancer named None"),
        ({"b": "c", "w": "http://127.0.0.4:8080"}, "balancer 'c' has no member"),
        ({"b": "c", "w_status_D": "1"}, "w_status_D: a member field needs w"),
    ],
)
def test_an_unknown_balancer_or_member_is_400(
    admin: Admin, fields: dict[str, str], message: str
) -> None:
    before = admin.state()
    reply = admin.post({**fields, "nonce": admin.nonce()})
    assert reply.status == 400
    assert message in reply.text
    assert admin.state() == before


def test_a_change_not_posted_as_a_form_is_refused(admin: Admin) -> None:
    before = admin.state()
    fields = urlencode(member_fields(nonce=admin.nonce(), w_status_D="1"))
    reply = admin.post(fields, content_type="text/plain")
    assert reply.status == 400
    assert admin.state() == before


def test_a_form_that_is_not_utf8_is_400(admin: Admin) -> None:
    reply = admin.post(f"b=c&nonce={admin.nonce()}&w={M1}&w_wr=%FF")
    assert reply.status == 400


def test_a_form_body_over_the_limit_is_413_and_changes_nothing(admin: Admin) -> None:
    before = admin.state()
    padding = "x" * MAX_FORM_BODY
    fields = urlencode(member_fields(nonce=admin.nonce(), w_status_D="1")) + "&pad=" + padding
    reply = admin.post(fields)
    assert reply.status == 413
    assert admin.state() == before


def test_a_form_body_at_the_limit_is_read(admin: Admin) -> None:
    fields = urlencode(member_fields(nonce=admin.nonce(), w_status_D="1")) + "&pad="
    fields += "x" * (MAX_FORM_BODY - len(fields))
    assert len(fields) == MAX_FORM_BODY
    assert admin.post(fields).status == 200
    assert admin.member(M1).has(Status.DISABLED)


# --- Basic auth and admin_users ------------------------------------------------------------


def bcrypt_hash(password: bytes, prefix: bytes = b"$2y$") -> bytes:
    return prefix + bcrypt.hashpw(password, bcrypt.gensalt(rounds=4))[4:]


def sha_hash(password: bytes) -> bytes:
    return b"{SHA}" + base64.b64encode(hashlib.sha1(password).digest())


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def secured() -> Iterator[Admin]:
    users = b"\n".join(
        [
            b"# operators",
            b"alice:" + bcrypt_hash(b"alice-pw", b"$2y$"),
            b"bob:" + bcrypt_hash(b"bob-pw", b"$2b$"),
            b"",
            b"carol:" + sha_hash(b"carol-pw"),
        ]
    )
    calls: list[bytes] = []

    def verify(password: bytes, hashed: bytes) -> Deferred[bool]:
        calls.append(hashed)
        return succeed(bcrypt_matches(password, hashed))

    checker = HtpasswdChecker(Htpasswd.parse(users, "admin.htpasswd"), verify)
    a = make_admin(checker=checker)
    a.verified = calls
    yield a


@pytest.mark.parametrize("path", ["/", "/balancer-manager", "/status.json", "/metrics"])
def test_every_path_needs_credentials(secured: Admin, path: str) -> None:
    reply = secured.get(path)
    assert reply.status == 401
    assert reply.header("www-authenticate") == 'basic realm="ajpbalancer admin"'


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong"), ("carol", "alice-pw"), ("mallory", "alice-pw"), ("alice", "")],
)
def test_wrong_credentials_are_401(secured: Admin, user: str, password: str) -> None:
    assert secured.get("/status.json", basic(user, password)).status == 401


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw")],
    ids=["bcrypt-2y", "bcrypt-2b", "sha"],
)
def test_right_credentials_open_every_page(secured: Admin, user: str, password: str) -> None:
    for path in ("/", "/balancer-manager", "/status.json", "/metrics"):
        assert secured.get(path, basic(user, password)).status == 200


def test_a_change_needs_credentials_too(secured: Admin) -> None:
    before = secured.state()
    reply = secured.post(member_fields(nonce=secured.nonce(), w_status_D="1"))
    assert reply.status == 401
    assert secured.state() == before
    reply = secured.post(
        member_fields(nonce=secured.nonce(), w_status_D="1"), headers=basic("bob", "bob-pw")
    )
    assert reply.status == 200
    assert secured.member(M1).has(Status.DISABLED)


def test_a_verified_bcrypt_password_is_not_checked_again(secured: Admin) -> None:
    for _ in range(3):
        assert secured.get("/metrics", basic("alice", "alice-pw")).status == 200
    assert len(secured.verified) == 1
    assert secured.get("/metrics", basic("alice", "other")).status == 401
    assert len(secured.verified) == 2


def test_an_unknown_user_costs_a_bcrypt_check_too(secured: Admin) -> None:
    assert secured.get("/metrics", basic("mallory", "x")).status == 401
    assert len(secured.verified) == 1


def test_sha_and_bcrypt_helpers() -> None:
    assert sha_matches(b"pw", sha_hash(b"pw"))
    assert not sha_matches(b"pw2", sha_hash(b"pw"))
    hashed = bcrypt_hash(b"x" * 72)
    assert bcrypt_matches(b"x" * 72, hashed)
    assert not bcrypt_matches(b"x" * 73, hashed)  # never a match on the first 72 bytes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"alice:$apr1$abc$0123456789012345678901\n",
            "admin.htpasswd:1: user 'alice': unsupported",
        ),
        (b"alice:plain\n", "unsupported password hash"),
        (b"alice\n", "admin.htpasswd:1: expected user:hash"),
        (b":" + sha_hash(b"x") + b"\n", "expected user:hash"),
        (b"a:" + sha_hash(b"x") + b"\na:" + sha_hash(b"y"), "admin.htpasswd:2: user 'a' appears"),
        (b"# nobody\n\n", "admin.htpasswd: no users"),
    ],
)
def test_an_unusable_htpasswd_file_is_refused(content: bytes, message: str) -> None:
    with pytest.raises(AdminUsersError) as raised:
        Htpasswd.parse(content, "admin.htpasswd")
    assert message in str(raised.value)


def test_a_missing_htpasswd_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AdminUsersError, match="cannot read"):
        Htpasswd.load(str(tmp_path / "missing"))


def test_htpasswd_lines_may_end_in_crlf(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_bytes(b"carol:" + sha_hash(b"pw") + b"\r\n")
    assert set(Htpasswd.load(str(path)).users) == {b"carol"}


# --- /metrics ------------------------------------------------------------------------------


def serve(admin: Admin, body: bytes = b"hello", path: bytes = b"/app/x", port: int = 40000) -> str:
    """One request through the proxy, answered by the member it reached (whose host)."""
    proto, _client = admin.harness.client(port=port)
    proto.dataReceived(GET.replace(b"/app/x", path))
    if admin.harness.pending_connects():
        admin.members.append(admin.harness.accept_member())
    member = next(m for m in admin.members if m.transport.value())
    member.sent()
    member.reply(response(body))
    peer = member.transport.getPeer()
    assert isinstance(peer, IPv4Address)
    return peer.host


def test_metrics_is_prometheus_text_from_the_services_own_registry(admin: Admin) -> None:
    reply = admin.get("/metrics")
    assert reply.status == 200
    assert (reply.header("content-type") or "").startswith("text/plain; version=")
    names = {f.name for f in text_string_to_metric_families(reply.text)}
    assert {
        "ajpbalancer_requests",
        "ajpbalancer_request_duration_seconds",
        "ajpbalancer_member_request_duration_seconds",
        "ajpbalancer_member_failovers",
        "ajpbalancer_member_busy",
        "ajpbalancer_member_elected",
        "ajpbalancer_member_errors",
        "ajpbalancer_member_sent_bytes",
        "ajpbalancer_member_received_bytes",
        "ajpbalancer_member_loadfactor",
        "ajpbalancer_member_lbstatus",
        "ajpbalancer_member_usable",
        "ajpbalancer_member_status",
        "ajpbalancer_pool_open_connections",
        "ajpbalancer_pool_idle_connections",
        "ajpbalancer_member_health_check_passing",
    } <= names
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("ajpbalancer")]


def test_request_counters_move_by_frontend_member_and_status_class(admin: Admin) -> None:
    labels = {"frontend": "", "balancer": "c", "status_class": "2xx"}
    assert admin.metric("ajpbalancer_requests_total", member=M2, **labels) == 0
    for i in range(4):
        serve(admin, port=41000 + i)
    assert admin.metric("ajpbalancer_requests_total", member=M2, **labels) == 3
    assert admin.metric("ajpbalancer_requests_total", member=M1, **labels) == 1
    proto, _client = admin.harness.client(port=42000)
    proto.dataReceived(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (
        admin.metric(
            "ajpbalancer_requests_total", frontend="", balancer="", member="", status_class="4xx"
        )
        == 1
    )


def test_latency_histograms_count_each_request(admin: Admin) -> None:
    proto, _client = admin.harness.client()
    proto.dataReceived(GET)
    member = admin.harness.accept_member()
    admin.harness.reactor.advance(0.2)
    member.sent()
    member.reply(response())
    count = admin.metric("ajpbalancer_request_duration_seconds_count", frontend="")
    assert count == 1
    assert admin.metric("ajpbalancer_request_duration_seconds_sum", frontend="") == 0.2
    bucket = admin.metric("ajpbalancer_request_duration_seconds_bucket", frontend="", le="0.1")
    assert bucket == 0
    assert (
        admin.metric("ajpbalancer_member_request_duration_seconds_count", balancer="c", member=M2)
        == 1
    )


def test_a_failover_is_counted_against_the_member_left(admin: Admin) -> None:
    proto, client = admin.harness.client()
    proto.dataReceived(GET)
    admin.harness.refuse_member()  # M2 refuses: the request moves on to M1
    admin.harness.accept_member().reply(response(b"ok"))
    assert client.value().endswith(b"ok")
    assert admin.metric("ajpbalancer_member_failovers_total", balancer="c", member=M2) == 1
    assert admin.metric("ajpbalancer_member_errors_total", balancer="c", member=M2) == 1
    assert admin.metric("ajpbalancer_member_status", balancer="c", member=M2, flag="E") == 1
    assert admin.metric("ajpbalancer_member_usable", balancer="c", member=M2) == 0
    assert admin.metric("ajpbalancer_member_usable", balancer="c", member=M1) == 1
    assert (
        admin.metric(
            "ajpbalancer_requests_total",
            frontend="",
            balancer="c",
            member=M1,
            status_class="2xx",
        )
        == 1
    )


def test_busy_bytes_and_pool_gauges_are_read_at_scrape_time(admin: Admin) -> None:
    proto, _client = admin.harness.client()
    proto.dataReceived(b"POST /app/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde")
    member = admin.harness.accept_member()
    member.sent()
    assert admin.metric("ajpbalancer_member_busy", balancer="c", member=M2) == 1
    assert admin.metric("ajpbalancer_pool_open_connections", balancer="c", member=M2) == 1
    assert admin.metric("ajpbalancer_pool_idle_connections", balancer="c", member=M2) == 0
    member.reply(response(b"0123456789"))
    assert admin.metric("ajpbalancer_member_busy", balancer="c", member=M2) == 0
    assert admin.metric("ajpbalancer_pool_idle_connections", balancer="c", member=M2) == 1
    assert admin.metric("ajpbalancer_member_sent_bytes_total", balancer="c", member=M2) == 5
    assert admin.metric("ajpbalancer_member_received_bytes_total", balancer="c", member=M2) == 10
    assert admin.metric("ajpbalancer_member_elected_total", balancer="c", member=M2) == 1
    assert admin.metric("ajpbalancer_member_loadfactor", balancer="c", member=M2) == 3


def test_health_check_state_is_a_gauge_for_members_that_have_one(admin: Admin) -> None:
    checked = {"balancer": "checked", "member": "http://127.0.0.4:8080", "hcmethod": "GET"}
    assert admin.metric("ajpbalancer_member_health_check_passing", **checked) == 1
    admin.member("http://127.0.0.4:8080", "checked").set_status(Status.HC_FAIL, True)
    assert admin.metric("ajpbalancer_member_health_check_passing", **checked) == 0
    samples = admin.metric_samples("ajpbalancer_member_health_check_passing")
    assert len(samples) == 1  # members without a health check have no such series


def test_direct_members_have_an_empty_balancer_label(admin: Admin) -> None:
    serve(admin, path=b"/direct/x")
    assert (
        admin.metric(
            "ajpbalancer_requests_total",
            frontend="",
            balancer="",
            member="http://127.0.0.9:9000",
            status_class="2xx",
        )
        == 1
    )
    direct = {"balancer": "", "member": "http://127.0.0.9:9000"}
    assert admin.metric("ajpbalancer_member_received_bytes_total", **direct) == len(b"hello")


def test_two_services_do_not_share_counters() -> None:
    first, second = make_admin(), make_admin()
    serve(first)
    labels = {"frontend": "", "balancer": "c", "member": M2, "status_class": "2xx"}
    assert first.metric("ajpbalancer_requests_total", **labels) == 1
    assert second.metric("ajpbalancer_requests_total", **labels) == 0


def test_openmetrics_is_served_when_asked_for(admin: Admin) -> None:
    reply = admin.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert (reply.header("content-type") or "").startswith("application/openmetrics-text")
    assert reply.text.endswith("# EOF\n")


# --- the service ---------------------------------------------------------------------------


def service_config(admin: str = "tcp:0:interface=127.0.0.1", users: str = "") -> str:
    settings = f"admin = {admin}\n" + (f"admin_users = {users}\n" if users else "")
    return CONFIG.replace("access_log = off\n", f"access_log = off\n{settings}")


def test_the_service_listens_on_admin_and_observes_every_frontend() -> None:
    reactor = MemoryReactorClock()
    service = ProxyService(reactor, parse(service_config(), "lb.ini"))
    service.privilegedStartService()
    try:
        assert service.admin is not None and service.metrics is not None
        sites = [f for _port, f, _backlog, _iface in reactor.tcpServers if isinstance(f, Site)]
        assert sites == [service.admin.site]
        assert service.runtime is not None
        assert all(c.observer is service.metrics for c in service.runtime.contexts.values())
    finally:
        service.stopService()


def test_without_admin_nothing_is_observed() -> None:
    reactor = MemoryReactorClock()
    service = ProxyService(reactor, parse(CONFIG, "lb.ini"))
    service.privilegedStartService()
    try:
        assert service.admin is None and service.metrics is None
        assert service.runtime is not None
        assert all(c.observer is None for c in service.runtime.contexts.values())
    finally:
        service.stopService()


def test_the_admin_reads_the_runtime_a_reload_put_in_place() -> None:
    reactor = MemoryReactorClock()
    config = parse(service_config(), "lb.ini")
    service = ProxyService(reactor, config, loader=lambda: config)
    service.privilegedStartService()
    try:
        old = service.runtime
        reloaded: list[bool] = []
        service.reload().addCallback(reloaded.append)
        assert reloaded == [True]
        assert service.runtime is not old and service.runtime is not None
        assert all(c.observer is service.metrics for c in service.runtime.contexts.values())
        assert service.admin is not None
        doc = request(service.admin.site, "GET", "/status.json").body
        assert service.runtime.balancers["c"].nonce.encode() in doc
    finally:
        service.stopService()


def test_admin_users_is_read_at_start(tmp_path: Path) -> None:
    users = tmp_path / "admin.htpasswd"
    users.write_bytes(b"carol:" + sha_hash(b"pw") + b"\n")
    reactor = MemoryReactorClock()
    service = ProxyService(reactor, parse(service_config(users=str(users)), "lb.ini"))
    service.privilegedStartService()
    try:
        assert service.admin is not None
        site = service.admin.site
        assert request(site, "GET", "/status.json").status == 401
        assert request(site, "GET", "/status.json", basic("carol", "pw")).status == 200
    finally:
        service.stopService()


def test_an_unusable_admin_users_file_stops_the_start(tmp_path: Path) -> None:
    users = tmp_path / "admin.htpasswd"
    users.write_text("alice:$apr1$xyz$0123456789abcdefghijkl\n")
    service = ProxyService(MemoryReactorClock(), parse(service_config(users=str(users)), "lb.ini"))
    with pytest.raises(StartError, match=r"^lb\.ini: admin_users: .*unsupported password hash"):
        service.privilegedStartService()


def test_public_api_is_pinned() -> None:
    import ajpbalancer.admin  # noqa: PLC0415

    assert sorted(ajpbalancer.admin.__all__) == sorted(
        [
            "MAX_FORM_BODY",
            "AdminListener",
            "AdminUsersError",
            "BalancerEdit",
            "EditError",
            "Htpasswd",
            "HtpasswdChecker",
            "MemberEdit",
            "ProxyMetrics",
            "Snapshot",
            "admin_site",
            "apply_balancer_edit",
            "apply_member_edit",
            "as_json",
            "parse_balancer_edit",
            "parse_member_edit",
            "render_page",
            "snapshot",
            "status_words",
        ]
    )
