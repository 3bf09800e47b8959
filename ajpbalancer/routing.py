"""Map a request path to a rule's target: ``ProxyPass`` prefixes and ``ProxyPassMatch`` regexes.

First match wins, in configuration order; ``!`` excludes. Rules see the path as Apache
httpd does before its ``ProxyPass`` mapping (:func:`normalise`): unreserved characters
percent-decoded, slashes merged (``MergeSlashes on``), dot-segments removed, then every
escape decoded; ``%2F`` and ``%00`` are refused with 404 as Apache does, a malformed
escape and a path climbing above the root with 400. Decoded bytes are characters of
their own (Latin-1), as PCRE sees them in Apache; a prefix written in the config with
escapes or non-ASCII characters is decoded the same way.

Apache does not look at ``;parameters``; Tomcat strips them from every segment before
mapping. So a ``!`` exclusion also applies to the path as Tomcat will map it
(``/secret;x/`` is ``/secret/``), and ``..;x`` is a dot-segment to us as it is to
Tomcat. Rules that forward match as Apache does and keep the parameters
(``;jsessionid=`` carries a sticky route).

What goes to the member is what Apache sends: the decoded path re-encoded (everything
but letters, digits, ``/`` and ``-._~!$&'()*+,;:=@`` as ``%XX`` in upper case).
Captures substituted into a ``ProxyPassMatch`` target land only in its path (the config
refuses ``$n`` elsewhere) and are encoded the same way. ``ProxyPassMatch`` patterns run
in bounded time (:mod:`ajpbalancer.patterns`); one that takes too long gives 500.

A path with nothing to decode, merge, remove or encode (most of them) is recognised by
one character-class search and two substring tests and used as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from twisted.logger import Logger

from ajpbalancer.config import URL, ProxyRule, RuleKind
from ajpbalancer.errors import AJPBalancerError
from ajpbalancer.patterns import MATCH_BUDGET, Engine, Groups, MatchTimeoutError

log = Logger()

_BACKREF = re.compile(r"\$([0-9])")

# A path of only these characters, without "//" or "/.", is already what normalise()
# makes of it: no escape, no ";parameters", no dot-segment, nothing to encode.
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,:=@/]")
_NOT_ENCODED = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;:=@/]")  # Apache's enc_path set
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_ESCAPE = re.compile(r"%(2[Ff]|00)")
_VISIBLE = re.compile(r"[\x21-\x7e]*")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class RoutingError(AJPBalancerError):
    """The request target cannot be routed safely; the client gets ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class RequestPath(NamedTuple):
    """A request path as the rules see it (made by :func:`normalise`).

    ``decoded`` is Apache's view (its ``r->uri``): normalised and percent-decoded, one
    character per byte (Latin-1). ``tomcat`` is the path a Tomcat member maps (each
    segment's ``;parameters`` dropped, ``\\`` as ``/``, normalised again); it is the same
    object as ``decoded`` when the two cannot differ. ``plain`` is true when ``decoded``
    needs no re-encoding to be forwarded.
    """

    decoded: str
    tomcat: str
    plain: bool


@dataclass(slots=True, init=False, unsafe_hash=True)
class RouteMatch:
    """The rule that matched and the request-target to send to its target (read-only, with
    a compiled constructor: see :mod:`ajpbalancer.ajp._events`)."""

    rule: Final[ProxyRule]
    target: Final[URL]
    path: Final[str]

    def __init__(self, rule: ProxyRule, target: URL, path: str) -> None:
        self.rule = rule
        self.target = target
        self.path = path

    def request_target(self, query: str | None) -> str:
        return self.path if query is None else f"{self.path}?{query}"


def split_target(target: str) -> tuple[str, str | None]:
    """Split an origin-form request-target into its path, as sent, and the query (or None).

    :meth:`Router.match` normalises the path; the query is forwarded untouched.
    """
    if not target.startswith("/"):
        raise RoutingError("request target must be a path")
    path, sep, query = target.partition("?")
    return path, (query if sep else None)


def normalise(path: str) -> RequestPath:
    """``path`` (raw, starting with ``/``) as the rules see it; see the module docstring.

    Raises :class:`RoutingError` with 400 for a malformed escape, a path above the root
    or a byte that is not visible ASCII, with 404 for ``%2F`` and ``%00``.
    """
    decoded, plain = _apache_view(path)
    return RequestPath(decoded, _tomcat_view(decoded), plain)


def _apache_view(path: str) -> tuple[str, bool]:
    """The decoded path and whether it forwards as it is (see :func:`normalise`)."""
    if _NOT_PLAIN.search(path) is None and "//" not in path and "/." not in path:
        return path, True  # the hot path: most paths are plain
    if _VISIBLE.fullmatch(path) is None:
        raise RoutingError("invalid character in the request path")
    escaped = "%" in path
    if escaped and _BAD_ESCAPE.search(path) is not None:
        raise RoutingError("invalid percent-escape in the request path")
    if escaped or "//" in path or "/." in path:
        segments = _resolve(path.split("/")[1:], decode=escaped)
        if escaped and _FORBIDDEN_ESCAPE.search(path) is not None:
            # Apache (AllowEncodedSlashes off): 404 for %2F, and for %00 (after any 400).
            raise RoutingError("encoded slash or NUL in the request path", 404)
        decoded = _join(segments)
    else:  # only ";parameters" or characters to encode: nothing to merge, remove or decode
        decoded = path
    return decoded, _NOT_ENCODED.search(decoded) is None


def _tomcat_view(decoded: str) -> str:
    """``decoded`` as Tomcat maps it; ``decoded`` itself when that is the same path."""
    if ";" not in decoded and "\\" not in decoded:
        return decoded
    stripped = [s.partition(";")[0] for s in decoded.replace("\\", "/").split("/")[1:]]
    tomcat = _join(_resolve(stripped, decode=False, tomcat=True))
    return decoded if tomcat == decoded else tomcat


def _resolve(segments: list[str], *, decode: bool, tomcat: bool = False) -> list[str]:
    """Merge empty segments and remove dot-segments; a final ``""`` keeps a "/".

    With ``decode``, escapes are decoded first. A ``..`` above the root is refused (400),
    as Apache does, except in ``tomcat``'s view of a decoded path, where it stays at the
    root.
    A segment is a dot-segment when what precedes its first ``;`` is ``.`` or ``..``,
    as Tomcat reads it (``;jsessionid=…`` alone is a segment, kept).
    """
    out: list[str] = []
    last = len(segments) - 1
    for i, raw in enumerate(segments):
        segment = _ESCAPE.sub(_decode_escape, raw) if decode and "%" in raw else raw
        name = segment.partition(";")[0] if ";" in segment else segment
        if segment == "" or name in (".", ".."):
            if name == "..":
                if out:
                    out.pop()
                elif not tomcat:
                    raise RoutingError("request path climbs above the root")
            if i == last:
                out.append("")
            continue
        out.append(segment)
    return out


def _decode_escape(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 16))


def _join(segments: list[str]) -> str:
    return "/" + "/".join(segments)


def encode(decoded: str) -> str:
    """A decoded path (Latin-1) as Apache forwards it: ``%XX`` (upper case) where needed."""
    return _NOT_ENCODED.sub(_encode_char, decoded)


def _encode_char(m: re.Match[str]) -> str:
    return f"%{ord(m.group()):02X}"


def _prefix_match(prefix: str, path: str) -> str | None:
    """The rest of ``path`` after ``prefix``, matching whole path segments only."""
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    if rest and not prefix.endswith("/") and not rest.startswith("/"):
        return None
    return rest


class Router:
    """The ordered rules of one frontend."""

    def __init__(self, rules: Sequence[ProxyRule]) -> None:
        self.rules = tuple(rules)
        # Prefixes compare with decoded paths: decode what the config percent-encodes, and
        # take non-ASCII as its UTF-8 bytes (one character each), as the paths are. Target
        # paths go out as written, non-ASCII percent-encoded (the request line is ASCII).
        self._entries = tuple(
            (
                rule,
                _decoded_prefix(rule.pattern) if rule.kind is RuleKind.PREFIX else "",
                "" if rule.target is None else _ascii_path(rule.target.path),
            )
            for rule in self.rules
        )
        backtracking = sum(
            1
            for rule in self.rules
            if rule.regex is not None and rule.regex.engine is Engine.BACKTRACKING
        )
        # Each backtracking-engine rule gets its share, so one request stays within budget.
        self._timeout = MATCH_BUDGET / max(1, backtracking)

    def match(self, path: str) -> RouteMatch | None:
        """The first rule matching the request path ``path`` (as sent, normalised here);
        None if none, or if a ``!`` rule matches.

        An exclusion matches if it matches Apache's view of the path or Tomcat's.
        Raises :class:`RoutingError` for a path :func:`normalise` refuses, and with 500
        when a pattern takes too long.
        """
        # Tomcat's view is only needed when an exclusion misses Apache's: computed then
        # ("" until then; None when it is Apache's: the path has no ";" and no "\\").
        tomcat: str | None
        if _NOT_PLAIN.search(path) is None and "//" not in path and "/." not in path:
            uri, plain, tomcat = path, True, None  # the hot path, as _apache_view() says
        else:
            uri, plain = _apache_view(path)
            tomcat = None if ";" not in uri and "\\" not in uri else ""
        subject: bytes | None = None
        for rule, prefix, target_path in self._entries:
            if rule.kind is RuleKind.PREFIX:
                rest = _prefix_match(prefix, uri)
                if rest is None:
                    if rule.target is None and tomcat is not None:
                        tomcat = tomcat or _tomcat_view(uri)
                        if _prefix_match(prefix, tomcat) is not None:
                            return None
                    continue
                if rule.target is None:
                    return None
                mapped = target_path + (rest if plain else encode(rest))
            else:
                if subject is None:
                    subject = uri.encode("latin-1")
                groups = self._search(rule, subject)
                if groups is None:
                    if rule.target is None and tomcat is not None:
                        tomcat = tomcat or _tomcat_view(uri)
                        if self._search(rule, tomcat.encode("latin-1")) is not None:
                            return None
                    continue
                if rule.target is None:
                    return None
                mapped = _substitute(target_path, groups, uri)
            if not mapped.startswith("/"):
                # "balancer://c$1" with $1 = "x" must not become host "cx": it is a path.
                mapped = "/" + mapped
            return RouteMatch(rule, rule.target, mapped)
        return None

    def _search(self, rule: ProxyRule, subject: bytes) -> Groups | None:
        assert rule.regex is not None
        try:
            return rule.regex.search(subject, self._timeout)
        except MatchTimeoutError as e:
            log.error(
                "{where}: ProxyPassMatch '{pattern}': {error}; answered 500",
                where=str(rule.where),
                pattern=rule.pattern,
                error=str(e),
            )
            raise RoutingError("the request path took too long to match", 500) from None


def _decoded_prefix(prefix: str) -> str:
    latin1 = prefix.encode("utf-8").decode("latin-1")
    return _ESCAPE.sub(_decode_escape, latin1) if "%" in latin1 else latin1


def _ascii_path(path: str) -> str:
    """A configured target path with its non-ASCII characters as UTF-8 ``%XX``."""
    if path.isascii():
        return path
    return _NON_ASCII.sub(_encode_char, path.encode("utf-8").decode("latin-1"))


def _substitute(template: str, groups: Groups, path: str) -> str:
    """Apache's rule: ``$n`` from the match; a target without back-references gets the path.

    What comes from the request is encoded as Apache forwards it.
    """
    if "$" not in template:
        return template + encode(path)

    def group(g: re.Match[str]) -> str:
        n = int(g.group(1))
        value = groups[n] if n < len(groups) else None
        return "" if value is None else encode(value)

    return _BACKREF.sub(group, template)
