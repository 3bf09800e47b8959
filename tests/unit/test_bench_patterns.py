"""The pattern benchmark (``bench/patterns.py``) runs and prints its four tables."""

from __future__ import annotations

import pytest

from bench import patterns


def test_quick_run_prints_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    patterns.main(["--quick"])
    out = capsys.readouterr().out
    assert out.count("### ") == 4
    assert "| 20 |" in out  # Python's re, RE2 and regex on 20 letters
    assert "timeout" in out  # the fallback hits its limit on an exponential pattern
    assert "`/app/echo/secret;x/x` |" in out and "excluded (404)" in out
