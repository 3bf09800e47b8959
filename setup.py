"""Build ajpbalancer, with its request path compiled to native code by mypyc when it can be.

Metadata lives in pyproject.toml; this file only adds the extension modules. When mypyc
and a C compiler with Python's headers are present (``pip install .`` has both on a
Debian machine with ``gcc`` and ``python3-dev``), the modules in :data:`COMPILED` are
compiled; otherwise, or with ``AJPB_PURE=1`` in the environment, the same source is
installed as pure Python. Both builds behave the same (the test suite runs against both);
``twistd ajpbalancer --version`` says which one runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

# Modules, never a package's __init__ (they only re-export, and keep their docstrings).
COMPILED = [
    # The sans-I/O codecs.
    "ajpbalancer/errors.py",
    "ajpbalancer/h1/_body.py",
    "ajpbalancer/h1/_errors.py",
    "ajpbalancer/h1/_events.py",
    "ajpbalancer/h1/_head.py",
    "ajpbalancer/h1/_request.py",
    "ajpbalancer/h1/_server.py",
    "ajpbalancer/h1/_state.py",
    "ajpbalancer/ajp/_connection.py",
    "ajpbalancer/ajp/_constants.py",
    "ajpbalancer/ajp/_errors.py",
    "ajpbalancer/ajp/_events.py",
    "ajpbalancer/ajp/_messages.py",
    "ajpbalancer/ajp/_packet.py",
    "ajpbalancer/ajp/_state.py",
    # What a request passes through, and the values it carries.
    "ajpbalancer/connection.py",
    "ajpbalancer/channel.py",
    "ajpbalancer/_transport.py",
    "ajpbalancer/tunnel.py",
    "ajpbalancer/headers.py",
    "ajpbalancer/routing.py",
    "ajpbalancer/balancer/_finder.py",
    "ajpbalancer/balancer/_select.py",
    "ajpbalancer/balancer/_sticky.py",
    "ajpbalancer/rewrite.py",
    "ajpbalancer/config/_model.py",
    "ajpbalancer/frontend/_protocol.py",
    "ajpbalancer/members/_base.py",
    "ajpbalancer/members/_http.py",
    "ajpbalancer/members/_ajp.py",
    "ajpbalancer/members/_pool.py",
    "ajpbalancer/members/_timer.py",
    "ajpbalancer/members/_errors.py",
    "ajpbalancer/members/_sink.py",
    "ajpbalancer/members/_request.py",
    "ajpbalancer/members/_runtime.py",
    "ajpbalancer/proxy/_context.py",
    "ajpbalancer/proxy/_exchange.py",
    "ajpbalancer/proxy/_upgrade.py",
    "ajpbalancer/proxy/_tunnel.py",
    "ajpbalancer/proxy/_balancers.py",
    "ajpbalancer/proxy/_accesslog.py",
]


def _can_compile() -> str | None:
    """Why the native build cannot be made here, or None when it can."""
    if os.environ.get("AJPB_PURE") == "1":
        return "AJPB_PURE=1"
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name} is not CPython"
    try:
        import mypyc.build  # noqa: F401, PLC0415
    except ImportError:
        return "mypyc is not installed"
    compiler = sysconfig.get_config_var("CC") or "cc"
    if shutil.which(compiler.split()[0]) is None:
        return f"no C compiler ({compiler})"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python headers ({include}/Python.h)"
    return None


def _extensions() -> list[object]:
    reason = _can_compile()
    if reason is not None:
        print(f"ajpbalancer: pure Python build ({reason})", file=sys.stderr)
        return []
    from mypyc.build import mypycify  # noqa: PLC0415

    print("ajpbalancer: native build (mypyc)", file=sys.stderr)
    return list(mypycify(COMPILED, opt_level="3", debug_level="1"))


setup(ext_modules=_extensions())
