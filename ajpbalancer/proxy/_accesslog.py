"""The access log: Apache's combined format plus the member that served the request.

``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" member`` — one line per
request, written when the request ends (499 when the client went away first). A request
that switched protocols is logged when its tunnel closes, with status 101, ``%b`` the
bytes sent to the client through the tunnel, and after the member
``tunnel in=BYTES out=BYTES time=SECONDSs``: the bytes from the client and to it (as
mod_logio's ``%I`` and ``%O`` count them, without the handshake) and how long it was open.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ajpbalancer.h1 import RequestHead

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _escape(value: bytes) -> str:
    """Quote-safe, printable text, as Apache's log escaping does."""
    text = value.decode("latin-1")
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}")
    return "".join(out)


class AccessLog:
    """Writes access log lines to a text stream (stdout or an opened file)."""

    def __init__(self, stream: TextIO, *, clock: object = time) -> None:
        self._stream = stream
        self._clock = clock
        self._second = -1
        self._stamp = ""

    @classmethod
    def open(cls, target: str) -> AccessLog | None:
        """``-`` is stdout, ``off`` no log, anything else a file opened for appending."""
        if target == "off":
            return None
        if target == "-":
            # The process's own stdout, not twistd's log capture of sys.stdout.
            return cls(sys.__stdout__ or sys.stdout)
        return cls(open(target, "a", buffering=1, encoding="utf-8"))

    def _timestamp(self) -> str:
        now = int(self._clock.time())  # type: ignore[attr-defined]
        if now != self._second:
            self._second = now
            t = time.localtime(now)
            offset = t.tm_gmtoff or 0
            sign = "+" if offset >= 0 else "-"
            offset = abs(offset) // 60
            zone = f"{sign}{offset // 60:02d}{offset % 60:02d}"
            self._stamp = (
                f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {zone}]"
            )
        return self._stamp

    def log(
        self,
        client_ip: bytes,
        head: RequestHead | None,
        status: int,
        size: int,
        member: str,
        *,
        tunnel: tuple[int, int, float] | None = None,
    ) -> None:
        """One line; ``head`` None (no request could be parsed) logs the request as
        ``-``; ``tunnel``: bytes from the client, bytes to it, seconds open."""
        if head is None:
            referer = agent = None
            request = "-"
        else:
            referer = head.get(b"referer")
            agent = head.get(b"user-agent")
            request = _escape(b"%s %s %s" % (head.method, head.target, head.version))
        line = (
            f'{client_ip.decode("ascii", "replace")} - - {self._timestamp()} "{request}" '
            f"{status} {size if size else '-'} "
            f'"{_escape(referer) if referer is not None else "-"}" '
            f'"{_escape(agent) if agent is not None else "-"}" {member}\n'
        )
        if tunnel is not None:
            line = f"{line[:-1]} tunnel in={tunnel[0]} out={tunnel[1]} time={tunnel[2]:.3f}s\n"
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must never take the proxy down

    def take(self, other: AccessLog) -> None:
        """Write where ``other`` writes from now on, closing this log's own stream (a
        reload moved the log: requests already running log to the new place too)."""
        old, self._stream = self._stream, other._stream
        if old not in (sys.stdout, sys.__stdout__):
            old.close()

    def close(self) -> None:
        if self._stream not in (sys.stdout, sys.__stdout__):
            self._stream.close()
