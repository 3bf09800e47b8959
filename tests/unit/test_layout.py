"""The package's layout holds: the import contract is kept and no module is too long.

The rooms and their order are the ``layers`` contract in ``pyproject.toml``
(``[tool.importlinter]``): a wrong arrow between rooms, even in an annotation under
``TYPE_CHECKING``, breaks it. A module over :data:`MAX_LINES` lines does more than one
job and is split along them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ajpbalancer"

MAX_LINES = 600


def lint_imports() -> str:
    """The ``lint-imports`` of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found is not None, "lint-imports is not installed (the test extra has it)"
    return found


def test_the_import_contract_is_kept() -> None:
    """``lint-imports`` checks the sources here (it reads the package from the current
    directory), so it runs from the repository's root."""
    run = subprocess.run(
        [lint_imports()], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_module_is_over_the_line_limit() -> None:
    lengths = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    offenders = sorted(
        f"{name}: {count} lines" for name, count in lengths.items() if count > MAX_LINES
    )
    assert offenders == [], f"modules over {MAX_LINES} lines: {offenders}"
