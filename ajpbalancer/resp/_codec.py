"""RESP2, the Redis protocol, as a codec without I/O: commands out, replies in.

:func:`encode_command` writes a command as an array of bulk strings. :class:`ReplyParser`
takes bytes as they arrive (:meth:`~ReplyParser.receive_data`) and hands out whole replies
(:meth:`~ReplyParser.next_reply`): ``bytes`` (simple and bulk strings), ``int``, ``None``
(null bulk string or array), a ``list`` of replies, or an :class:`ErrorReply`. Every size
is bounded before it is buffered (:class:`Limits`); anything else the server sends is a
:class:`RESPProtocolError`, the server's fault, after which the parser refuses more input
(the connection must be dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ajpbalancer.errors import AJPBalancerError


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A ``-ERR …`` reply: the command failed, the connection is fine."""

    message: str


Reply: TypeAlias = "bytes | int | list[Reply] | ErrorReply | None"


class RESPProtocolError(AJPBalancerError):
    """The server sent something that is not RESP2, or crossed a limit."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Most a reply may hold: one line, one bulk string, one array, nesting, and all of
    one reply (arrays of arrays of bulk strings) at once."""

    line: int = 64 * 1024
    bulk: int = 8 * 1024 * 1024
    elements: int = 1_000_000
    depth: int = 8
    reply: int = 32 * 1024 * 1024


NEED_DATA = object()
"""What :meth:`ReplyParser.next_reply` returns while no whole reply has arrived."""


def _argument(arg: bytes | str | int) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, int):
        return str(arg).encode("ascii")
    return arg.encode("utf-8")


def encode_command(*args: bytes | str | int) -> bytes:
    """``args`` as one RESP2 command (an array of bulk strings)."""
    if not args:
        raise ValueError("a command has at least its name")
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _argument(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _IncompleteError(Exception):
    """Not all of the reply has arrived."""


class ReplyParser:
    """Parses the replies of one connection (see the module docstring)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._buffer = bytearray()
        self._broken = False

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server, in order (:class:`RESPProtocolError` once broken)."""
        if self._broken:
            raise RESPProtocolError("the connection already sent something invalid")
        self._buffer += data
        if len(self._buffer) > self.limits.reply + self.limits.line:
            self._fail(f"a reply longer than {self.limits.reply} bytes")

    def next_reply(self) -> Reply | object:
        """The next whole reply, or :data:`NEED_DATA`."""
        if self._broken:
            raise RESPProtocolError("the connection already sent something invalid")
        if not self._buffer:
            return NEED_DATA
        try:
            reply, end = self._parse(0, 0)
        except _IncompleteError:
            return NEED_DATA
        del self._buffer[:end]
        return reply

    def _fail(self, why: str) -> None:
        self._broken = True
        raise RESPProtocolError(f"invalid reply from the store: {why}")

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", start, start + self.limits.line + 2)
        if end < 0:
            if len(self._buffer) - start > self.limits.line + 1:
                self._fail(f"a line longer than {self.limits.line} bytes")
            raise _IncompleteError
        return bytes(self._buffer[start:end]), end + 2

    def _integer(self, text: bytes) -> int:
        body = text[1:] if text[:1] == b"-" else text
        if not body or not body.isdigit() or len(body) > 19:
            self._fail(f"not a number: {text[:40]!r}")
        return int(text)

    def _parse(self, start: int, depth: int) -> tuple[Reply, int]:
        if depth > self.limits.depth:
            self._fail(f"arrays nested deeper than {self.limits.depth}")
        line, pos = self._line(start)
        if not line:
            self._fail("an empty line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest, pos
        if kind == b"-":
            return ErrorReply(rest.decode("utf-8", "replace")), pos
        if kind == b":":
            return self._integer(rest), pos
        if kind == b"$":
            length = self._integer(rest)
            if length == -1:
                return None, pos
            if length < 0 or length > self.limits.bulk:
                self._fail(f"a bulk string of {length} bytes (at most {self.limits.bulk})")
            end = pos + length
            if len(self._buffer) < end + 2:
                raise _IncompleteError
            if self._buffer[end : end + 2] != b"\r\n":
                self._fail("a bulk string without its CRLF")
            return bytes(self._buffer[pos:end]), end + 2
        if kind == b"*":
            count = self._integer(rest)
            if count == -1:
                return None, pos
            if count < 0 or count > self.limits.elements:
                self._fail(f"an array of {count} elements (at most {self.limits.elements})")
            items: list[Reply] = []
            for _ in range(count):
                item, pos = self._parse(pos, depth + 1)
                items.append(item)
            return items, pos
        self._fail(f"unknown reply type {kind!r}")
        raise AssertionError  # pragma: no cover - _fail raised
