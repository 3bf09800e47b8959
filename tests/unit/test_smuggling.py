"""Request smuggling and hygiene shapes: each is refused before anything reaches a member.

``SHAPES`` is the table: the request bytes (sent in one piece, head and body together),
the status the client gets and whether the connection is then closed. Through the
in-memory proxy each test proves that no member connection was even attempted, so no
byte of the request can have reached one. The same table runs against the real process
in front of Tomcat over HTTP and AJP in ``tests/integration/test_smuggling_members.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.unit.proxyharness import Harness, response


@dataclass(frozen=True)
class Shape:
    request: bytes
    status: int
    closes: bool = True


def post(fields: bytes, body: bytes = b"", target: bytes = b"/app/smuggled") -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n" + body


def get(fields: bytes = b"", line: bytes = b"GET /app/smuggled HTTP/1.1") -> bytes:
    return line + b"\r\n" + fields + b"\r\n"


CHUNKED = b"Transfer-Encoding: chunked\r\n"
HOST = b"Host: x\r\n"

SHAPES: dict[str, Shape] = {
    # Content-Length and Transfer-Encoding together, in either order (CL.TE / TE.CL).
    "cl-and-te": Shape(post(b"Content-Length: 4\r\n" + CHUNKED, b"0\r\n\r\n"), 400),
    "te-and-cl": Shape(post(CHUNKED + b"Content-Length: 4\r\n", b"0\r\n\r\n"), 400),
    # Transfer-Encoding other than one final chunked.
    "te-gzip": Shape(post(b"Transfer-Encoding: gzip\r\n", b"0\r\n\r\n"), 400),
    "te-identity": Shape(post(b"Transfer-Encoding: identity\r\n", b"x"), 400),
    "te-chunked-gzip": Shape(post(b"Transfer-Encoding: chunked, gzip\r\n"), 400),
    "te-gzip-chunked": Shape(post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501),
    "te-chunked-twice": Shape(post(b"Transfer-Encoding: chunked, chunked\r\n"), 400),
    "te-two-fields": Shape(post(CHUNKED + CHUNKED, b"0\r\n\r\n"), 400),
    "te-empty": Shape(post(b"Transfer-Encoding: \r\n"), 400),
    "te-chunked-suffix": Shape(post(b"Transfer-Encoding: xchunked\r\n"), 400),
    "te-space-before-colon": Shape(post(b"Transfer-Encoding : chunked\r\n"), 400),
    "te-in-http10": Shape(
        CHUNKED.join([b"POST /app/smuggled HTTP/1.0\r\n", b"\r\n0\r\n\r\n"]),
        400,
    ),
    # Content-Length duplicated or malformed.
    "cl-two-different": Shape(post(b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"), 400),
    "cl-list-different": Shape(post(b"Content-Length: 3, 4\r\n", b"abcd"), 400),
    "cl-plus": Shape(post(b"Content-Length: +3\r\n", b"abc"), 400),
    "cl-minus": Shape(post(b"Content-Length: -3\r\n", b"abc"), 400),
    "cl-hex": Shape(post(b"Content-Length: 0x3\r\n", b"abc"), 400),
    "cl-decimal-point": Shape(post(b"Content-Length: 3.0\r\n", b"abc"), 400),
    "cl-overflow": Shape(post(b"Content-Length: 99999999999999999999\r\n", b"abc"), 400),
    "cl-inner-space": Shape(post(b"Content-Length: 1 2\r\n", b"abc"), 400),
    "cl-empty": Shape(post(b"Content-Length: \r\n", b"abc"), 400),
    # Equal Content-Lengths repeated or listed, or with an empty element: Apache refuses them.
    "cl-two-equal": Shape(post(b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"), 400),
    "cl-list-equal": Shape(post(b"Content-Length: 3, 3\r\n", b"abc"), 400),
    "cl-and-empty": Shape(post(b"Content-Length: 3\r\nContent-Length:\r\n", b"abc"), 400),
    "cl-trailing-comma": Shape(post(b"Content-Length: 3,\r\n", b"abc"), 400),
    "cl-leading-comma": Shape(post(b"Content-Length: ,3\r\n", b"abc"), 400),
    "te-and-empty-te": Shape(post(CHUNKED + b"Transfer-Encoding:\r\n", b"0\r\n\r\n"), 400),
    "te-trailing-comma": Shape(post(b"Transfer-Encoding: chunked,\r\n", b"0\r\n\r\n"), 400),
    # Bad chunk sizes and chunk extensions (the body comes with the head).
    "chunk-size-0x": Shape(post(CHUNKED, b"0x3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk-size-negative": Shape(post(CHUNKED, b"-3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk-size-not-hex": Shape(post(CHUNKED, b"g\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk-size-empty": Shape(post(CHUNKED, b"\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk-size-overflow": Shape(post(CHUNKED, b"1" + b"0" * 16 + b"\r\nabc\r\n"), 400),
    "chunk-size-bare-lf": Shape(post(CHUNKED, b"3\nabc\r\n0\r\n\r\n"), 400),
    "chunk-ext-ctl": Shape(post(CHUNKED, b"3;a=\x01\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk-ext-bare-lf": Shape(post(CHUNKED, b"3;a\nb\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk-ext-unclosed-quote": Shape(post(CHUNKED, b'3;a="b\r\nabc\r\n0\r\n\r\n'), 400),
    "chunk-data-too-long": Shape(post(CHUNKED, b"3\r\nabcd\r\n0\r\n\r\n"), 400),
    "chunk-data-no-crlf": Shape(post(CHUNKED, b"3\r\nabc0\r\n\r\n"), 400),
    "chunk-trailer-obs-fold": Shape(post(CHUNKED, b"0\r\nT: a\r\n b\r\n\r\n"), 400),
    "chunk-trailer-nul": Shape(post(CHUNKED, b"0\r\nX: a\x00b\r\n\r\n"), 400),
    "chunk-trailer-bad-name": Shape(post(CHUNKED, b"0\r\nX Y: 1\r\n\r\n"), 400),
    # Bare LF or CR as line ends, obs-fold.
    "bare-lf-head": Shape(b"GET /app/smuggled HTTP/1.1\nHost: x\n\n", 400),
    "bare-lf-one-line": Shape(b"GET /app/smuggled HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
    "bare-cr-in-value": Shape(get(HOST + b"X: a\rb\r\n"), 400),
    "obs-fold": Shape(get(HOST + b"X: a\r\n b\r\n"), 400),
    "obs-fold-tab": Shape(get(HOST + b"X: a\r\n\tb\r\n"), 400),
    "leading-space-first-field": Shape(b"GET /app/smuggled HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    # Invalid bytes in field names and values.
    "name-space": Shape(get(HOST + b"X Y: 1\r\n"), 400),
    "name-nul": Shape(get(HOST + b"X\x00Y: 1\r\n"), 400),
    "name-separator": Shape(get(HOST + b"X(Y): 1\r\n"), 400),
    "name-empty": Shape(get(HOST + b": 1\r\n"), 400),
    "name-no-colon": Shape(get(HOST + b"XY\r\n"), 400),
    "name-non-ascii": Shape(get(HOST + b"X\xc3\xa9: 1\r\n"), 400),
    "value-nul": Shape(get(HOST + b"X: a\x00b\r\n"), 400),
    "value-del": Shape(get(HOST + b"X: a\x7fb\r\n"), 400),
    "value-ctl": Shape(get(HOST + b"X: a\x1bb\r\n"), 400),
    # Connection options are tokens (field names); anything else is refused.
    "connection-non-token": Shape(get(HOST + b"Connection: a/b\r\n"), 400),
    # Host: several, missing, malformed.
    "host-twice": Shape(get(b"Host: x\r\nHost: y\r\n"), 400),
    "host-twice-same": Shape(get(b"Host: x\r\nHost: x\r\n"), 400),
    "host-missing": Shape(get(), 400),
    "host-space": Shape(get(b"Host: a b\r\n"), 400),
    "host-userinfo": Shape(get(b"Host: u@x\r\n"), 400),
    "host-empty-port": Shape(get(b"Host: x:\r\n"), 400),
    # Request-targets with CTL or space, fragments, other forms.
    "target-ctl": Shape(get(HOST, b"GET /app/smuggled\x01b HTTP/1.1"), 400),
    "target-tab": Shape(get(HOST, b"GET /app/smuggled\tb HTTP/1.1"), 400),
    "target-space": Shape(get(HOST, b"GET /app/smuggled b HTTP/1.1"), 400),
    "target-del": Shape(get(HOST, b"GET /app/smuggled\x7fb HTTP/1.1"), 400),
    "target-fragment": Shape(get(HOST, b"GET /app/smuggled#b HTTP/1.1"), 400),
    "target-non-ascii": Shape(get(HOST, b"GET /app/smuggled-caf\xc3\xa9 HTTP/1.1"), 400),
    "target-absolute-other-host": Shape(
        get(HOST, b"GET http://evil.example/app/smuggled HTTP/1.1"), 400
    ),
    "target-absolute-other-port": Shape(get(HOST, b"GET http://x:8081/app/smuggled HTTP/1.1"), 400),
    "target-absolute-userinfo": Shape(get(HOST, b"GET http://u@x/app/smuggled HTTP/1.1"), 400),
    "target-absolute-ftp": Shape(get(HOST, b"GET ftp://x/app/smuggled HTTP/1.1"), 400),
    "target-authority-form": Shape(get(HOST, b"GET x:80 HTTP/1.1"), 400),
    "target-asterisk-get": Shape(get(HOST, b"GET * HTTP/1.1"), 400),
    "target-relative": Shape(get(HOST, b"GET app/x HTTP/1.1"), 400),
    # Request lines of other protocols or malformed.
    "connect": Shape(get(b"Host: x:443\r\n", b"CONNECT x:443 HTTP/1.1"), 405),
    "http2-preface": Shape(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    "http09": Shape(b"GET /app/smuggled\r\n", 400),
    "http12": Shape(get(HOST, b"GET /app/smuggled HTTP/1.2"), 505),
    "version-lower-case": Shape(get(HOST, b"GET /app/smuggled http/1.1"), 400),
    "line-two-spaces": Shape(get(HOST, b"GET  /app/smuggled HTTP/1.1"), 400),
    "line-trailing-space": Shape(get(HOST, b"GET /app/smuggled HTTP/1.1 "), 400),
    "method-separator": Shape(get(HOST, b"G(T /app/smuggled HTTP/1.1"), 400),
    # Refused by the exchange before a member is chosen: the framing is fine, kept open.
    "expect-unknown": Shape(get(HOST + b"Expect: teapot\r\n"), 417, closes=False),
}


def status_of(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    return int(data[9:12])


@pytest.mark.parametrize("name", list(SHAPES))
def test_shape_is_refused_and_reaches_no_member(name: str) -> None:
    shape = SHAPES[name]
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(shape.request)
    assert status_of(client.value()) == shape.status
    assert client.closed is shape.closes
    assert h.reactor.tcpClients == []


@pytest.mark.parametrize("name", list(SHAPES))
def test_shape_sent_byte_by_byte_is_refused_alike(name: str) -> None:
    """Splitting the request at every byte changes nothing (no state leaks across reads)."""
    shape = SHAPES[name]
    h = Harness()
    proto, client = h.client()
    for i in range(len(shape.request)):
        if client.closed:
            break
        proto.dataReceived(shape.request[i : i + 1])
    if name.startswith("chunk-") or name in ("te-gzip", "te-identity", "te-gzip-chunked"):
        # A body arriving after its head: the head may have gone to a member first; the
        # request there is aborted (see test_bad_chunk_after_the_head_aborts_the_member).
        assert status_of(client.value()) == shape.status
        return
    assert status_of(client.value()) == shape.status
    assert h.reactor.tcpClients == []


def test_bare_lf_is_refused_before_the_head_is_complete() -> None:
    """A client ending lines with LF alone gets 400 at once, not after the header timeout."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"GET /app/smuggled HTTP/1.1\nHost: x\n")
    assert status_of(client.value()) == 400
    assert client.closed


def test_http09_request_is_refused_at_once() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"GET /\r\n")
    assert status_of(client.value()) == 400
    assert client.closed


def test_bad_chunk_after_the_head_aborts_the_member_request() -> None:
    """Framing that goes wrong once the body streams: 400 and the member request aborted."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(post(CHUNKED))
    member = h.accept_member()
    proto.dataReceived(b"zz\r\n")
    assert status_of(client.value()) == 400
    assert client.closed
    assert member.transport.aborted


def test_absolute_form_for_the_requests_own_host_is_forwarded_in_origin_form() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(
        get(b"Host: www.example\r\n", b"GET http://WWW.example:80/app/a?q=1 HTTP/1.1")
    )
    member = h.accept_member()
    assert member.sent().startswith(b"GET /app/a?q=1 HTTP/1.1\r\nHost: 127.0.0.3:8080\r\n")


def test_absolute_form_without_host_in_http10_takes_its_authority_as_host() -> None:
    h = Harness()
    proto, _client = h.client()
    proto.dataReceived(b"GET http://www.example/app/a HTTP/1.0\r\n\r\n")
    member = h.accept_member()
    assert b"X-Forwarded-Host: www.example\r\n" in member.sent()


def test_options_asterisk_is_answered_by_the_proxy_as_apache_does() -> None:
    """httpd 2.4.71 answers ``OPTIONS *`` 200 with an empty body and no Allow."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(get(HOST, b"OPTIONS * HTTP/1.1"))
    data = client.value()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 0\r\n" in data
    assert b"Allow" not in data
    assert not client.closed
    assert h.reactor.tcpClients == []
    client.clear()
    proto.dataReceived(get(HOST))
    h.accept_member().reply(response())
    assert client.value().startswith(b"HTTP/1.1 200 OK")


def test_connect_answer_names_the_allowed_methods() -> None:
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(get(b"Host: x:443\r\n", b"CONNECT x:443 HTTP/1.1"))
    assert b"\r\nAllow: GET, HEAD, POST" in client.value()


@pytest.mark.parametrize("name", [n for n, s in SHAPES.items() if s.closes])
def test_shape_pipelined_after_a_good_request_is_refused_alike(name: str) -> None:
    """After a served keep-alive request the next one is parsed as strictly, and answered."""
    shape = SHAPES[name]
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(get(HOST))
    member = h.accept_member()
    member.sent()
    member.reply(response())
    client.clear()
    proto.dataReceived(shape.request)
    assert status_of(client.value()) == shape.status
    assert client.closed
    assert member.sent() == b""
    assert len(h.reactor.tcpClients) == 1
