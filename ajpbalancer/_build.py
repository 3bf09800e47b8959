"""Which build of ajpbalancer runs: the request path compiled to native code by mypyc,
or the same source as pure Python (see ``setup.py``)."""

from __future__ import annotations

import importlib.machinery
import importlib.util

from ajpbalancer import __version__

PROBE = "ajpbalancer.h1._server"
"""A module that the native build always compiles."""


def compiled() -> bool:
    """Whether the request path runs as native code (an extension module was imported)."""
    spec = importlib.util.find_spec(PROBE)
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def build() -> str:
    """``native (mypyc)`` or ``pure Python``."""
    return "native (mypyc)" if compiled() else "pure Python"


def version_line() -> str:
    """What ``twistd ajpbalancer --version`` prints and the start-up log says."""
    return f"ajpbalancer {__version__}, {build()} build"
