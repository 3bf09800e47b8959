"""The package's shape: no I/O framework anywhere in it, a pinned public API, and the
error hierarchy the rest of ajpbalancer relies on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ajpbalancer import ajp
from ajpbalancer.errors import AJPBalancerError

PACKAGE = Path(ajp.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_imports_twisted_or_does_io(path: Path) -> None:
    banned = {"twisted", "socket", "asyncio", "selectors", "ssl", "logging", "select"}
    for module in imported_modules(path):
        assert module.split(".")[0] not in banned, f"{path.name} imports {module}"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_every_module_states_its_job(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), path.name
    assert "from __future__ import annotations" in path.read_text(encoding="utf-8")


def test_public_api_is_pinned() -> None:
    assert sorted(ajp.__all__) == sorted(
        [
            "DEFAULT_MAX_PACKET_SIZE",
            "MAX_MAX_PACKET_SIZE",
            "MIN_MAX_PACKET_SIZE",
            "TRANSITIONS",
            "AJPProtocolError",
            "CPing",
            "CPong",
            "ClientConnection",
            "ConnectionClosed",
            "EndResponse",
            "Event",
            "ForwardRequest",
            "GetBodyChunk",
            "Headers",
            "LocalProtocolError",
            "RemoteProtocolError",
            "RequestBody",
            "SendBodyChunk",
            "SendHeaders",
            "ServerConnection",
            "State",
        ]
    )
    for name in ajp.__all__:
        assert getattr(ajp, name) is not None
    assert "no networking" in (ajp.__doc__ or "")


def test_errors_say_who_is_at_fault() -> None:
    assert issubclass(ajp.AJPProtocolError, AJPBalancerError)
    assert issubclass(ajp.LocalProtocolError, ajp.AJPProtocolError)
    assert issubclass(ajp.RemoteProtocolError, ajp.AJPProtocolError)
    assert ajp.LocalProtocolError("x").status_hint == 500
    assert ajp.LocalProtocolError("x", 400).status_hint == 400
    remote = ajp.RemoteProtocolError("bad member")
    assert (remote.status_hint, remote.message, str(remote)) == (502, "bad member", "bad member")
    with pytest.raises(TypeError):
        ajp.AJPProtocolError("x", 500)


def test_packet_size_limits() -> None:
    assert (ajp.MIN_MAX_PACKET_SIZE, ajp.DEFAULT_MAX_PACKET_SIZE, ajp.MAX_MAX_PACKET_SIZE) == (
        8192,
        8192,
        65536,
    )
    assert ajp.ClientConnection().max_packet_size == 8192
