"""Which build is under test, and how the proxy says which one runs.

``scripts/test`` runs the unit suite twice, against the pure Python build and against the
native one, and the whole suite against the native one; it says which it expects in
``AJPB_EXPECT_BUILD``, and this test fails when another build was imported, so that a
run meant for one build cannot pass on the other unnoticed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ajpbalancer import __version__
from ajpbalancer._build import build, compiled, version_line


def test_the_build_under_test_is_the_one_expected() -> None:
    expected = os.environ.get("AJPB_EXPECT_BUILD")
    if expected is None:
        pytest.skip("AJPB_EXPECT_BUILD not set: no build is expected (scripts/test sets it)")
    assert expected in ("native", "pure")
    assert compiled() == (expected == "native"), f"expected the {expected} build, ran {build()}"


def test_the_version_line_names_the_version_and_the_build() -> None:
    line = version_line()
    assert line.startswith(f"ajpbalancer {__version__}, ")
    assert line.endswith(("native (mypyc) build", "pure Python build"))
    assert ("native" in line) == compiled()


def test_twistd_ajpbalancer_version_prints_it() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from ajpbalancer.tap import Options; Options().parseOptions(sys.argv[1:])",
            "--version",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == version_line()
