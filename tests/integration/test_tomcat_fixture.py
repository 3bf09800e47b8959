"""The Tomcat fixtures and the test webapp, proven against the real servers (no proxy).

Everything here talks to Tomcat directly with `http.client` or raw sockets, so that a
failure of a later proxy test can be trusted to be the proxy's.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .tomcat import AJP_CPING, AJP_CPONG, Tomcat

FIVE_MB = 5 * 1024 * 1024


def pattern_bytes(size: int) -> bytes:
    """What /app/download?size=N sends: byte i is i % 251."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def connect(node: Tomcat, **kwargs: Any) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(node.address, node.http_port, timeout=30, **kwargs)


def get(node: Tomcat, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    conn = connect(node)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def get_json(node: Tomcat, path: str) -> dict[str, Any]:
    resp, body = get(node, path)
    assert resp.status == 200, body
    assert resp.getheader("Content-Type") == "application/json"
    result: dict[str, Any] = json.loads(body)
    return result


@pytest.fixture(params=["node1", "node2"])
def node(request: pytest.FixtureRequest, tomcats: tuple[Tomcat, Tomcat]) -> Tomcat:
    """Each of the two session nodes in turn."""
    return tomcats[0] if request.param == "node1" else tomcats[1]


# --- the fixtures -------------------------------------------------------------------------


def test_nodes_share_ports_on_their_own_addresses(
    tomcat_node1: Tomcat, tomcat_node2: Tomcat
) -> None:
    assert (tomcat_node1.address, tomcat_node2.address) == ("127.0.0.2", "127.0.0.3")
    assert tomcat_node1.http_port == tomcat_node2.http_port
    assert tomcat_node1.ajp_port == tomcat_node2.ajp_port
    assert tomcat_node1.http_url == f"http://127.0.0.2:{tomcat_node1.http_port}"
    assert tomcat_node2.ajp_url == f"ajp://127.0.0.3:{tomcat_node2.ajp_port}"
    assert tomcat_node1.running and tomcat_node2.running
    assert tomcat_node1.base != tomcat_node2.base


def test_root_answers_node_name(node: Tomcat) -> None:
    resp, body = get(node, "/app/")
    assert resp.status == 200
    assert body == f"{node.name}\n".encode()
    assert resp.getheader("X-Node") == node.jvm_route


def test_every_response_carries_x_node(node: Tomcat) -> None:
    """Even a 404 from the default servlet, and a redirect."""
    resp, _ = get(node, "/app/no-such-thing")
    assert resp.status == 404
    assert resp.getheader("X-Node") == node.name
    resp, _ = get(node, "/app/redirect")
    assert resp.getheader("X-Node") == node.name


# --- echo ---------------------------------------------------------------------------------


def test_echo_reports_client_address_query_and_repeated_headers(node: Tomcat) -> None:
    conn = connect(node, source_address=("127.0.0.9", 0))
    try:
        conn.putrequest("GET", "/app/echo?a=1&b=%20x&a=2", skip_accept_encoding=True)
        conn.putheader("X-Rep", "one")
        conn.putheader("X-Other", "between")
        conn.putheader("X-Rep", "two")
        conn.endheaders()
        resp = conn.getresponse()
        echo = json.loads(resp.read())
        local_port = conn.sock.getsockname()[1]
    finally:
        conn.close()
    assert resp.status == 200
    assert echo["node"] == node.name
    assert echo["method"] == "GET"
    assert echo["uri"] == "/app/echo"
    assert echo["query"] == "a=1&b=%20x&a=2"
    assert echo["remoteAddr"] == "127.0.0.9"
    assert echo["remotePort"] == local_port
    assert echo["localAddr"] == node.address
    assert echo["localPort"] == node.http_port
    assert echo["scheme"] == "http"
    assert echo["secure"] is False
    assert echo["protocol"] == "HTTP/1.1"
    headers = [(name.lower(), value) for name, value in echo["headers"]]
    assert [v for n, v in headers if n == "x-rep"] == ["one", "two"]
    assert ("x-other", "between") in headers
    assert ("host", f"{node.address}:{node.http_port}") in headers
    assert echo["bodyLength"] == 0
    assert echo["bodySha256"] == hashlib.sha256(b"").hexdigest()
    assert echo["sessionId"] is None


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE", "OPTIONS", "FROBNICATE"])
def test_echo_accepts_any_method_with_body(tomcat_node1: Tomcat, method: str) -> None:
    body = b'{"op": "replace"}'
    conn = connect(tomcat_node1)
    try:
        conn.request(method, "/app/echo", body=body, headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        echo = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200
    assert echo["method"] == method
    assert echo["bodyLength"] == len(body)
    assert echo["bodySha256"] == hashlib.sha256(body).hexdigest()


def test_echo_json_escapes_awkward_header_values(tomcat_node1: Tomcat) -> None:
    value = 'q"uote \\ back\ttab caf\xe9'
    conn = connect(tomcat_node1)
    try:
        conn.request("GET", "/app/echo", headers={"X-Odd": value})
        echo = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert ["x-odd", value] in [[n.lower(), v] for n, v in echo["headers"]]


# --- bodies -------------------------------------------------------------------------------


def test_download_5mb_has_the_pattern_and_content_length(node: Tomcat) -> None:
    resp, body = get(node, f"/app/download?size={FIVE_MB}")
    assert resp.status == 200
    assert resp.getheader("Content-Length") == str(FIVE_MB)
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert len(body) == FIVE_MB
    assert body == pattern_bytes(FIVE_MB)


def test_download_chunked_is_chunked(tomcat_node1: Tomcat) -> None:
    size = 200_000
    resp, body = get(tomcat_node1, f"/app/download?size={size}&chunked=1")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Length") is None
    assert body == pattern_bytes(size)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_5mb_reports_length_and_sha256(node: Tomcat, framing: str) -> None:
    data = pattern_bytes(FIVE_MB)[::-1]
    conn = connect(node)
    try:
        if framing == "chunked":
            conn.request("POST", "/app/upload", body=_chunks(data, 100_000))
        else:
            conn.request("PUT", "/app/upload", body=data)
        resp = conn.getresponse()
        answer = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200
    assert answer["node"] == node.name
    assert answer["bodyLength"] == FIVE_MB
    assert answer["bodySha256"] == hashlib.sha256(data).hexdigest()
    if framing == "chunked":
        assert answer["contentLength"] is None
        assert answer["transferEncoding"] == "chunked"
    else:
        assert answer["contentLength"] == str(FIVE_MB)
        assert answer["transferEncoding"] is None


# --- response headers ---------------------------------------------------------------------


def test_cookies_are_separate_set_cookie_headers(tomcat_node1: Tomcat) -> None:
    resp, body = get(tomcat_node1, "/app/cookies?n=3")
    assert resp.status == 200
    assert json.loads(body) == {"node": "node1", "n": 3}
    assert resp.headers.get_all("Set-Cookie") == [
        "c1=v1; Path=/app",
        "c2=v2; Path=/app",
        "c3=v3; Path=/app",
    ]
    assert resp.headers.get_all("X-Multi") == ["a", "b"]


def test_headers_servlet_adds_given_headers(tomcat_node1: Tomcat) -> None:
    resp, body = get(tomcat_node1, "/app/headers?set=X-A:1&set=X-B:two%20words&set=X-A:3")
    assert resp.headers.get_all("X-A") == ["1", "3"]
    assert resp.getheader("X-B") == "two words"
    assert json.loads(body)["set"] == [["X-A", "1"], ["X-B", "two words"], ["X-A", "3"]]


def test_session_id_carries_jvm_route(node: Tomcat) -> None:
    resp, body = get(node, "/app/session")
    answer = json.loads(body)
    cookie = resp.getheader("Set-Cookie")
    assert cookie is not None
    assert cookie.startswith("JSESSIONID=")
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert session_id.endswith(f".{node.jvm_route}")
    assert answer == {
        "node": node.name,
        "sessionId": session_id,
        "counter": 1,
        "encodedUrl": f"/app/session;jsessionid={session_id}",
    }
    conn = connect(node)
    try:
        conn.request("GET", "/app/session", headers={"Cookie": f"JSESSIONID={session_id}"})
        again = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert again["counter"] == 2
    assert again["sessionId"] == session_id


def test_redirect_location_is_absolute_internal_url(tomcat_node1: Tomcat) -> None:
    resp, _ = get(tomcat_node1, "/app/redirect?to=/app/echo%3Fx%3D1")
    assert resp.status == 302
    assert resp.getheader("Location") == f"{tomcat_node1.http_url}/app/echo?x=1"


@pytest.mark.parametrize("code", [201, 404, 503])
def test_status_with_body(tomcat_node1: Tomcat, code: int) -> None:
    resp, body = get(tomcat_node1, f"/app/status?code={code}")
    assert resp.status == code
    assert json.loads(body) == {"node": "node1", "code": code}


@pytest.mark.parametrize("code", [204, 304])
def test_status_without_body(tomcat_node1: Tomcat, code: int) -> None:
    resp, body = get(tomcat_node1, f"/app/status?code={code}")
    assert resp.status == code
    assert body == b""


def test_slow_waits_before_answering(tomcat_node1: Tomcat) -> None:
    assert get_json(tomcat_node1, "/app/slow?ms=300") == {"node": "node1", "slept": 300}


# --- connections --------------------------------------------------------------------------


def test_keep_alive_requests_share_one_connection(node: Tomcat) -> None:
    """Same remote port in echo and in the access log, one connection id for both."""
    marker = f"ka-{node.name}"
    conn = connect(node)
    try:
        echoes = []
        for i in range(2):
            conn.request("GET", f"/app/echo?{marker}={i}")
            resp = conn.getresponse()
            assert resp.getheader("Connection") is None  # no close: kept alive
            echoes.append(json.loads(resp.read()))
        client_port = conn.sock.getsockname()[1]
    finally:
        conn.close()
    assert echoes[0]["remotePort"] == echoes[1]["remotePort"] == client_port
    assert echoes[0]["connectionId"] == echoes[1]["connectionId"]

    lines = node.access_log_lines(min_count=2, path_contains=marker)
    assert [e.path for e in lines] == [f"/app/echo?{marker}=0", f"/app/echo?{marker}=1"]
    assert {e.remote_port for e in lines} == {client_port}
    assert {e.connection_id for e in lines} == {echoes[0]["connectionId"]}
    assert all(e.method == "GET" and e.status == 200 for e in lines)
    assert all(e.local_port == node.http_port and e.connector == "http" for e in lines)


# --- AJP ----------------------------------------------------------------------------------


def test_ajp_port_answers_cping_with_cpong(node: Tomcat) -> None:
    with socket.create_connection((node.address, node.ajp_port), timeout=5) as sock:
        for _ in range(2):  # the connection stays usable after a CPING
            sock.sendall(AJP_CPING)
            assert _recv_exactly(sock, len(AJP_CPONG)) == AJP_CPONG


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def _ajp_string(value: str | None) -> bytes:
    if value is None:
        return b"\xff\xff"
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw + b"\x00"


def _ajp_forward_request(
    method_code: int,
    uri: str,
    headers: list[tuple[str, str]],
    attributes: list[tuple[int, bytes]],
    *,
    is_ssl: bool,
) -> bytes:
    """A FORWARD_REQUEST packet, as mod_proxy_ajp builds it (headers by name)."""
    payload = bytes([2, method_code])
    for text in ("HTTP/1.1", uri, "203.0.113.7", "client.example", "www.example.com"):
        payload += _ajp_string(text)
    payload += struct.pack(">H?H", 443 if is_ssl else 80, is_ssl, len(headers))
    for name, value in headers:
        if name.lower() == "content-length":
            payload += b"\xa0\x08"
        else:
            payload += _ajp_string(name)
        payload += _ajp_string(value)
    for code, encoded in attributes:
        payload += bytes([code]) + encoded
    payload += b"\xff"
    return b"\x12\x34" + struct.pack(">H", len(payload)) + payload


def _ajp_read_response(sock: socket.socket) -> tuple[int, list[tuple[str, str]], bytes]:
    """Read SEND_HEADERS, body chunks and END_RESPONSE; status, headers, body."""
    names = {0xA001: "Content-Type", 0xA003: "Content-Length", 0xA007: "Set-Cookie"}
    status, headers, body = 0, [], b""
    while True:
        magic, length = struct.unpack(">2sH", _recv_exactly(sock, 4))
        assert magic == b"AB"
        packet = _recv_exactly(sock, length)
        kind = packet[0]
        if kind == 3:  # SEND_BODY_CHUNK
            (size,) = struct.unpack(">H", packet[1:3])
            body += packet[3 : 3 + size]
        elif kind == 4:  # SEND_HEADERS
            status, msg_len = struct.unpack(">HH", packet[1:5])
            pos = 5 + msg_len + 1
            (count,) = struct.unpack(">H", packet[pos : pos + 2])
            pos += 2
            for _ in range(count):
                (code,) = struct.unpack(">H", packet[pos : pos + 2])
                if code >= 0xA000:
                    name = names.get(code, hex(code))
                    pos += 2
                else:
                    name = packet[pos + 2 : pos + 2 + code].decode()
                    pos += 2 + code + 1
                (size,) = struct.unpack(">H", packet[pos : pos + 2])
                headers.append((name, packet[pos + 2 : pos + 2 + size].decode()))
                pos += 2 + size + 1
        elif kind == 5:  # END_RESPONSE
            return status, headers, body
        elif kind == 6:  # GET_BODY_CHUNK: no more body
            sock.sendall(b"\x12\x34\x00\x00")
        else:
            raise AssertionError(f"unexpected AJP packet type {kind}")


def _ajp_call(sock: socket.socket, packet: bytes, body: bytes = b"") -> tuple[int, Any]:
    """Send one request (and its body, in one packet); status and the decoded JSON body."""
    sock.sendall(packet)
    if body:
        sock.sendall(b"\x12\x34" + struct.pack(">HH", len(body) + 2, len(body)) + body)
    status, headers, raw = _ajp_read_response(sock)
    assert status >= 400 or ("X-Node" in dict(headers)), headers
    return status, json.loads(raw) if raw.startswith(b"{") else raw


def test_ajp_forward_request_reaches_echo_with_attributes(node: Tomcat) -> None:
    """Request attributes, remote user, TLS data and client address cross the connector."""
    body = b"hello over ajp"
    marker = f"ajp-{node.name}"
    packet = _ajp_forward_request(
        4,  # POST
        "/app/echo",
        [("Content-Length", str(len(body))), ("Host", "www.example.com"), ("X-Rep", "1")],
        [
            (0x05, _ajp_string(f"{marker}=1")),  # query_string
            (0x03, _ajp_string("alice")),  # remote_user
            (0x04, _ajp_string("Basic")),  # auth_type
            (0x08, _ajp_string("TLS_AES_128_GCM_SHA256")),  # ssl_cipher
            (0x0B, struct.pack(">H", 128)),  # ssl_key_size: an integer, not a string
            (0x0A, _ajp_string("AJP_REMOTE_PORT") + _ajp_string("54321")),
            (0x0A, _ajp_string("ajpb.custom") + _ajp_string("custom value")),
        ],
        is_ssl=True,
    )
    with socket.create_connection((node.address, node.ajp_port), timeout=10) as sock:
        status, echo = _ajp_call(sock, packet, body)
        status2, echo2 = _ajp_call(sock, packet, body)  # same AJP connection, reused
    assert status == status2 == 200
    assert echo["method"] == "POST"
    assert echo["query"] == f"{marker}=1"
    assert echo["remoteAddr"] == "203.0.113.7"
    assert echo["remotePort"] == 54321
    assert echo["remoteUser"] == "alice"
    assert echo["authType"] == "Basic"
    assert echo["scheme"] == "https"
    assert echo["secure"] is True
    assert echo["serverName"] == "www.example.com"
    assert echo["serverPort"] == 443
    assert echo["requestUrl"] == "https://www.example.com/app/echo"
    assert echo["attributes"]["ajpb.custom"] == "custom value"
    assert echo["attributes"]["jakarta.servlet.request.cipher_suite"] == "TLS_AES_128_GCM_SHA256"
    assert echo["attributes"]["jakarta.servlet.request.key_size"] == "128"
    assert ["X-Rep", "1"] in echo["headers"]
    assert echo["bodyLength"] == len(body)
    assert echo["bodySha256"] == hashlib.sha256(body).hexdigest()
    assert echo2["connectionId"] == echo["connectionId"]
    lines = node.access_log_lines(min_count=2, path_contains=marker)
    assert [e.connection for e in lines] == [("ajp", echo["connectionId"])] * 2
    assert {e.remote_port for e in lines} == {54321}


# --- Tomcat lifecycle (an extra node of this test's own) -----------------------------------


def test_secret_packet_size_pause_kill_and_restart(
    tomcat_factory: Callable[..., list[Tomcat]],
) -> None:
    """ajp_secret and ajp_packet_size reach server.xml; pause, kill and start again work."""
    (node,) = tomcat_factory({"node3": "127.0.0.4"}, ajp_secret="s3cret", ajp_packet_size=65536)
    big = [("X-Big", "b" * 30000)]  # a forward request over 8 KiB: needs packetSize 65536
    secret = [(0x0C, _ajp_string("s3cret"))]
    with socket.create_connection((node.address, node.ajp_port), timeout=10) as sock:
        status, echo = _ajp_call(
            sock, _ajp_forward_request(2, "/app/echo", big, secret, is_ssl=False)
        )
    assert status == 200
    assert ["X-Big", "b" * 30000] in echo["headers"]
    with socket.create_connection((node.address, node.ajp_port), timeout=10) as sock:
        status, _ = _ajp_call(sock, _ajp_forward_request(2, "/app/echo", [], [], is_ssl=False))
    assert status == 403  # no secret

    node.pause()
    assert node.paused
    conn = http.client.HTTPConnection(node.address, node.http_port, timeout=0.5)
    with pytest.raises(TimeoutError):  # the kernel accepts, the frozen JVM never answers
        conn.request("GET", "/app/")
        conn.getresponse()
    conn.close()
    node.resume()
    assert get(node, "/app/")[1] == b"node3\n"

    node.kill()
    assert not node.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((node.address, node.http_port), timeout=2).close()
    node.start()
    assert get(node, "/app/")[1] == b"node3\n"
    node.stop()
    assert not node.running
