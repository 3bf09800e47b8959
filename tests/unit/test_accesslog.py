"""The access log: Apache's combined format plus the member, with Apache's escaping.

The clock is a fake with ``.time()``; the time zone is set per test with ``TZ`` so the
``%t`` offset is known.
"""

from __future__ import annotations

import calendar
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ajpbalancer.h1 import RequestHead
from ajpbalancer.proxy import AccessLog

# 10/Oct/2000:13:55:36 -0700, the instant of Apache's own combined-format example.
APACHE_EXAMPLE = calendar.timegm((2000, 10, 10, 20, 55, 36, 0, 0, 0))


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def set_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the process time zone (POSIX TZ string) for one test, restored afterwards."""

    def set_zone(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def utc(set_tz: Callable[[str], None]) -> None:
    set_tz("UTC0")


def request(
    *headers: tuple[bytes, bytes],
    method: bytes = b"GET",
    target: bytes = b"/",
    version: bytes = b"HTTP/1.1",
) -> RequestHead:
    return RequestHead(method, target, version, list(headers))


def log_line(
    head: RequestHead,
    status: int = 200,
    size: int = 10,
    member: str = "http://10.0.0.2:8080",
    now: float = APACHE_EXAMPLE,
) -> str:
    stream = io.StringIO()
    AccessLog(stream, clock=FakeClock(now)).log(b"192.0.2.7", head, status, size, member)
    return stream.getvalue()


def quoted_fields(line: str) -> list[str]:
    """The request, Referer and User-Agent fields of a line (inside their quotes)."""
    assert line.count('"') - line.count('\\"') == 6
    parts = []
    rest = line
    for _ in range(3):
        start = rest.index('"') + 1
        end = start
        while rest[end] != '"' or rest[end - 1] == "\\":
            end += 1
        parts.append(rest[start:end])
        rest = rest[end + 1 :]
    return parts


# -- the format --------------------------------------------------------------------------------


def test_line_is_apaches_combined_example_plus_the_member(set_tz: Callable[[str], None]) -> None:
    set_tz("XXX+7")
    head = request(
        (b"Host", b"www.example.com"),
        (b"Referer", b"http://www.example.com/start.html"),
        (b"User-Agent", b"Mozilla/4.08 [en] (Win98; I ;Nav)"),
        target=b"/apache_pb.gif",
        version=b"HTTP/1.0",
    )
    line = log_line(head, 200, 2326, "ajp://127.0.0.2:8009")
    assert line == (
        '192.0.2.7 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)" '
        "ajp://127.0.0.2:8009\n"
    )


@pytest.mark.usefixtures("utc")
def test_zero_bytes_sent_is_logged_as_a_dash() -> None:
    assert ' 304 - "-"' in log_line(request(), status=304, size=0)


@pytest.mark.usefixtures("utc")
def test_missing_referer_and_user_agent_are_logged_as_dashes() -> None:
    assert log_line(request(), member="m").endswith(' 200 10 "-" "-" m\n')


@pytest.mark.usefixtures("utc")
def test_request_answered_without_member_logs_a_dash_member() -> None:
    assert log_line(request(), status=404, member="-").endswith(' 404 10 "-" "-" -\n')


@pytest.mark.usefixtures("utc")
def test_client_gone_status_is_logged_as_given() -> None:
    assert '" 499 10 ' in log_line(request(), status=499)


@pytest.mark.usefixtures("utc")
def test_header_lookup_is_case_insensitive_and_takes_the_first_field() -> None:
    head = request(
        (b"REFERER", b"http://a/"),
        (b"user-agent", b"first"),
        (b"Referer", b"http://b/"),
        (b"User-Agent", b"second"),
    )
    assert quoted_fields(log_line(head))[1:] == ["http://a/", "first"]


@pytest.mark.usefixtures("utc")
def test_each_call_writes_one_line_and_flushes() -> None:
    class Recording(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    stream = Recording()
    log = AccessLog(stream, clock=FakeClock(APACHE_EXAMPLE))
    log.log(b"192.0.2.7", request(), 200, 1, "m")
    assert stream.flushes == 1
    log.log(b"192.0.2.8", request(), 200, 1, "m")
    assert stream.flushes == 2
    lines = stream.getvalue().splitlines(keepends=True)
    assert [line[:9] for line in lines] == ["192.0.2.7", "192.0.2.8"]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)


# -- time stamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "stamp"),
    [
        ("UTC0", "[10/Oct/2000:20:55:36 +0000]"),
        ("IST-5:30", "[11/Oct/2000:02:25:36 +0530]"),
        ("NST+3:30", "[10/Oct/2000:17:25:36 -0330]"),
        ("XXX+12", "[10/Oct/2000:08:55:36 -1200]"),
    ],
)
def test_time_stamp_is_local_time_with_its_offset(
    set_tz: Callable[[str], None], zone: str, stamp: str
) -> None:
    set_tz(zone)
    assert f" - - {stamp} " in log_line(request())


@pytest.mark.usefixtures("utc")
def test_every_month_has_apaches_english_abbreviation() -> None:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    for number, name in enumerate(months, start=1):
        now = calendar.timegm((2024, number, 5, 0, 0, 0, 0, 0, 0))
        assert f"[05/{name}/2024:00:00:00 +0000]" in log_line(request(), now=now)


@pytest.mark.usefixtures("utc")
def test_time_stamp_follows_the_clock_and_drops_fractions() -> None:
    clock = FakeClock(APACHE_EXAMPLE + 0.2)
    stream = io.StringIO()
    log = AccessLog(stream, clock=clock)
    for now in (APACHE_EXAMPLE + 0.2, APACHE_EXAMPLE + 0.9, APACHE_EXAMPLE + 1.0):
        clock.now = now
        log.log(b"192.0.2.7", request(), 200, 1, "m")
    stamps = [line.split(" ")[3] for line in stream.getvalue().splitlines()]
    assert stamps == ["[10/Oct/2000:20:55:36", "[10/Oct/2000:20:55:36", "[10/Oct/2000:20:55:37"]


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("utc")
def test_quotes_and_backslashes_are_escaped_in_every_quoted_field() -> None:
    head = request(
        (b"Referer", b'http://a/"x"'),
        (b"User-Agent", b'Evil\\Agent" 200 1 "-" "forged'),
        target=b'/a"b\\c',
    )
    assert quoted_fields(log_line(head)) == [
        'GET /a\\"b\\\\c HTTP/1.1',
        'http://a/\\"x\\"',
        'Evil\\\\Agent\\" 200 1 \\"-\\" \\"forged',
    ]


@pytest.mark.usefixtures("utc")
def test_every_control_byte_is_logged_as_a_hex_escape() -> None:
    for byte in [*range(0x00, 0x20), 0x7F]:
        head = request((b"User-Agent", b"a" + bytes([byte]) + b"b"))
        assert quoted_fields(log_line(head))[2] == f"a\\x{byte:02x}b", hex(byte)


@pytest.mark.usefixtures("utc")
def test_no_line_break_can_be_injected_into_the_log() -> None:
    head = request((b"Referer", b"x\r\n192.0.2.66 - - forged"), (b"User-Agent", b"\n"))
    line = log_line(head)
    assert line.count("\n") == 1
    assert "\r" not in line


@pytest.mark.usefixtures("utc")
def test_every_non_ascii_byte_is_logged_as_a_hex_escape() -> None:
    """As Apache (C locale) does; never written raw, never re-encoded."""
    for byte in range(0x80, 0x100):
        head = request((b"User-Agent", b"a" + bytes([byte]) + b"b"))
        assert quoted_fields(log_line(head))[2] == f"a\\x{byte:02x}b", hex(byte)


@pytest.mark.usefixtures("utc")
def test_non_ascii_is_escaped_the_same_with_or_without_a_quote_beside_it() -> None:
    alone = quoted_fields(log_line(request((b"User-Agent", b"caf\xc3\xa9"))))[2]
    quoted = quoted_fields(log_line(request((b"User-Agent", b'caf\xc3\xa9"'))))[2]
    assert alone == "caf\\xc3\\xa9"
    assert quoted == alone + '\\"'


@pytest.mark.usefixtures("utc")
def test_printable_ascii_is_logged_as_is() -> None:
    text = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')
    assert quoted_fields(log_line(request((b"User-Agent", text))))[2] == text.decode()


# -- opening, failing and closing ------------------------------------------------------------------


def test_off_means_no_log() -> None:
    assert AccessLog.open("off") is None


@pytest.mark.usefixtures("utc")
def test_a_path_is_opened_for_appending(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text("earlier line\n")
    log = AccessLog.open(str(path))
    assert log is not None
    log.log(b"192.0.2.7", request(), 200, 5, "m")
    log.close()
    lines = path.read_text().splitlines()
    assert lines[0] == "earlier line"
    assert lines[1].startswith("192.0.2.7 - - [")
    assert len(lines) == 2


def test_close_closes_the_stream() -> None:
    stream = io.StringIO()
    AccessLog(stream).close()
    assert stream.closed


def test_close_of_the_stdout_log_leaves_stdout_open() -> None:
    log = AccessLog.open("-")
    assert log is not None
    log.close()
    assert sys.__stdout__ is not None
    assert not sys.__stdout__.closed


@pytest.mark.usefixtures("utc")
def test_writing_to_a_closed_stream_does_not_raise() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, clock=FakeClock(APACHE_EXAMPLE))
    stream.close()
    log.log(b"192.0.2.7", request(), 200, 5, "m")


@pytest.mark.usefixtures("utc")
def test_a_full_disk_does_not_raise() -> None:
    class Full(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(28, "No space left on device")

    AccessLog(Full(), clock=FakeClock(APACHE_EXAMPLE)).log(b"192.0.2.7", request(), 200, 5, "m")
