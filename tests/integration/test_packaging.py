"""The built wheel: what it contains, what it requires, and that twistd finds it installed.

The wheel is built without network (``python -m build --wheel --no-isolation``) from a
copy of the checkout without its generated files (``build/``, ``*.egg-info``, caches,
``dropin.cache``), as a clean clone would be: a stale ``build/lib`` in the checkout could
otherwise slip deleted modules into the wheel, and concurrent builds would share it.

The installed tests use a venv that can see nothing of the checkout. The checkout is
installed editable in the test interpreter (compat mode: a ``.pth`` puts it on
``sys.path``), so ``venv --system-site-packages`` would let that ``.pth`` leak it in, and
Twisted's plugin scan, which walks every ``sys.path`` entry, would find the checkout's
``twisted/plugins``. Instead the venv is isolated and a ``.pth`` file of its own lists the
test interpreter's site-packages directories, after the wheel is installed: a directory
named in a ``.pth`` goes on ``sys.path`` but its own ``.pth`` files are not processed, so
Twisted and the other dependencies come from there and the checkout does not. The venv
gets a ``twistd`` script like the one Twisted's console entry point writes. The fixture
checks the isolation before any test relies on it.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .proxy import ProxyProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
STEP_TIMEOUT = 120
GENERATED = (
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".cache",
    "_trial_temp",
    "dropin.cache",
    "twistd.pid",
    "twistd.log",
)
"""Generated files and directories left out of the copy the wheel is built from."""

LOWER_BOUND_OPERATORS = frozenset({">=", ">", "~=", "=="})
TWISTD_SCRIPT = """\
#!{python}
import sys
from twisted.scripts.twistd import run
sys.exit(run())
"""


def run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr}"
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would put other code on ``sys.path``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")
        and not k.startswith(("PIP_", "VIRTUAL_ENV"))
    }
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a clean copy of the checkout, without network."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*GENERATED), symlinks=True)
    out = base / "dist"
    run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=source,
        env=clean_env(),
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


@dataclass(frozen=True)
class Venv:
    """A venv holding the wheel, with the dependencies but not the checkout on its path."""

    root: Path
    python: Path
    twistd: Path
    workdir: Path
    """A directory outside the checkout to run from."""

    def env(self) -> dict[str, str]:
        return clean_env(PATH=f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The wheel installed in an isolated venv (see the module docstring), checked so."""
    base = tmp_path_factory.mktemp("venv")
    root = base / "venv"
    workdir = base / "work"
    workdir.mkdir()
    env = clean_env()
    run([sys.executable, "-m", "venv", str(root)], cwd=workdir, env=env)
    python = root / "bin" / "python"
    # No config file (no index, find-links or constraints of this machine), no network.
    pip_env = clean_env(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        cwd=workdir,
        env=pip_env,
    )
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=workdir,
        env=env,
    ).stdout.strip()
    candidates = [*site.getsitepackages(), site.getusersitepackages()]
    dependencies = [p for p in candidates if Path(p).is_dir()]
    (Path(purelib) / "_test_dependencies.pth").write_text("\n".join(dependencies) + "\n")
    twistd = root / "bin" / "twistd"
    twistd.write_text(TWISTD_SCRIPT.format(python=python))
    twistd.chmod(0o755)
    made = Venv(root, python, twistd, workdir)

    probe = run(
        [
            str(python),
            "-c",
            "import sys, ajpbalancer, twisted, twisted.plugins.ajpbalancer_plugin as p\n"
            "print(ajpbalancer.__file__); print(p.__file__); print(twisted.__file__)\n"
            "print(*sys.path, sep='\\n')",
        ],
        cwd=workdir,
        env=made.env(),
    ).stdout.splitlines()
    package, plugin, twisted_init, *path = (Path(x) for x in probe)
    # The proof rests on this: our code from the venv, Twisted from elsewhere, and
    # nothing of the checkout on sys.path.
    assert package.is_relative_to(root), package
    # Twisted's plugin scan takes the first ``twisted/plugins`` holding the module. Where
    # the test interpreter has the project installed as a wheel (as scripts/test does),
    # Twisted's own directory holds a copy too; either way it is not the checkout's.
    shipped = zipfile.ZipFile(wheel).read("twisted/plugins/ajpbalancer_plugin.py")
    assert plugin.is_relative_to(root) or (
        not in_checkout(plugin) and plugin.read_bytes() == shipped
    ), plugin
    assert not twisted_init.is_relative_to(root), twisted_init
    assert not any(in_checkout(workdir / p) for p in path), path
    return made


def in_checkout(path: Path) -> bool:
    """Whether ``path`` is the checkout's source (the test environment, even inside it, is not)."""
    resolved = path.resolve()
    environment = Path(sys.prefix).resolve()
    return resolved.is_relative_to(ROOT) and not resolved.is_relative_to(environment)


# -- the wheel's contents --------------------------------------------------------------------


def test_wheel_holds_the_plugin_in_the_twisted_plugins_namespace(wheel_names: list[str]) -> None:
    """The plugin module ships, and ``twisted/`` and ``twisted/plugins/`` stay namespaces.

    An ``__init__.py`` in either would shadow Twisted's own package when installed.
    ``dropin.cache`` is generated at run time and must not ship either.
    """
    assert "twisted/plugins/ajpbalancer_plugin.py" in wheel_names
    assert "twisted/__init__.py" not in wheel_names
    assert "twisted/plugins/__init__.py" not in wheel_names
    assert not [n for n in wheel_names if n.endswith("dropin.cache")]


def test_wheel_holds_the_tap_module_and_py_typed(wheel_names: list[str]) -> None:
    """The module the plugin names and the PEP 561 marker of a typed package ship."""
    assert "ajpbalancer/tap.py" in wheel_names
    assert "ajpbalancer/py.typed" in wheel_names


def test_wheel_holds_every_module_of_the_package(wheel_names: list[str]) -> None:
    """Every ``.py`` file under ``ajpbalancer/`` in the sources is in the wheel.

    The proxy imports its subpackages only when it starts serving, so a subpackage left
    out of the packaging configuration would pass ``--help`` and ``--check`` and fail
    at the first real start.
    """
    sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "ajpbalancer").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = sorted(sources - set(wheel_names))
    assert missing == []


def test_wheel_requires_twisted_with_a_lower_bound(wheel: Path) -> None:
    """METADATA declares ``Requires-Dist: twisted`` (unconditionally) with a lower bound."""
    with zipfile.ZipFile(wheel) as zf:
        (metadata,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        headers = HeaderParser().parsestr(zf.read(metadata).decode("utf-8"))
    requirements = [Requirement(r) for r in headers.get_all("Requires-Dist", [])]
    twisted = [r for r in requirements if canonicalize_name(r.name) == "twisted"]
    assert len(twisted) == 1, requirements
    (requirement,) = twisted
    assert requirement.marker is None, requirement
    assert {spec.operator for spec in requirement.specifier} & LOWER_BOUND_OPERATORS, requirement


# -- the installed wheel ---------------------------------------------------------------------


def test_installed_wheel_is_found_by_twistd(venv: Venv) -> None:
    """``twistd ajpbalancer --help`` in the venv lists ``--config``.

    Run from outside the checkout with only the installed package on the path, so
    twistd discovered the plugin from the installed ``twisted/plugins`` file.
    """
    result = run([str(venv.twistd), "ajpbalancer", "--help"], cwd=venv.workdir, env=venv.env())
    assert "--config" in result.stdout
    assert "ajpbalancer" in result.stdout


def test_installed_wheel_serves_requests(venv: Venv) -> None:
    """The installed package starts the proxy and answers through a balancer.

    The built-in demo member stands in for a backend, so everything the proxy imports
    once it serves (frontend, members, balancer, proxy) must have been installed.
    """
    demo_port = free_port()
    workdir = venv.workdir / "proxy"
    workdir.mkdir()
    proxy = ProxyProcess(
        f"""
[ajpbalancer]
demo = http://127.0.0.1:{demo_port} route=demo1

[frontend]
listen = tcp:{{port}}:interface=127.0.0.1
ProxyPass = / balancer://demo/

[balancer://demo]
BalancerMember = http://127.0.0.1:{demo_port} route=demo1
""",
        workdir,
        twistd_path=str(venv.twistd),
        env=venv.env(),
    )
    try:
        proxy.start()
        resp, body = proxy.get("/")
        assert resp.status == 200, body
        assert b"demo1" in body
    finally:
        proxy.stop()
