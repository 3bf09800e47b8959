"""Differential tests: ajpbalancer against Apache httpd's mod_proxy_ajp, to the same Tomcat.

Apache 2.4 (``ProxyPass /app ajp://node1/app``) and ajpbalancer (``ProxyPass = /app
ajp://node1/app``) stand side by side in front of Tomcat node1, each with a plain and a
TLS frontend (the same key and certificate). The same client code (`exchange`, raw
request bytes from 127.0.0.9) sends the same request to both, and it is compared twice:

- as Tomcat saw it (``/app/echo``): method, URI, query, protocol, headers (names,
  values, order), remote address and port, local address and port, server name and
  port, scheme, secure flag, request attributes, body checksum;
- as it went on the wire: ``/raw`` on both proxies leads to a `RecordingContainer`, and
  the two FORWARD_REQUEST packets are decoded (with the test's own tables) and compared
  field by field, which also covers what Tomcat consumes without reporting it (method
  code, null ``remote_host``, ``server_name`` as sent, header codes, every attribute and
  their order: ``AJP_SSL_PROTOCOL``, ``AJP_REMOTE_PORT``, ``AJP_LOCAL_ADDR``, TLS ones).

Only what legitimately differs per connection is compared structurally: the frontend's
own port (each is compared with the port the client connected to), the client's port
(each with the client's own) and the TLS session id. Over TLS the client pins the
protocol (and for TLS 1.2 the cipher), and both servers must negotiate alike.

What this showed (Apache 2.4.71, Tomcat 10.1), besides the equal requests:

- Neither adds ``X-Forwarded-*`` over AJP; the client's own headers pass untouched,
  hop-by-hop ones included. Repeated request headers arrive joined with ``, `` under the
  first name's case (``X-A: 1`` twice is ``X-A: 1, 1``), from both.
- ``serverPort`` is the frontend's port when the Host field has none (HTTP/1.0 without
  Host: AJP's ``server_port``, the local port of the client connection), else Host's.
  ``serverName`` without Host is Apache's ``ServerName`` (here its listen address) and
  ajpbalancer's local address: equal here, and they would differ for an Apache whose
  ``ServerName`` is a host name (ajpbalancer has no such directive).
- Fixed in ajpbalancer (``members/_request.py``): ``server_name`` went as the client wrote
  Host; httpd sends it lower-cased without a trailing dot (``WWW.Example.org`` →
  ``www.example.org``), invisible to ``/app/echo`` as Tomcat prefers the Host header.
- Response side, deliberate (`test_response_framing_differs_as_documented`): Apache
  relays Tomcat's numeric reason phrase (``200 200``), drops Tomcat's Content-Length and
  re-frames chunked, and adds ``Server``; ajpbalancer regenerates the reason phrase
  (``200 OK``), keeps Tomcat's Content-Length once checked against the body, and sends no
  ``Server``.

Open differences (ajpbalancer bugs, marked ``xfail(strict=True)`` with the values seen, so
a fix shows up as XPASS and the marker must go):

- TLS session id: Apache sends mod_ssl's ``SSL_SESSION_ID`` (64 lower-case hex digits
  under TLS 1.3, or TLS 1.2 without tickets); ajpbalancer sends none.
- No ``Date`` in responses from AJP members (Tomcat sends none over AJP; Apache adds it).
- Request handling before the mapping: Apache accepts the absolute form for any host
  (refused here on purpose) and raw non-ASCII bytes in the query.

Fixed since (``FIXED_REQUESTS``): Apache decodes and re-encodes the path (``%65cho`` →
``echo``, ``%7e`` → ``~``, ``%c3%a9`` → ``%C3%A9``), merges slashes, matches ``ProxyPass``
on the decoded path (``/%61pp/echo`` is ``/app``), refuses ``%2F`` and ``%00`` (404), a
malformed escape or a path above the root (400) and a Host with an empty port (400);
ajpbalancer now does the same (``ajpbalancer/routing.py``).
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .ajphelpers import (
    CLIENT_ADDRESS,
    RecordingContainer,
    Reply,
    build_request,
    exchange,
    parse_forward_request,
    start_proxy,
)
from .apache import Apache, ApacheError, ajp_proxy
from .certs import make_cert
from .proxy import ProxyProcess
from .tomcat import Tomcat

SESSION_ID = "jakarta.servlet.request.ssl_session_id"
TLS_ATTRIBUTES = (
    "jakarta.servlet.request.cipher_suite",
    "jakarta.servlet.request.key_size",
    "org.apache.tomcat.util.net.secure_protocol_version",
)
TLS12_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
"""A TLS 1.2 suite both servers offer with `certs.make_cert`'s EC key."""

VOLATILE = ("connectionId", "requestId", "thread")
"""Echo fields that name Tomcat's own connection, thread or request counter."""

HOST = "{host}"
"""Placeholder for the Host value a client would send: the frontend's ``127.0.0.1:PORT``."""


# --- the servers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frontend:
    """One proxy's frontend as the client reaches it."""

    name: str
    port: int
    tls: ssl.SSLContext | None

    def send(self, request: bytes) -> Reply:
        """`request` with `HOST` replaced by this frontend's address, from `CLIENT_ADDRESS`."""
        data = request.replace(HOST.encode(), f"127.0.0.1:{self.port}".encode())
        return exchange("127.0.0.1", self.port, data, tls=self.tls)


@dataclass(frozen=True, slots=True)
class Servers:
    apache_plain: Apache
    apache_tls: Apache
    proxy_plain: ProxyProcess
    proxy_tls: ProxyProcess
    cert: Path
    recorder: RecordingContainer
    """Behind ``/raw`` on every frontend: records the FORWARD_REQUEST packets."""


RECORDER_ADDRESS = "127.0.0.7"


@pytest.fixture(scope="module")
def servers(tomcat_node1: Tomcat, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Apache and ajpbalancer, each plain and TLS, proxying ``/app`` to node1 over AJP and
    ``/raw`` to a `RecordingContainer`."""
    base = tmp_path_factory.mktemp("differential")
    key, cert = make_cert(base, "localhost", san_ip=["127.0.0.1"], san_dns=["localhost"])
    recorder = RecordingContainer(RECORDER_ADDRESS)
    started: list[Apache | ProxyProcess] = []
    try:
        apaches = []
        for name, tls in (("plain", False), ("tls", True)):
            apache = Apache(
                proxy_config=ajp_proxy(tomcat_node1.ajp_url) + ajp_proxy(recorder.url, "/raw"),
                tls=tls,
                cert=(key, cert) if tls else None,
                base_dir=base / f"apache-{name}",
            )
            started.append(apache)
            try:
                apaches.append(apache.start())
            except ApacheError as exc:
                pytest.fail(f"Apache httpd could not start: {exc}", pytrace=False)
        ssl_listen = f"ssl:{{port}}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        proxies = []
        for name, listen in (("plain", "tcp:{port}:interface=127.0.0.1"), ("tls", ssl_listen)):
            config = f"""
[frontend]
listen = {listen}
ProxyPass = /app {tomcat_node1.ajp_url}/app
            /raw {recorder.url}/raw
"""
            proxy = start_proxy(config, base / f"proxy-{name}")
            started.append(proxy)
            proxies.append(proxy)
        yield Servers(apaches[0], apaches[1], proxies[0], proxies[1], cert, recorder)
    finally:
        for server in reversed(started):
            if isinstance(server, Apache):
                server.close()
            else:
                server.stop()
        recorder.close()


def client_context(cert: Path, kind: str) -> ssl.SSLContext | None:
    """The client's TLS context for frontend `kind`, pinned so both servers agree."""
    if kind == "plain":
        return None
    context = ssl.create_default_context(cafile=str(cert))
    if kind.startswith("tls12"):
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(TLS12_CIPHER)
        if kind == "tls12-noticket":
            context.options |= ssl.OP_NO_TICKET  # the server then issues a session id
    else:
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


def frontends(servers: Servers, kind: str) -> tuple[Frontend, Frontend]:
    """(Apache, ajpbalancer) frontends of `kind`: plain, tls12, tls12-noticket or tls13."""
    context = client_context(servers.cert, kind)
    if context is None:
        return (
            Frontend("apache", servers.apache_plain.port, None),
            Frontend("ajpbalancer", servers.proxy_plain.port, None),
        )
    return (
        Frontend("apache", servers.apache_tls.port, context),
        Frontend("ajpbalancer", servers.proxy_tls.port, context),
    )


# --- comparing ----------------------------------------------------------------------------


def as_tomcat_saw_it(reply: Reply, frontend: Frontend) -> dict[str, Any]:
    """The echo of `reply`, made comparable across frontends.

    The frontend's port becomes ``<frontend-port>`` (as a number field and after ``:`` in
    strings), the client's port ``<client-port>``; Tomcat's connection, thread and request
    ids are dropped, and so is the TLS session id (see `test_tls_session_id_...`).
    Structural checks first: the client address is the real client's.
    """
    seen = reply.json()
    assert seen["thread"].startswith("ajp-"), seen["thread"]
    assert seen["remoteAddr"] == CLIENT_ADDRESS
    assert seen["remotePort"] == reply.client_port
    seen["remotePort"] = "<client-port>"
    for field in VOLATILE:
        seen.pop(field, None)
    seen["attributes"].pop(SESSION_ID, None)
    port = frontend.port
    for field in ("serverPort", "localPort"):
        if seen[field] == port:
            seen[field] = "<frontend-port>"
    text = json.dumps(seen)
    normalized: dict[str, Any] = json.loads(
        re.sub(rf":{port}\b", ":<frontend-port>", text),
    )
    return normalized


def both(servers: Servers, kind: str, request: bytes) -> tuple[Reply, Reply]:
    """The replies of Apache and of ajpbalancer to `request` (Apache first)."""
    apache, proxy = frontends(servers, kind)
    via_apache, via_proxy = apache.send(request), proxy.send(request)
    assert via_apache.cipher == via_proxy.cipher, "the client must negotiate alike with both"
    return via_apache, via_proxy


def same_request(servers: Servers, kind: str, request: bytes) -> dict[str, Any]:
    """Assert Tomcat saw `request` alike through both; return what it saw through Apache."""
    apache, proxy = frontends(servers, kind)
    via_apache, via_proxy = both(servers, kind, request)
    assert (via_apache.status, via_proxy.status) == (200, 200), (via_apache, via_proxy)
    seen_apache = as_tomcat_saw_it(via_apache, apache)
    seen_proxy = as_tomcat_saw_it(via_proxy, proxy)
    differences = {
        key: {"apache": seen_apache.get(key), "ajpbalancer": seen_proxy.get(key)}
        for key in sorted(set(seen_apache) | set(seen_proxy))
        if seen_apache.get(key) != seen_proxy.get(key)
    }
    assert differences == {}
    return seen_apache


# --- the requests -------------------------------------------------------------------------


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


BODY = bytes(range(256)) * 12
"""3 KiB of every byte value."""

REQUESTS: dict[str, bytes] = {
    "get-with-query": build_request(
        "GET",
        "/app/echo?a=1&b=%20x&c=&d",
        [("Host", HOST), ("User-Agent", "differential/1"), ("Accept", "*/*")],
    ),
    "repeated-headers": build_request(
        "GET",
        "/app/echo",
        [
            ("Host", HOST),
            ("X-A", "1"),
            ("Accept-Language", "en"),
            ("X-A", "1"),
            ("x-a", "2"),
            ("Accept-Language", "fr"),
            ("X-Empty", ""),
        ],
    ),
    "post-with-body": build_request(
        "POST",
        "/app/echo?form=1",
        [
            ("Host", HOST),
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(BODY))),
        ],
        BODY,
    ),
    "chunked-post": build_request(
        "POST",
        "/app/echo",
        [("Host", HOST), ("Transfer-Encoding", "chunked")],
        chunked(BODY),
    ),
    "expect-100-continue": build_request(
        "PUT",
        "/app/echo",
        [("Host", HOST), ("Expect", "100-continue"), ("Content-Length", str(len(BODY)))],
        BODY,
    ),
    "patch": build_request(
        "PATCH",
        "/app/echo?x=1",
        [("Host", HOST), ("Content-Type", "application/json"), ("Content-Length", "7")],
        b'{"a":1}',
    ),
    "webdav-method": build_request("PROPFIND", "/app/echo", [("Host", HOST), ("Depth", "1")]),
    "extension-method": build_request("FROB", "/app/echo", [("Host", HOST)]),
    "cookie": build_request(
        "GET",
        "/app/echo",
        [("Host", HOST), ("Cookie", "JSESSIONID=ABC123.node1; theme=dark"), ("Cookie2", "$1")],
    ),
    "authorization": build_request(
        "GET", "/app/echo", [("Host", HOST), ("Authorization", "Basic dXNlcjpwYXNz")]
    ),
    "host-with-port": build_request("GET", "/app/echo", [("Host", "www.example.org:8443")]),
    "host-without-port": build_request("GET", "/app/echo", [("Host", "WWW.Example.org")]),
    "host-trailing-dot": build_request("GET", "/app/echo", [("Host", "www.example.org.")]),
    "host-ipv6": build_request("GET", "/app/echo", [("Host", "[::1]:8080")]),
    "host-ipv6-upper": build_request("GET", "/app/echo", [("Host", "[FE80::1]")]),
    "http10-without-host": build_request("GET", "/app/echo?v=10", version="HTTP/1.0"),
    "coded-header-names": build_request(
        "GET",
        "/app/echo",
        [
            ("Host", HOST),
            ("Accept", "text/html"),
            ("Accept-Charset", "utf-8"),
            ("Accept-Encoding", "gzip"),
            ("Content-Type", "text/plain"),
            ("Pragma", "no-cache"),
            ("Referer", "http://example.org/"),
            ("User-Agent", "ua"),
            ("ACCEPT-language", "de"),
            ("X-Mixed-Case", "v"),
        ],
    ),
    "hop-by-hop-and-forwarded": build_request(
        "GET",
        "/app/echo",
        [
            ("Host", HOST),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "kept"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Upgrade", "websocket"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Host", "evil.example"),
        ],
    ),
    "dot-segments": build_request("GET", "/app/./echo/../echo/x", [("Host", HOST)]),
    "path-params-and-escapes": build_request(
        "GET", "/app/echo/a;p=1/%20b%3Fc%23d?q=%2F%3F&r=[x]", [("Host", HOST)]
    ),
    "path-spellings": build_request(
        "GET", "/app//echo/./%7e/x/../caf%c3%a9/a[b]%3bc%2B?q=%7e", [("Host", HOST)]
    ),
    "header-value-bytes": build_request(
        "GET", "/app/echo", [("Host", HOST), ("X-Sp", "a  b"), ("X-Latin", "caf\xe9")]
    ),
}

FRONTEND_KINDS = ("plain", "tls12", "tls13")


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("kind", FRONTEND_KINDS)
def test_tomcat_sees_the_same_request(servers: Servers, kind: str, name: str) -> None:
    """Through Apache and through ajpbalancer, Tomcat sees the same request."""
    same_request(servers, kind, REQUESTS[name])


def test_repeated_request_headers_are_joined_like_apache(servers: Servers) -> None:
    """``X-A: 1`` twice (and ``x-a: 2``) reach Tomcat as one ``X-A: 1, 1, 2``."""
    seen = same_request(servers, "plain", REQUESTS["repeated-headers"])
    assert ["X-A", "1, 1, 2"] in seen["headers"]
    assert ["accept-language", "en, fr"] in seen["headers"]
    assert [name.lower() for name, _ in seen["headers"]].count("x-a") == 1


def test_neither_adds_forwarded_headers_over_ajp(servers: Servers) -> None:
    """No ``X-Forwarded-*`` is added: the client's address travels in AJP's own fields."""
    seen = same_request(servers, "plain", REQUESTS["get-with-query"])
    assert [n for n, _ in seen["headers"] if n.lower().startswith("x-forwarded")] == []
    seen = same_request(servers, "plain", REQUESTS["hop-by-hop-and-forwarded"])
    assert ["X-Forwarded-For", "6.6.6.6"] in seen["headers"]
    assert ["X-Hop", "kept"] in seen["headers"]


@pytest.mark.parametrize("kind", FRONTEND_KINDS)
def test_server_port_is_the_frontend_port_without_host_port(servers: Servers, kind: str) -> None:
    """Without a port in Host, Tomcat's serverPort and localPort are the frontend's port."""
    seen = same_request(servers, kind, REQUESTS["http10-without-host"])
    assert seen["serverPort"] == seen["localPort"] == "<frontend-port>"
    assert seen["serverName"] == seen["localAddr"] == "127.0.0.1"
    seen = same_request(servers, kind, REQUESTS["host-with-port"])
    assert (seen["serverName"], seen["serverPort"]) == ("www.example.org", 8443)
    assert seen["localPort"] == "<frontend-port>"


@pytest.mark.parametrize("kind", ["tls12", "tls13"])
def test_tls_parameters_reach_tomcat_alike(servers: Servers, kind: str) -> None:
    """https, secure, and cipher/key size/protocol equal to what the client negotiated."""
    request = REQUESTS["get-with-query"]
    seen = same_request(servers, kind, request)
    apache, _ = frontends(servers, kind)
    cipher = apache.send(request).cipher
    assert cipher is not None
    name, protocol, bits = cipher
    if kind == "tls12":
        assert (name, protocol) == (TLS12_CIPHER, "TLSv1.2")
    else:
        assert protocol == "TLSv1.3"
    assert (seen["scheme"], seen["secure"]) == ("https", True)
    attributes = seen["attributes"]
    assert [attributes.get(a) for a in TLS_ATTRIBUTES] == [name, str(bits), protocol]
    assert seen["requestUrl"].startswith("https://127.0.0.1:<frontend-port>/")


@pytest.mark.parametrize("kind", ["tls12-noticket", "tls13"])
def test_tls_session_id_reaches_tomcat_as_apache_sends_it(servers: Servers, kind: str) -> None:
    """Both send the client's TLS session id in the same form (hex, same length and case).

    The values differ by nature (two TLS sessions), so only their form is compared.
    """
    via_apache, via_proxy = both(servers, kind, REQUESTS["get-with-query"])
    from_apache = via_apache.json()["attributes"].get(SESSION_ID)
    from_proxy = via_proxy.json()["attributes"].get(SESSION_ID)
    assert from_apache is not None and re.fullmatch(r"[0-9a-f]{64}", from_apache)
    assert from_proxy is not None, f"Apache sent {from_apache!r}, ajpbalancer nothing"
    assert re.fullmatch(r"[0-9a-f]{64}", from_proxy), from_proxy


# --- the FORWARD_REQUEST packet itself ---------------------------------------------------

BODYLESS = [
    name
    for name, request in REQUESTS.items()
    if b"Content-Length" not in request and b"Transfer-Encoding" not in request
]


def forwarded_packet(servers: Servers, frontend: Frontend, request: bytes) -> dict[str, Any]:
    """The FORWARD_REQUEST `frontend` sends for `request` to ``/raw``, made comparable.

    The frontend's port (``server_port``, and in Host) and the client's port
    (``AJP_REMOTE_PORT``) become placeholders, the TLS session id is set aside (see
    `test_tls_session_id_reaches_tomcat_as_apache_sends_it`).
    """
    servers.recorder.take()
    reply = frontend.send(request)
    assert reply.status == 200, reply
    [payload] = servers.recorder.take()
    fields = parse_forward_request(payload)
    if fields["server_port"] == frontend.port:
        fields["server_port"] = "<frontend-port>"
    for header in fields["headers"]:
        if header[1] is not None:
            header[1] = re.sub(rf":{frontend.port}\b", ":<frontend-port>", header[1])
    attributes = []
    for name, value in fields["attributes"]:
        if name == "ssl_session":
            continue
        client_port = name == "req_attribute:AJP_REMOTE_PORT" and value == str(reply.client_port)
        attributes.append([name, "<client-port>" if client_port else value])
    fields["attributes"] = attributes
    return fields


@pytest.mark.parametrize("name", BODYLESS)
@pytest.mark.parametrize("kind", FRONTEND_KINDS)
def test_forward_request_packet_is_the_same(servers: Servers, kind: str, name: str) -> None:
    """Field for field, the FORWARD_REQUEST ajpbalancer writes is the one Apache writes.

    This sees what Tomcat consumes without reporting: method code, ``remote_host``
    (null), ``server_name`` as sent, header codes and order, and every attribute in
    order (``AJP_REMOTE_PORT``, ``AJP_LOCAL_ADDR``, ``AJP_SSL_PROTOCOL``, TLS ones).
    """
    request = REQUESTS[name].replace(b" /app/", b" /raw/", 1)
    apache, proxy = frontends(servers, kind)
    from_apache = forwarded_packet(servers, apache, request)
    from_proxy = forwarded_packet(servers, proxy, request)
    differences = {
        key: {"apache": from_apache[key], "ajpbalancer": from_proxy[key]}
        for key in from_apache
        if from_apache[key] != from_proxy[key]
    }
    assert differences == {}


# --- open differences in request handling --------------------------------------------------


def _get(target: str, host: str = HOST) -> bytes:
    return build_request("GET", target, [("Host", host)])


OPEN_REQUESTS: dict[str, tuple[bytes, str]] = {
    "absolute-form": (
        _get("http://other.example:81/app/echo?z=1"),
        "Apache accepts the absolute form for another host than Host (serverName "
        "other.example, serverPort 81); ajpbalancer refuses it with 400 on purpose (no "
        "open proxy) and accepts only an authority equal to Host (absolute-form-own-host)",
    ),
    "raw-utf8-in-query": (
        _get("/app/echo?y=caf\xc3\xa9"),
        "Apache forwards raw non-ASCII bytes in the query; ajpbalancer answers 400 "
        "'invalid request target'",
    ),
}

# Differences found here and fixed since: each must now behave as Apache does.
FIXED_REQUESTS: dict[str, tuple[bytes, str]] = {
    "absolute-form-own-host": (
        _get(f"http://{HOST}/app/echo?z=1"),
        "Both accept an absolute-form target whose authority is the request's Host and "
        "forward /app/echo?z=1 (ajpbalancer answered 400 'request target must be a path')",
    ),
    "host-empty-port": (
        _get("/app/echo", host="example.org:"),
        "Apache answers 400 to 'Host: example.org:' (empty port); so does ajpbalancer now",
    ),
    "unreserved-escapes": (
        _get("/app/%65cho/%7e/x"),
        "Apache decodes unreserved escapes: Tomcat sees uri /app/echo/~/x (ajpbalancer "
        "passed /app/%65cho/%7e/x)",
    ),
    "lower-case-escapes": (
        _get("/app/echo/caf%c3%a9"),
        "Apache re-encodes in upper case: /app/echo/caf%C3%A9 (ajpbalancer passed %c3%a9)",
    ),
    "merged-slashes": (
        _get("/app//echo"),
        "Apache merges slashes (MergeSlashes on): uri /app/echo (ajpbalancer sent /app//echo)",
    ),
    "escaped-prefix": (
        _get("/%61pp/echo"),
        "Apache matches ProxyPass on the decoded path and serves /app/echo (ajpbalancer "
        "answered 404: no rule matched)",
    ),
    "encoded-slash": (
        _get("/app/echo/a%2Fb"),
        "Apache refuses %2F itself with 404 (AllowEncodedSlashes off); so does ajpbalancer "
        "now (it forwarded it and Tomcat answered 400)",
    ),
    "nul-escape": (
        _get("/app/echo/a%00b"),
        "Apache answers 404 to %00 in the path; so does ajpbalancer",
    ),
    "invalid-escape": (
        _get("/app/echo/a%zzb"),
        "Apache answers 400 to a malformed escape; so does ajpbalancer",
    ),
    "above-root": (
        _get("/app/../../app/echo"),
        "Apache answers 400 to a path climbing above the root; so does ajpbalancer",
    ),
    "encoded-reserved": (
        _get("/app/echo/a%3bb%3Dc%2Bd[e]"),
        "Apache decodes what it may send as is (; = +) and encodes the rest: "
        "/app/echo/a;b=c+d%5Be%5D",
    ),
}


@pytest.mark.parametrize(
    "name",
    [
        *(
            pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"OPEN: {reason}"))
            for name, (_, reason) in OPEN_REQUESTS.items()
        ),
        *FIXED_REQUESTS,
    ],
)
def test_request_is_handled_like_apache(servers: Servers, name: str) -> None:
    """The same request gets the same status, and Tomcat sees the same request."""
    request, _ = {**OPEN_REQUESTS, **FIXED_REQUESTS}[name]
    via_apache, via_proxy = both(servers, "plain", request)
    assert via_apache.status == via_proxy.status
    if via_apache.status == 200:
        same_request(servers, "plain", request)


# --- the response side ------------------------------------------------------------------

RESPONSE_FRAMING = {"content-length", "transfer-encoding", "date", "server"}


def test_response_framing_differs_as_documented(servers: Servers) -> None:
    """Deliberate response differences; every other field and the body are equal.

    Apache relays Tomcat's numeric reason phrase, drops Tomcat's Content-Length (the core
    re-frames the body chunked) and adds ``Server``; ajpbalancer regenerates the reason
    phrase, keeps a Content-Length it checked against the body, and adds no ``Server``.
    """
    via_apache, via_proxy = both(
        servers, "plain", build_request("GET", "/app/cookies?n=3", [("Host", HOST)])
    )
    assert (via_apache.status, via_apache.reason) == (200, "200")
    assert (via_proxy.status, via_proxy.reason) == (200, "OK")
    assert via_apache.header("Transfer-Encoding") == ["chunked"]
    assert via_apache.header("Content-Length") == []
    assert via_proxy.header("Transfer-Encoding") == []
    assert via_proxy.header("Content-Length") == [str(len(via_proxy.body))]
    assert via_apache.header("Server")[0].startswith("Apache/")
    assert via_proxy.header("Server") == []
    assert via_apache.body == via_proxy.body

    def rest(reply: Reply) -> list[tuple[str, str]]:
        return [(n, v) for n, v in reply.headers if n.lower() not in RESPONSE_FRAMING]

    assert rest(via_apache) == rest(via_proxy)
    assert len(via_proxy.header("Set-Cookie")) == 3


def test_head_response_framing_differs_as_documented(servers: Servers) -> None:
    """HEAD: no body from either; Apache sends no length at all, ajpbalancer Tomcat's."""
    via_apache, via_proxy = both(
        servers, "plain", build_request("HEAD", "/app/echo", [("Host", HOST)])
    )
    assert (via_apache.status, via_apache.body) == (200, b"")
    assert (via_proxy.status, via_proxy.body) == (200, b"")
    assert via_apache.header("Content-Length") == via_apache.header("Transfer-Encoding") == []
    assert int(via_proxy.header("Content-Length")[0]) > 0


def test_response_has_a_date_like_apache(servers: Servers) -> None:
    """Both answers carry a ``Date`` field."""
    via_apache, via_proxy = both(
        servers, "plain", build_request("GET", "/app/status?code=200", [("Host", HOST)])
    )
    assert len(via_apache.header("Date")) == 1
    assert len(via_proxy.header("Date")) == 1
