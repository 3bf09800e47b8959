"""What a request head must satisfy before it is served: the Host field and the form of
the request target (RFC 9112 §3.2-3.3), and the early checks of a head still arriving."""

from __future__ import annotations

import re

from ajpbalancer.h1._errors import HTTPProtocolError
from ajpbalancer.h1._head import HeadLimits, RequestHead, parse_request_line

# RFC 9110 §7.2 Host: uri-host [ ":" port ]: a reg-name (unreserved, pct-encoded,
# sub-delims) or an IP literal in brackets; a ":" must be followed by a port (Apache
# answers 400 to "Host: example.org:", as here).
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{1,5})?")
# RFC 9112 §3.2.2 absolute-form; the authority must be this request's Host (no open proxy).
_ABSOLUTE = re.compile(rb"(?i:(https?)://)([^/?@]*)([/?].*)?")
_BARE_LF = re.compile(rb"(?<!\r)\n|\r(?!\n)")


class PartialHead:
    """Checks of one request head while it arrives, each byte looked at once."""

    __slots__ = ("_limits", "_line_count", "_line_start", "_scan_pos")

    def __init__(self, limits: HeadLimits) -> None:
        self._limits = limits
        self._scan_pos = self._line_start = self._line_count = 0

    def check(self, buf: bytes) -> None:
        """Refuse an incomplete head at once if what arrived is already wrong.

        Scans only the bytes not seen before: a bare CR or LF (a client that ends lines with
        LF alone would otherwise wait for the timeout), a request line that is too long or
        not HTTP/1.x (HTTP/0.9, the HTTP/2 preface), a field line or field count too large.
        """
        limits = self._limits
        start = max(self._scan_pos - 1, 0)
        if _BARE_LF.search(buf, start, len(buf) - 1 if buf.endswith(b"\r") else len(buf)):
            raise HTTPProtocolError("bare CR or LF in message head", 400)
        pos = self._scan_pos
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line_length = nl - 1 - self._line_start
            if self._line_count == 0:
                if line_length > limits.max_line:
                    raise HTTPProtocolError("request line too long", 414)
                parse_request_line(buf[self._line_start : nl - 1], limits)
            elif line_length > limits.max_field:
                raise HTTPProtocolError("header field too long", 431)
            self._line_count += 1
            if self._line_count > limits.max_fields + 1:
                raise HTTPProtocolError("too many header fields", 431)
            self._line_start = pos = nl + 1
        self._scan_pos = len(buf)
        pending = len(buf) - self._line_start
        if self._line_count == 0 and pending > limits.max_line:
            raise HTTPProtocolError("request line too long", 414)
        if self._line_count and pending > limits.max_field + 1:
            raise HTTPProtocolError("header field too long", 431)


def check_target(head: RequestHead, hosts: list[bytes]) -> None:
    """The Host field and the request target (RFC 9112 §3.2, §3.3)."""
    if len(hosts) > 1:
        raise HTTPProtocolError("several Host fields", 400)
    if head.version == b"HTTP/1.1" and not hosts:
        raise HTTPProtocolError("missing Host field", 400)
    if hosts and hosts[0] and _HOST.fullmatch(hosts[0]) is None:
        raise HTTPProtocolError("invalid Host field", 400)
    if head.method == b"CONNECT":
        raise HTTPProtocolError("CONNECT is not supported: this is no forward proxy", 405)
    target = head.target
    if target[:1] == b"/":
        return
    if target == b"*":
        if head.method != b"OPTIONS":
            raise HTTPProtocolError("'*' is a request target for OPTIONS only", 400)
        return
    m = _ABSOLUTE.fullmatch(target)
    if m is None:
        raise HTTPProtocolError("request target must be a path or an absolute URI", 400)
    scheme, authority = m.group(1).lower(), m.group(2)
    host = hosts[0] if hosts else None
    if not authority or _HOST.fullmatch(authority) is None:
        raise HTTPProtocolError("invalid authority in the request target", 400)
    if host is not None and _authority_key(scheme, host) != _authority_key(scheme, authority):
        # RFC 9112 §3.2.2 says the target's authority wins; a reverse proxy that let it
        # differ from Host would be asked for other sites. Refused: no open proxy.
        raise HTTPProtocolError("the request target names another host than Host", 400)
    if host is None:
        head.headers.append((b"Host", authority))
    rest = m.group(3) or b""
    head.target = rest if rest.startswith(b"/") else b"/" + rest


def _authority_key(scheme: bytes, authority: bytes) -> bytes:
    """``host[:port]`` compared as Host values are: case-insensitive, default port left out."""
    host = authority.lower().rstrip(b".")
    default = b":443" if scheme == b"https" else b":80"
    if host.endswith(default):
        host = host[: -len(default)]
    return host
