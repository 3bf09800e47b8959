"""The documentation: a short README, links that lead somewhere, a complete site navigation.

The site itself is built with warnings as errors by ``scripts/test`` (``mkdocs build
--strict``); these tests also cover the README, which the site does not contain, and
fail fast under ``scripts/test tests/unit``.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import types
from pathlib import Path

import pytest
import yaml
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_LIMIT = 15_000

_FENCED = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$", re.MULTILINE)


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _links(path: Path) -> list[str]:
    """Inline link and image targets of a Markdown file, outside code."""
    text = _CODE_SPAN.sub("", _FENCED.sub("", path.read_text(encoding="utf-8")))
    return [m.group("target") for m in _LINK.finditer(text)]


def _anchors(path: Path) -> set[str]:
    """The heading ids of a Markdown file, as MkDocs (and GitHub) make them."""
    text = _FENCED.sub("", path.read_text(encoding="utf-8"))
    return {slugify(m.group("text").replace("`", ""), "-") for m in _HEADING.finditer(text)}


def _relative(target: str) -> bool:
    return not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("/")


def _nav_paths(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_paths(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_paths(value)]
    return []


def test_readme_is_a_short_front_door() -> None:
    """README.md stays within 15,000 characters: the manual lives in docs/."""
    length = len(README.read_text(encoding="utf-8"))
    assert length <= README_LIMIT, f"README.md has {length} characters"


@pytest.mark.parametrize("path", [README, *_pages()], ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_relative_links_lead_to_files_and_headings(path: Path) -> None:
    """Every relative link names a file that exists, and a heading of it if it names one."""
    broken: list[str] = []
    for target in _links(path):
        if not _relative(target):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(f"{target}: no heading #{fragment}")
    assert not broken, broken


def test_nav_lists_every_page() -> None:
    """mkdocs.yml's nav names every page under docs/, and only pages that exist."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_paths(config["nav"])
    pages = [p.relative_to(DOCS).as_posix() for p in _pages()]
    assert sorted(nav) == sorted(pages)
    assert len(nav) == len(set(nav)), "a page is listed twice"


def _hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("ajpbalancer_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_describes_every_directive_and_parameter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hook renders a row for every directive and parameter of the parser's tables,
    with no warning (a warning is an entry the page does not describe, or the reverse)."""
    hooks = _hooks()
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="configuration.md"))
    source = (DOCS / "configuration.md").read_text(encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="mkdocs"):
        rendered = hooks.on_page_markdown(source, page=page, config=None, files=None)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    rows = set(re.findall(r"^\| `([^`]+)` \|", rendered, re.MULTILINE))
    tables = hooks.directives  # the hook's own import of the parser's tables
    names = {d.name for d in tables.DIRECTIVES}
    names |= set(tables.MEMBER_PARAMS) | set(tables.BALANCER_PARAMS)
    assert names <= rows
    assert "<!-- reference:" not in rendered
