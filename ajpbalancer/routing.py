"""Map a request path to a rule's target: ``ProxyPass`` prefixes and ``ProxyPassMatch`` regexes.

First match wins, in configuration order; ``!`` excludes. The path is normalised first
(dot-segments removed, as Apache does before matching), so ``/app/../admin`` cannot slip
past a prefix rule. Captures substituted into a ``ProxyPassMatch`` target land only in
its path (the config refuses ``$n`` elsewhere) and can never carry space or control bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ajpbalancer.config import URL, ProxyRule, RuleKind
from ajpbalancer.errors import AJPBalancerError

_DOT = re.compile(r"%2[eE]")
_BACKREF = re.compile(r"\$([0-9])")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


class RoutingError(AJPBalancerError):
    """The request target cannot be routed safely; the client gets ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The rule that matched and the request-target to send to its target."""

    rule: ProxyRule
    target: URL
    path: str

    def request_target(self, query: str | None) -> str:
        return self.path if query is None else f"{self.path}?{query}"


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, after decoding ``%2e`` (which Tomcat would decode too)."""
    if "." not in path and "%" not in path:
        return path
    path = _DOT.sub(".", path)
    out: list[str] = []
    segments = path.split("/")
    for i, raw in enumerate(segments):
        last = i == len(segments) - 1
        # Tomcat drops ";params" from each segment before resolving dot-segments, so
        # "..;x" is ".." to a member: treat it as one here too.
        seg = raw.split(";", 1)[0] if ";" in raw else raw
        if seg not in (".", ".."):
            seg = raw
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def split_target(target: str) -> tuple[str, str | None]:
    """Split an origin-form request-target into a normalised path and the query (or None)."""
    if not target.startswith("/"):
        raise RoutingError("request target must be a path")
    path, sep, query = target.partition("?")
    return remove_dot_segments(path), (query if sep else None)


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

    def match(self, path: str) -> RouteMatch | None:
        """The first rule matching ``path`` (normalised); None if none or excluded by ``!``."""
        for rule in self.rules:
            if rule.kind is RuleKind.PREFIX:
                rest = _prefix_match(rule.pattern, path)
                if rest is None:
                    continue
                if rule.target is None:
                    return None
                mapped = rule.target.path + rest
            else:
                assert rule.regex is not None
                m = rule.regex.search(path)
                if m is None:
                    continue
                if rule.target is None:
                    return None
                mapped = _substitute(rule.target.path, m, path)
            if not mapped.startswith("/"):
                # "balancer://c$1" with $1 = "x" must not become host "cx": it is a path.
                mapped = "/" + mapped
            if _UNSAFE.search(mapped) is not None:
                raise RoutingError("unsafe characters in the mapped path")
            return RouteMatch(rule, rule.target, mapped)
        return None


def _substitute(template: str, m: re.Match[str], path: str) -> str:
    """Apache's rule: ``$n`` from the match; a target without back-references gets the path."""
    if "$" not in template:
        return template + path

    def group(g: re.Match[str]) -> str:
        n = int(g.group(1))
        if n > (m.re.groups or 0):
            return ""
        return m.group(n) or ""

    return _BACKREF.sub(group, template)
