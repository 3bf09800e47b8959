"""Parse single configuration values (words, numbers, durations, flags, URLs) or say why not.

Every parser takes the name to print and the text as written, returns the typed value or
raises :class:`InvalidValueError` whose message states the allowed values and the value given.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from ajpbalancer.config._model import STATUS_FLAGS, URL, Scheme


class InvalidValueError(Exception):
    """A value is not acceptable; ``str(self)`` is the message for the Problem."""


MAX_SECONDS = 86400.0
"""The longest duration any directive or parameter takes: one day. Apache reads its
times into a C ``int`` of seconds (up to 68 years); a day is ajpbalancer's own bound,
beyond any sensible timeout, retry or check interval."""

MAX_WORKERS = 256
"""The most worker processes ``workers`` may start (``auto`` too): ajpbalancer's own bound
(Apache's ``ServerLimit`` is 16 by default); more processes than cores gain nothing."""

MIN_POSITIVE_SECONDS = 0.001
"""The shortest duration a time that must be more than 0 may be: 1 ms, Apache's
minimum for ``connectiontimeout`` and ``ping``."""


_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_INTEGER = re.compile(r"\d+")
_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s)?", re.IGNORECASE)
_SCHEME_PART = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.DOTALL)
_BACKREF = re.compile(r"\$(\d)")
_ONLY_BACKREFS = re.compile(r"(?:\$\d)+")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
# RFC 9110 token characters: cookie and URL parameter names.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

URL_SCHEMES = tuple(s.value for s in Scheme)


def split_words(text: str) -> list[str]:
    """Split a directive's arguments as Apache does (``ap_getword_conf``).

    Words are separated by whitespace; a word that starts with ``"`` or ``'`` runs to the
    matching quote, and a backslash before that quote character keeps it in the word.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        quote = text[i]
        if quote in "\"'":
            j = i + 1
            chars: list[str] = []
            while j < n and text[j] != quote:
                if text[j] == "\\" and j + 1 < n and text[j + 1] == quote:
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= n:
                raise InvalidValueError(f"unterminated quote {quote} in {text!r}")
            words.append("".join(chars))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words


def on_off(name: str, text: str) -> bool:
    """Apache's flag: ``On`` or ``Off``, any case."""
    folded = text.lower()
    if folded == "on":
        return True
    if folded == "off":
        return False
    raise InvalidValueError(f"{name} must be On or Off, got {text!r}")


def _number(x: float) -> str:
    """An integer in full (``1048576``, not ``1.04858e+06``), a fraction as ``%g``."""
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range_text(low: float, high: float | None, unit: str = "") -> str:
    if high is None:
        return f"at least {_number(low)}{unit}"
    return f"from {_number(low)} to {_number(high)}{unit}"


def integer(name: str, text: str, *, low: int, high: int | None = None) -> int:
    """A decimal integer within ``low``..``high`` (inclusive; no upper bound if None)."""
    allowed = _range_text(low, high)
    if _INTEGER.fullmatch(text) is None:
        raise InvalidValueError(f"{name} must be an integer {allowed}, got {text!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise InvalidValueError(f"{name} must be an integer {allowed}, got {text!r}")
    return value


def decimal(name: str, text: str, *, low: float, high: float) -> float:
    """A plain decimal number (``2`` or ``2.5``; no sign, exponent, inf or nan) in range."""
    allowed = _range_text(low, high)
    if _DECIMAL.fullmatch(text) is None:
        raise InvalidValueError(f"{name} must be a number {allowed}, got {text!r}")
    value = float(text)
    if not low <= value <= high:
        raise InvalidValueError(f"{name} must be a number {allowed}, got {text!r}")
    return value


def seconds(
    name: str,
    text: str,
    *,
    low: float,
    exclusive: bool = False,
    allow_ms: bool = False,
    high: float = MAX_SECONDS,
) -> float:
    """A duration in seconds, at least ``low`` (more than ``low`` if ``exclusive``, and
    then at least 1 ms), at most ``high`` (one day unless said otherwise).

    An ``s`` suffix is always allowed; with ``allow_ms`` the number may be milliseconds
    with an ``ms`` suffix, as Apache's ``ap_timeout_parameter_parse`` allows.
    """
    if exclusive:
        allowed = f"more than {low:g} seconds"
    elif low == 0:
        allowed = "0 seconds or more"
    else:
        allowed = f"at least {low:g} second{'' if low == 1 else 's'}"
    form = "a number of seconds" + (" (or milliseconds with 'ms')" if allow_ms else "")
    match = _DURATION.fullmatch(text)
    unit = None if match is None else (match.group("unit") or "s").lower()
    if match is None or (unit == "ms" and not allow_ms):
        raise InvalidValueError(f"{name} must be {form} {allowed}, got {text!r}")
    value = float(match.group("number"))
    if unit == "ms":
        value /= 1000.0
    if value < low or (exclusive and value == low):
        raise InvalidValueError(f"{name} must be {allowed}, got {text!r}")
    if exclusive and low == 0 and value < MIN_POSITIVE_SECONDS:
        raise InvalidValueError(f"{name} must be at least 1 ms, got {text!r}")
    if value > high:
        raise InvalidValueError(
            f"{name} must be at most {high:g} seconds{_in_days(high)}, got {text!r}"
        )
    return value


def _in_days(limit: float) -> str:
    return " (one day)" if limit == MAX_SECONDS else ""


def one_of(name: str, text: str, choices: Iterable[str], *, upper: bool = False) -> str:
    """One of ``choices``, compared case-insensitively, returned in the choices' spelling."""
    options = tuple(choices)
    for choice in options:
        if choice.lower() == text.lower():
            return choice.upper() if upper else choice
    raise InvalidValueError(f"{name} {text!r} is not one of {', '.join(options)}")


def nonempty(name: str, text: str) -> str:
    """Any text without control characters (routes, secrets, paths)."""
    if not text or re.search(r"[\x00-\x1f\x7f]", text):
        raise InvalidValueError(
            f"{name} must be non-empty text without control characters, got {text!r}"
        )
    return text


def token(name: str, text: str) -> str:
    """An HTTP token: what a route or a cookie name may be made of."""
    if _TOKEN.fullmatch(text) is None:
        raise InvalidValueError(
            f"{name} must be a token (letters, digits and !#$%&'*+.^_`|~-), got {text!r}"
        )
    return text


def path(name: str, text: str) -> str:
    """A URL path: starts with ``/``, no whitespace or control characters."""
    if not text.startswith("/") or _UNSAFE.search(text):
        raise InvalidValueError(f"{name} must be a path starting with '/', got {text!r}")
    return text


def status(name: str, text: str) -> frozenset[str]:
    """Apache's member status: letters, each set by default or after ``+``, cleared after ``-``."""
    flags: set[str] = set()
    setting = True
    pending_sign = False
    for char in text:
        if char in "+-":
            setting = char == "+"
            pending_sign = True
            continue
        letter = char.upper()
        if letter not in STATUS_FLAGS:
            raise InvalidValueError(
                f"{name} letter {char!r} in {text!r} is not one of {' '.join(STATUS_FLAGS)}"
            )
        pending_sign = False
        if setting:
            flags.add(letter)
        else:
            flags.discard(letter)
    if pending_sign or not text:
        raise InvalidValueError(f"{name} {text!r} ends without a letter (e.g. +H, D, S-E)")
    return frozenset(flags)


def sticky_names(name: str, text: str) -> tuple[str, ...]:
    """``stickysession``: one or more tokens separated by ``|``."""
    names = tuple(text.split("|"))
    for part in names:
        if _TOKEN.fullmatch(part) is None:
            raise InvalidValueError(f"{name} must be tokens separated by '|', got {text!r}")
    return names


def separator(name: str, text: str) -> str | None:
    """``stickysessionsep``: a single visible character, or ``Off`` for none."""
    if text.lower() == "off":
        return None
    if len(text) != 1 or _UNSAFE.match(text):
        raise InvalidValueError(f"{name} must be a single character or Off, got {text!r}")
    return text


def status_codes(name: str, text: str) -> frozenset[int]:
    """``failonstatus``: comma-separated HTTP status codes 100 to 599."""
    codes: set[int] = set()
    for part in text.split(","):
        if _INTEGER.fullmatch(part) is None or not 100 <= int(part) <= 599:
            raise InvalidValueError(
                f"{name} must be status codes from 100 to 599 separated by commas, got {text!r}"
            )
        codes.add(int(part))
    return frozenset(codes)


def protocols(name: str, text: str) -> tuple[str, ...]:
    """``upgrade``: protocols a member may switch to, comma-separated (RFC 9110's
    ``protocol-name[/protocol-version]``), or ``*`` for any. Lower-cased: they are
    compared without regard to case, as Apache compares them."""
    if text == "*":
        return ("*",)
    names: list[str] = []
    for part in text.split(","):
        item = part.strip()
        proto, slash, version = item.partition("/")
        if (
            _TOKEN.fullmatch(proto) is None
            or (slash and _TOKEN.fullmatch(version) is None)
            or item == "*"
        ):
            raise InvalidValueError(
                f"{name} must be protocol names separated by commas (websocket) or *, got {text!r}"
            )
        if item.lower() not in names:
            names.append(item.lower())
    return tuple(names)


def upgrade_url(name: str, text: str) -> URL:
    """``upgradeurl``: ``http://HOST[:PORT]`` or ``https://…`` of a node's HTTP connector,
    without a path (the request's own path goes there)."""
    parsed = url(text)
    if parsed.scheme not in (Scheme.HTTP, Scheme.HTTPS) or parsed.path not in ("", "/"):
        raise InvalidValueError(
            f"{name} must be http://HOST:PORT or https://HOST:PORT (no path), got {text!r}"
        )
    return URL(parsed.scheme, parsed.host, parsed.port, "")


def name(kind: str, text: str) -> str:
    """A frontend or balancer name: letters, digits, ``.``, ``_`` and ``-``."""
    if _NAME.fullmatch(text) is None:
        raise InvalidValueError(
            f"{kind} name {text!r} must be letters, digits, '.', '_' or '-' "
            "(not starting or ending with '.' or '-')"
        )
    return text


def backrefs(text: str) -> list[int]:
    """The numbers of the ``$n`` back-references in ``text``, in order."""
    return [int(m.group(1)) for m in _BACKREF.finditer(text)]


def url(text: str, *, allow_backrefs: bool = False) -> URL:
    """``scheme://host[:port][/path]`` with scheme http, https, ajp or balancer.

    With ``allow_backrefs`` (a ``ProxyPassMatch`` target), ``$n`` may appear in the path
    only; back-references written right after the authority
    (``balancer://mycluster$1``) begin the path. A back-reference anywhere in the scheme,
    host or port is refused: a client-controlled capture must never choose the backend.
    """
    bad = f"invalid URL {text!r}"
    match = _SCHEME_PART.fullmatch(text)
    if allow_backrefs:
        head = text.split("/", 3)
        authority_part = "/".join(head[:3]) if len(head) > 2 else text
        found = _BACKREF.search(authority_part)
        if found is not None:
            before, tail = authority_part[: found.start()], authority_part[found.start() :]
            if (
                match is None
                or _ONLY_BACKREFS.fullmatch(tail) is None
                or before.endswith(("/", ":", "["))
            ):
                raise InvalidValueError(
                    f"back-reference {found.group(0)} in the scheme, host or port of {text!r}: "
                    "a client-controlled capture must not choose the backend; "
                    "use $1…$9 in the path only"
                )
    if match is None:
        raise InvalidValueError(f"{bad}: expected scheme://host[:port][/path]")
    scheme_text = match.group("scheme").lower()
    if scheme_text not in URL_SCHEMES:
        raise InvalidValueError(
            f"{bad}: scheme {scheme_text!r} is not one of {', '.join(URL_SCHEMES)}"
        )
    scheme = Scheme(scheme_text)
    rest = match.group("rest")
    if "#" in rest:
        raise InvalidValueError(f"{bad}: a fragment (#…) is not allowed")
    if "?" in rest:
        raise InvalidValueError(f"{bad}: a query (?…) is not allowed")
    authority, slash, tail = rest.partition("/")
    url_path = slash + tail
    if allow_backrefs:
        found = _BACKREF.search(authority)
        if found is not None:
            url_path = authority[found.start() :] + url_path
            authority = authority[: found.start()]
    if "@" in authority:
        raise InvalidValueError(f"{bad}: user information (user@) is not allowed")
    if _UNSAFE.search(url_path):
        raise InvalidValueError(f"{bad}: the path has whitespace or control characters")
    host, port = _authority(bad, authority)
    if scheme is Scheme.BALANCER:
        if port is not None:
            raise InvalidValueError(f"{bad}: a balancer:// URL has no port")
        try:
            host = name("balancer", host).lower()
        except InvalidValueError as e:
            raise InvalidValueError(f"{bad}: {e}") from None
    return URL(scheme, host, port, url_path)


def _authority(bad: str, authority: str) -> tuple[str, int | None]:
    """Host (lower-cased, IPv6 without brackets) and port of ``host[:port]``."""
    port_text: str | None = None
    if authority.startswith("["):
        inside, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise InvalidValueError(f"{bad}: missing ']' after the IPv6 address")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise InvalidValueError(f"{bad}: {inside!r} is not an IPv6 address") from None
        host = inside
        if after:
            if not after.startswith(":"):
                raise InvalidValueError(f"{bad}: expected ':port' after the IPv6 address")
            port_text = after[1:]
    else:
        if authority.count(":") > 1:
            raise InvalidValueError(f"{bad}: an IPv6 address must be written in brackets, [::1]")
        host, colon, after = authority.partition(":")
        if colon:
            port_text = after
        if not host:
            raise InvalidValueError(f"{bad}: the host is missing")
        if _HOSTNAME.fullmatch(host) is None:
            raise InvalidValueError(f"{bad}: {host!r} is not a host name or address")
    port: int | None = None
    if port_text is not None:
        if _INTEGER.fullmatch(port_text) is None or not 1 <= int(port_text) <= 65535:
            raise InvalidValueError(f"{bad}: port must be from 1 to 65535, got {port_text!r}")
        port = int(port_text)
    return host.lower(), port
