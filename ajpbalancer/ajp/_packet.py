"""AJP13 packet framing: primitives written into a capped packet, packets cut from a stream.

Every packet is ``magic (2) | payload length (uint16) | payload``. Primitives are a byte,
a boolean (one byte, 0 or 1), an unsigned 16-bit big-endian integer, and a string:
``uint16 length N | N bytes | 0x00`` where the terminator is not counted in N, or the null
string ``0xFFFF`` with no bytes and no terminator after it.

`PacketWriter` builds one packet and refuses to grow past the packet size. `PacketBuffer`
cuts a byte stream into payloads, checking the magic and the declared length against the
limit as soon as the 4 header bytes are there, before any of the payload is buffered.
`Reader` reads primitives from one payload; reading past its end, a string without its
NUL, or leaving bytes unread is an error.
"""

from __future__ import annotations

from typing import Final

from ajpbalancer.ajp._constants import HEADER_LEN, NULL_STRING_LENGTH, U16
from ajpbalancer.ajp._errors import LocalProtocolError, RemoteProtocolError

_NULL_STRING: Final = U16.pack(NULL_STRING_LENGTH)
_u16_pack = U16.pack
_u16_unpack_from = U16.unpack_from


class PacketWriter:
    """One outgoing packet, built in place; `finish` writes the length and returns it.

    ``max_packet_size`` caps the whole packet (header included). Overflow raises a
    `LocalProtocolError` saying ``f"{what} do not fit in one AJP packet of N bytes"``
    with ``status_hint``.
    """

    __slots__ = ("_buf", "_limit", "_status_hint", "_what")

    def __init__(
        self,
        magic: bytes,
        max_packet_size: int,
        *,
        what: str = "the message's fields",
        status_hint: int = 500,
    ) -> None:
        self._buf = bytearray(magic)
        self._buf += b"\x00\x00"  # the payload length, written by finish()
        self._limit = max_packet_size
        self._what = what
        self._status_hint = status_hint

    def _overflow(self) -> LocalProtocolError:
        return LocalProtocolError(
            f"{self._what} do not fit in one AJP packet of {self._limit} bytes",
            self._status_hint,
        )

    def put_byte(self, value: int) -> None:
        self._buf.append(value)

    def put_bool(self, value: bool) -> None:
        self._buf.append(1 if value else 0)

    def put_uint16(self, value: int) -> None:
        self._buf += _u16_pack(value)

    def put_raw(self, value: bytes) -> None:
        """Bytes as they are (a precomputed header code, say)."""
        self._buf += value

    def put_string(self, value: bytes) -> None:
        """Length, bytes, NUL (not counted in the length)."""
        n = len(value)
        if n >= NULL_STRING_LENGTH or len(self._buf) + n + 3 > self._limit:
            raise self._overflow()
        buf = self._buf
        buf += _u16_pack(n)
        buf += value
        buf.append(0)

    def put_optional_string(self, value: bytes | None) -> None:
        """A string, or the null string 0xFFFF (no bytes, no terminator) for None."""
        if value is None:
            self._buf += _NULL_STRING
        else:
            self.put_string(value)

    def finish(self) -> bytes:
        """The whole packet, header included."""
        buf = self._buf
        if len(buf) > self._limit:
            raise self._overflow()
        U16.pack_into(buf, 2, len(buf) - HEADER_LEN)
        return bytes(buf)


class PacketBuffer:
    """Cuts a stream of bytes into packet payloads.

    ``magic`` is what every packet must start with; a declared length above
    ``max_packet_size - 4`` is refused as soon as the header is complete. Errors are
    `RemoteProtocolError` (the bytes came from the peer).
    """

    __slots__ = ("_limit", "_magic", "_max_packet_size", "_partial")

    def __init__(self, magic: bytes, max_packet_size: int) -> None:
        self._magic = magic
        self._max_packet_size = max_packet_size
        self._limit = max_packet_size - HEADER_LEN
        self._partial = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet held back."""
        return len(self._partial)

    def _check_head(self, head: bytes) -> None:
        """Check whatever part of a packet header ``head`` holds (1 to 4+ bytes)."""
        magic = self._magic
        if head[:2] != magic[: len(head)]:
            raise RemoteProtocolError(
                f"bad AJP packet magic {head[:2].hex()} (expected {magic.hex()})"
            )
        if len(head) >= HEADER_LEN:
            length = (head[2] << 8) | head[3]
            if length > self._limit:
                raise RemoteProtocolError(
                    f"AJP packet of {length + HEADER_LEN} bytes is larger than the "
                    f"packet size {self._max_packet_size}"
                )

    def feed(self, data: bytes) -> list[memoryview]:
        """The payloads completed by ``data``, in order; the rest is kept for next time.

        Payloads are views: read them before feeding more (or keep ``bytes`` copies).
        Every read of a member connection passes here: headers are read byte by byte
        (compiled, that is a few instructions; a ``struct`` call and its tuple are not),
        and a packet split across reads is copied once into the partial buffer, which is
        then handed out as it is.
        """
        payloads: list[memoryview] = []
        pos = 0
        end = len(data)
        view = memoryview(data)
        partial = self._partial
        if partial:
            have = len(partial)
            if have < HEADER_LEN:
                pos = min(HEADER_LEN - have, end)
                partial += view[:pos]
                have = len(partial)
                self._check_head(bytes(partial))
                if have < HEADER_LEN:
                    return payloads
            total = HEADER_LEN + ((partial[2] << 8) | partial[3])
            take = min(total - have, end - pos)
            partial += view[pos : pos + take]
            pos += take
            if have + take < total:
                return payloads
            payloads.append(memoryview(partial)[HEADER_LEN:])
            self._partial = bytearray()
        magic0 = self._magic[0]
        magic1 = self._magic[1]
        limit = self._limit
        while end - pos >= HEADER_LEN:
            length = (data[pos + 2] << 8) | data[pos + 3]
            if data[pos] != magic0 or data[pos + 1] != magic1 or length > limit:
                self._check_head(data[pos : pos + HEADER_LEN])
            stop = pos + HEADER_LEN + length
            if stop > end:
                break
            payloads.append(view[pos + HEADER_LEN : stop])
            pos = stop
        if pos < end:
            if end - pos < HEADER_LEN:  # a longer rest's header was checked above
                self._check_head(data[pos:])
            self._partial = bytearray(view[pos:])
        return payloads


class Reader:
    """Reads primitives from one payload, front to back.

    Every malformation is a `RemoteProtocolError`: the payload came from the peer.
    """

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self._data = data
        self._pos = pos
        self._end = len(data)

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _short(self, what: str) -> RemoteProtocolError:
        return RemoteProtocolError(f"AJP message ends inside {what}")

    def byte(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise self._short("a byte")
        self._pos = pos + 1
        return self._data[pos]

    def boolean(self) -> bool:
        value = self.byte()
        if value > 1:
            raise RemoteProtocolError(f"AJP boolean must be 0 or 1, not {value}")
        return value == 1

    def peek_uint16(self) -> int:
        if self._pos + 2 > self._end:
            raise self._short("an integer")
        value: int = _u16_unpack_from(self._data, self._pos)[0]
        return value

    def uint16(self) -> int:
        value = self.peek_uint16()
        self._pos += 2
        return value

    def optional_string(self) -> bytes | None:
        """A string, or None for the null string (0xFFFF, nothing after it)."""
        n = self.uint16()
        if n == NULL_STRING_LENGTH:
            return None
        start = self._pos
        stop = start + n
        if stop + 1 > self._end:
            raise self._short("a string")
        if self._data[stop] != 0:
            raise RemoteProtocolError("AJP string is not NUL-terminated where its length says")
        self._pos = stop + 1
        return bytes(self._data[start:stop])

    def string(self, what: str) -> bytes:
        """A string that must not be null; ``what`` names it in the error."""
        value = self.optional_string()
        if value is None:
            raise RemoteProtocolError(f"AJP {what} is a null string")
        return value

    def raw(self, n: int) -> bytes:
        """``n`` bytes with no length and no terminator (a request body chunk)."""
        start = self._pos
        if start + n > self._end:
            raise self._short("a body chunk")
        self._pos = start + n
        return bytes(self._data[start : start + n])

    def expect_end(self, what: str) -> None:
        """Raise if bytes are left after ``what``."""
        if self._pos != self._end:
            raise RemoteProtocolError(f"{self._end - self._pos} unexpected bytes after {what}")
