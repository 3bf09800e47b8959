"""The in-process benchmark (``bench/inprocess.py``) proxies real answers both ways."""

from __future__ import annotations

import re

import pytest

from bench import inprocess


@pytest.mark.parametrize("path", inprocess.PATHS)
@pytest.mark.parametrize("size", inprocess.SIZES)
def test_run_proxies_whole_answers(path: str, size: int) -> None:
    """Every request of the loop got a whole 200 answer (run() checks) and took CPU."""
    assert inprocess.run(path, size, 20) > 0


def test_the_ajp_answer_is_what_the_container_codec_sends() -> None:
    """SEND_HEADERS, the body in packets of at most 8 KiB, END_RESPONSE with reuse."""
    answer = inprocess.ajp_answer(65536)
    assert answer.startswith(b"AB") and answer.endswith(b"AB\x00\x02\x05\x01")
    assert answer.count(b"AB\x1f\xfc\x03\x1f\xf8") == 8  # 8 full 8184-byte chunks


def test_cpu_table_has_a_row_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    inprocess.main(["--requests", "20", "--rounds", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d", line)]
    assert [row.split(" | ")[0] for row in rows] == ["| 100 B", "| 64 KiB"]
    assert all(float(row.split(" | ")[3].rstrip(" |")) > 0 for row in rows)
