"""MkDocs hook: render the configuration reference from the parser's own tables.

The directive table and the parameter tables of the configuration parser
(``ajpbalancer.config``) are the truth about which directives and parameters exist,
where each is allowed, how its value is written and what its default is. A page marks
where a table goes and gives the meaning of each entry as a list::

    <!-- reference: member-params -->
    - `route`: the member's route (Tomcat's `jvmRoute`)
    - `loadfactor`: relative weight for `byrequests`
    <!-- /reference -->

At build time the list becomes a table whose other columns are read from the code. A
directive or parameter the code has and the list lacks, or the other way round, is a
warning, so ``mkdocs build --strict`` fails until the page says what it means.

The hook also drops ``<!-- source-only -->`` … ``<!-- /source-only -->`` blocks (notes for
readers of the Markdown source) and turns links to files outside ``docs/`` (``../x``,
which work when the Markdown is read in the repository) into their link text.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, fields
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

# The reference is generated from the checkout's code, not from an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# -- The one place that knows where the tables live -----------------------------------------
from ajpbalancer.config import _directives as directives
from ajpbalancer.config import _model as model
from ajpbalancer.config import _values as values

log = logging.getLogger("mkdocs.plugins.ajpbalancer_reference")

DASH = "\N{EN DASH}"

# -- Defaults of the directives ---------------------------------------------------------------


class _Note(str):
    """A default that is not a value: written in words, in italics."""


REQUIRED = _Note("required")
NONE = _Note("none")


def _field_default(cls: type, name: str) -> object:
    """The default of dataclass field ``name`` of ``cls``."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            return REQUIRED
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _read_timeout_default() -> str:
    limits = model.ClientLimits()
    return f"header={_stage(limits.header_timeout)} body={_stage(limits.body_timeout)}"


def _stage(stage: model.ReadTimeout) -> str:
    text = _number(stage.timeout)
    if stage.max_timeout is not None:
        text += f"-{_number(stage.max_timeout)}"
    if stage.min_rate:
        text += f",MinRate={stage.min_rate}"
    return text


# Directive name -> its default: (model class, field) or a callable or a note.
DIRECTIVE_DEFAULTS: Mapping[str, tuple[type, str] | Callable[[], object] | _Note] = {
    "workers": (model.Settings, "workers"),
    "admin": (model.Settings, "admin"),
    "admin_users": (model.Settings, "admin_users"),
    "admin_hosts": _Note("loopback names, the admin address, this host's name"),
    "access_log": (model.Settings, "access_log"),
    "ProxyTimeout": (model.Settings, "proxy_timeout"),
    "BalancerPersist": (model.Settings, "balancer_persist"),
    "state": (model.Settings, "state"),
    "state_prefix": (model.Settings, "state_prefix"),
    "demo": (model.Settings, "demo"),
    "listen": REQUIRED,
    "ProxyPass": NONE,
    "ProxyPassMatch": NONE,
    "ProxyPassReverse": (model.Frontend, "reverse"),
    "ProxyPassReverseCookieDomain": (model.Frontend, "cookie_domain"),
    "ProxyPassReverseCookiePath": (model.Frontend, "cookie_path"),
    "ProxyPreserveHost": (model.Frontend, "preserve_host"),
    "ProxyAddHeaders": (model.Frontend, "add_headers"),
    "LimitRequestLine": (model.ClientLimits, "limit_request_line"),
    "LimitRequestFieldSize": (model.ClientLimits, "limit_request_field_size"),
    "LimitRequestFields": (model.ClientLimits, "limit_request_fields"),
    "LimitRequestBody": (model.ClientLimits, "limit_request_body"),
    "RequestReadTimeout": _read_timeout_default,
    "KeepAliveTimeout": (model.ClientLimits, "keep_alive_timeout"),
    "ProxyWebsocketIdleTimeout": (model.Frontend, "websocket_idle_timeout"),
    "MaxConnections": (model.ClientLimits, "max_connections"),
    "SSLVerifyClient": (model.TLSOptions, "verify_client"),
    "SSLCACertificateFile": (model.TLSOptions, "ca_certificate_file"),
    "BalancerMember": REQUIRED,
    "ProxySet": NONE,
}


def _directive_default(name: str) -> object:
    how = DIRECTIVE_DEFAULTS[name]
    if isinstance(how, _Note):
        return how
    if isinstance(how, tuple):
        return _field_default(*how)
    return how()


# -- Value syntax of the parameters, read from their parsers ----------------------------------


def _syntax_of(parse: Callable[..., object]) -> str:
    """How a parameter's value is written (a table cell), from the parser the table names."""
    func: Callable[..., object] = parse
    kw: Mapping[str, Any] = {}
    if isinstance(parse, partial):
        func, kw = parse.func, parse.keywords
    if func is values.on_off:
        return _code("On | Off")
    if func is values.token:
        return _code("TOKEN")
    if func is values.nonempty:
        return _code("TEXT")
    if func is values.path:
        return _code("/PATH")
    if func is values.integer:
        return _code("INTEGER") + ", " + _range(kw["low"], kw.get("high"))
    if func is values.decimal:
        return _code("NUMBER") + ", " + _range(kw["low"], kw["high"])
    if func is values.seconds:
        low = _number(kw["low"])
        bound = f"> {low} s" if kw.get("exclusive") else f"≥ {low} s"
        if kw.get("exclusive") and kw["low"] == 0:
            bound = f"≥ {_number(values.MIN_POSITIVE_SECONDS * 1000)} ms"
        high = _number(kw.get("high", values.MAX_SECONDS))
        ms = " or " + _code("Nms") if kw.get("allow_ms") else ""
        return f"{_code('SECONDS')}{ms}, {bound}, ≤ {high} s"
    if func is values.one_of:
        return _code(" | ".join(kw["choices"]))
    if func is values.status:
        return _code("[+|-]LETTERS") + ", letters " + " ".join(model.STATUS_FLAGS)
    if func is values.sticky_names:
        return _code("NAME[|NAME…]")
    if func is values.separator:
        return _code("CHARACTER | Off")
    if func is values.status_codes:
        return _code("CODE[,CODE…]") + f", 100{DASH}599"
    if func is values.protocols:
        return _code("PROTOCOL[,PROTOCOL…] | *")
    if func is values.upgrade_url:
        return _code("http[s]://HOST[:PORT]")
    name = getattr(func, "__name__", repr(func))
    raise LookupError(f"no syntax known for the value parser {name}: describe it in docs/hooks.py")


def _range(low: float, high: float | None) -> str:
    return f"≥ {_number(low)}" if high is None else f"{_number(low)}{DASH}{_number(high)}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# -- Rendering -----------------------------------------------------------------------------


def _default_text(value: object) -> str:
    """A default as a table cell: a code span, or a note in italics."""
    if isinstance(value, _Note):
        return f"*{value}*"
    if value is None:
        return "*unset*"
    if isinstance(value, bool):
        return _code("on" if value else "off")
    if isinstance(value, int | float):
        return _code(_number(value))
    if isinstance(value, str):
        return _code(value) if value else "*empty*"
    if isinstance(value, tuple | frozenset) and not value:
        return "*none*"
    raise LookupError(f"no way to write the default {value!r}: add one to docs/hooks.py")


def _code(text: str) -> str:
    """A code span that survives a table cell: pipes as HTML entities, in HTML code."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "&#124;")
    return f"<code>{escaped}</code>"


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _cell(markdown: str) -> str:
    """Markdown safe inside a table cell: code spans with pipes made HTML, other pipes escaped."""
    out: list[str] = []
    pos = 0
    for m in _CODE_SPAN.finditer(markdown):
        out.append(markdown[pos : m.start()].replace("|", "\\|"))
        out.append(_code(m.group(1)) if "|" in m.group(1) else m.group(0))
        pos = m.end()
    out.append(markdown[pos:].replace("|", "\\|"))
    return "".join(out)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(head)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _value_cell(syntax: str, example: str, many: bool = False) -> str:
    """The value column: the syntax (markdown), whether one per line, an example."""
    return f"{syntax}{', one per line' if many else ''}<br>e.g. {_code(example)}"


_ALL_SCHEMES = frozenset({model.Scheme.HTTP, model.Scheme.HTTPS, model.Scheme.AJP})


def _applies_to(param: directives.Param) -> str:
    """Where a member parameter may be written, and for which member schemes."""
    if param.member_only:
        where = "`BalancerMember`"
    else:
        where = "`BalancerMember`, `ProxyPass`, `ProxyPassMatch`"
    if param.schemes == _ALL_SCHEMES:
        return f"{where}<br>any scheme"
    order = [model.Scheme.HTTP, model.Scheme.HTTPS, model.Scheme.AJP]
    return where + "<br>" + ", ".join(f"`{s.value}://`" for s in order if s in param.schemes)


class _Group(NamedTuple):
    """One table of the reference: its entries' names in code order, and how to draw it."""

    names: tuple[str, ...]
    head: tuple[str, ...]
    row: Callable[[str, str], list[str]]


def _directive_row(name: str, meaning: str) -> list[str]:
    d = directives.DIRECTIVE_BY_KEY[name.lower()]
    default = _default_text(_directive_default(d.name))
    value = _value_cell(_code(d.syntax), d.example, d.many)
    return [f"`{d.name}`", value, default, _cell(meaning)]


def _member_row(name: str, meaning: str) -> list[str]:
    p = directives.MEMBER_PARAMS[name]
    default = _default_text(_field_default(model.MemberParams, p.name))
    value = _value_cell(_syntax_of(p.parse), p.example)
    return [f"`{p.name}`", value, default, _applies_to(p), _cell(meaning)]


def _balancer_row(name: str, meaning: str) -> list[str]:
    p = directives.BALANCER_PARAMS[name]
    default = _default_text(_field_default(model.BalancerParams, p.name))
    return [f"`{p.name}`", _value_cell(_syntax_of(p.parse), p.example), default, _cell(meaning)]


def _groups() -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for kind in directives.SectionKind:
        names = tuple(d.name for d in directives.DIRECTIVES if d.section is kind)
        groups[f"directives {kind.name}"] = _Group(
            names, ("directive", "value", "default", "meaning"), _directive_row
        )
    groups["member-params"] = _Group(
        tuple(directives.MEMBER_PARAMS),
        ("parameter", "value", "default", "applies to", "meaning"),
        _member_row,
    )
    groups["balancer-params"] = _Group(
        tuple(directives.BALANCER_PARAMS),
        ("parameter", "value", "default", "meaning"),
        _balancer_row,
    )
    return groups


# -- The page side ---------------------------------------------------------------------------

_BLOCK = re.compile(
    r"^<!-- reference: (?P<group>[\w -]+?) -->\n(?P<body>.*?)^<!-- /reference -->$",
    re.MULTILINE | re.DOTALL,
)
_ITEM = re.compile(r"^- `(?P<name>[^`]+)`: (?P<text>.*)$")
_SOURCE_ONLY = re.compile(r"^<!-- source-only -->\n.*?^<!-- /source-only -->\n?", re.M | re.S)
_OUTSIDE_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\(\.\./[^)\s]+\)")


def _meanings(body: str, where: str) -> dict[str, str]:
    """``- `name`: meaning`` items, a meaning continuing on indented lines."""
    items: dict[str, str] = {}
    current: str | None = None
    for line in body.splitlines():
        if not line.strip():
            continue
        m = _ITEM.match(line)
        if m is not None:
            current = m.group("name")
            if current in items:
                log.warning("%s: %r is described twice", where, current)
            items[current] = m.group("text").strip()
        elif line.startswith(" ") and current is not None:
            items[current] += " " + line.strip()
        else:
            log.warning("%s: not a '- `name`: meaning' item: %r", where, line)
    return items


def _render(match: re.Match[str], page: str, groups: Mapping[str, _Group]) -> str:
    key = match.group("group").strip()
    group = groups.get(key)
    where = f"{page}, reference {key!r}"
    if group is None:
        log.warning("%s: no such table (known: %s)", where, ", ".join(groups))
        return match.group(0)
    meanings = _meanings(match.group("body"), where)
    for name in sorted(set(group.names) - set(meanings)):
        log.warning("%s: %r is in the code but not described on the page", where, name)
    for name in sorted(set(meanings) - set(group.names)):
        log.warning("%s: %r is described on the page but not in the code", where, name)
    try:
        rows = [group.row(name, meanings.get(name, "")) for name in group.names]
    except LookupError as e:
        log.warning("%s: %s", where, e)
        return match.group(0)
    return _table(group.head, rows) + "\n"


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the reference tables, drop source-only notes, unlink files outside the site."""
    markdown = _SOURCE_ONLY.sub("", markdown)
    if "<!-- reference: " in markdown:
        groups = _groups()
        name = page.file.src_uri
        markdown = _BLOCK.sub(lambda m: _render(m, name, groups), markdown)
    return _OUTSIDE_LINK.sub(lambda m: m.group("text"), markdown)
