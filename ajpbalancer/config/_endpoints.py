"""Server endpoint descriptions (``listen``, ``admin``): their shape, port and listen backlog.

A description is read as Twisted's ``serverFromString`` reads it (``:`` separates
arguments, ``key=value`` ones are options, ``\\`` escapes the next character), so that
what the configuration checks is what Twisted will listen on. :func:`endpoint_spec`
checks what can be known from the text alone (the port is a port, the backlog a sane
number, a ``unix:`` endpoint has a path that fits a socket address) and says:

- which *address* the endpoint listens on (:attr:`EndpointSpec.address`: everything but
  the backlog), so that a reload that changes only the backlog keeps the socket;
- the backlog it listens with: as given, else :data:`DEFAULT_BACKLOG` (Apache's), where
  Twisted's own default would be 50 (:meth:`EndpointSpec.endpoint`).

Pure text: nothing here touches the file system or the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from ajpbalancer.config._values import InvalidValueError

DEFAULT_BACKLOG = 511
"""Apache's ``ListenBacklog`` default (``DEFAULT_LISTENBACKLOG``); Twisted's is 50."""

MAX_BACKLOG = 65535
"""The largest ``backlog=`` accepted (Linux caps it at ``net.core.somaxconn`` anyway)."""

UNIX_PATH_MAX = 107
"""Bytes a ``unix:`` socket path may have (``sun_path`` is 108 with its NUL)."""

# Kinds with a listen backlog: the index of ``backlog`` among the positional arguments
# after the kind, as Twisted's parsers take them (``tcp:PORT:INTERFACE:BACKLOG``,
# ``ssl:PORT:KEY:CERT:METHOD:INTERFACE:BACKLOG``, ``unix:PATH:MODE:BACKLOG``,
# ``tcp6:PORT:BACKLOG``).
_BACKLOG_POSITION = {"tcp": 2, "ssl": 5, "unix": 2, "tcp6": 1}
_PORT_KINDS = frozenset({"tcp", "ssl", "tcp6"})


def _split(description: str) -> list[list[str]]:
    """Twisted's tokenizer: ``:``-separated fields, each ``[value]`` or ``[key, value]``."""
    fields: list[list[str]] = []
    current: list[str] = []
    word = ""
    chars = iter(description)
    ops = ":="
    for char in chars:
        if char in ops:
            current.append(word)
            word = ""
            if char == ":":
                fields.append(current)
                current = []
                ops = ":="
            else:
                ops = ":"  # after key=, a value may hold '='
        elif char == "\\":
            word += next(chars, "")
        else:
            word += char
    current.append(word)
    fields.append(current)
    return fields


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """A parsed server endpoint description (see the module docstring)."""

    description: str
    kind: str
    """The endpoint type, lower-cased (``tcp``, ``ssl``, ``unix``, ``systemd``…)."""
    args: tuple[str, ...]
    """Positional arguments after the kind, the backlog left out."""
    options: frozenset[tuple[str, str]]
    """``key=value`` arguments, the backlog left out."""
    backlog: int | None
    """The backlog the description gives, None if it gives none."""

    @property
    def address(self) -> tuple[str, tuple[str, ...], frozenset[tuple[str, str]]]:
        """What identifies the listening socket: the description without its backlog."""
        return (self.kind, self.args, self.options)

    @property
    def listen_backlog(self) -> int | None:
        """The backlog this endpoint listens with; None for kinds that have none."""
        if self.kind not in _BACKLOG_POSITION:
            return None
        return DEFAULT_BACKLOG if self.backlog is None else self.backlog

    def endpoint(self) -> str:
        """The description to listen with: ``backlog=511`` added when none is given."""
        if self.backlog is None and self.kind in _BACKLOG_POSITION:
            return f"{self.description}:backlog={DEFAULT_BACKLOG}"
        return self.description


def endpoint_spec(description: str) -> EndpointSpec:
    """Parse ``description``; :class:`InvalidValueError` says what is wrong with it."""
    fields = _split(description)
    kind_field = fields[0]
    if len(kind_field) != 1 or not kind_field[0]:
        raise InvalidValueError(f"invalid endpoint {description!r}: it must start with a type")
    kind = kind_field[0].lower()
    args = [f[0] for f in fields[1:] if len(f) == 1]
    options = {f[0]: f[1] for f in fields[1:] if len(f) == 2}
    backlog_text = options.pop("backlog", None)
    position = _BACKLOG_POSITION.get(kind)
    if position is not None and len(args) > position:
        if backlog_text is not None:
            raise InvalidValueError(f"invalid endpoint {description!r}: backlog given twice")
        backlog_text = args.pop(position)
    backlog = None
    if backlog_text is not None and position is not None:
        backlog = _number(description, "backlog", backlog_text, 1, MAX_BACKLOG)
    if kind in _PORT_KINDS:
        if not args or not args[0]:
            raise InvalidValueError(f"invalid endpoint {description!r}: the port is missing")
        _number(description, "port", args[0], 0, 65535)
    if kind == "unix":
        path = args[0] if args else ""
        if not path:
            raise InvalidValueError(
                f"invalid endpoint {description!r}: a unix: endpoint needs a socket path "
                "(unix:/run/ajpbalancer.sock)"
            )
        if len(path.encode("utf-8", "surrogateescape")) > UNIX_PATH_MAX:
            raise InvalidValueError(
                f"invalid endpoint {description!r}: a socket path has at most {UNIX_PATH_MAX} bytes"
            )
    return EndpointSpec(description, kind, tuple(args), frozenset(options.items()), backlog)


def _number(description: str, what: str, text: str, low: int, high: int) -> int:
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidValueError(
            f"invalid endpoint {description!r}: {what} must be an integer from {low} to "
            f"{high}, got {text!r}"
        )
    return int(text)
