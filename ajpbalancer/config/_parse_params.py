"""Member parameters (``key=value`` words of a ``BalancerMember`` or ``ProxyPass`` line):
each key once, looked up in the parameter table, its value parsed and checked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import BALANCER_PARAMS, MEMBER_PARAMS, Param
from ajpbalancer.config._model import MemberParams, Scheme
from ajpbalancer.config._parse_state import ParseState, did_you_mean


class ParamsParser(ParseState):
    """Parses the ``key=value`` parameters of members and of ``ProxySet``."""

    def key_values(
        self,
        directive: str,
        line: int,
        words: list[str],
        seen: dict[str, int],
        repeated: str,
    ) -> list[tuple[str, str]]:
        """``key=value`` words with non-empty values, each key once; the rest is reported."""
        pairs: list[tuple[str, str]] = []
        for word in words:
            key, equals, text = word.partition("=")
            if not equals or not key:
                self.problem(line, directive, f"expected key=value, got {word!r}")
                continue
            folded = key.lower()
            if folded in seen:
                self.problem(line, directive, f"parameter {folded!r} {repeated} {seen[folded]}")
                continue
            seen[folded] = line
            if not text:
                self.problem(
                    line, directive, f"parameter {folded!r} needs a value ({folded}=VALUE)"
                )
                continue
            pairs.append((key, text))
        return pairs

    def param_value(
        self, directive: str, line: int, param: Param, text: str
    ) -> tuple[object] | tuple[()]:
        """The parsed value in a 1-tuple (a value may be None), or ``()`` if reported invalid."""
        try:
            return (param.parse(param.name, text),)
        except v.InvalidValueError as e:
            self.problem(line, directive, str(e))
            return ()

    def member_params(
        self,
        directive: str,
        line: int,
        scheme: Scheme,
        words: list[str],
        *,
        balancer_member: bool,
    ) -> MemberParams:
        # Any: field name -> value of that field's type, checked by the parameter table.
        values: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for key, text in self.key_values(
            directive, line, words, seen, "given twice, first at line"
        ):
            param = MEMBER_PARAMS.get(key.lower())
            if param is None:
                if key.lower() in BALANCER_PARAMS:
                    message = (
                        f"{key.lower()!r} is a balancer parameter: set it with ProxySet in "
                        "[balancer://NAME]"
                    )
                else:
                    message = f"unknown parameter {key!r}{did_you_mean(key, MEMBER_PARAMS)}"
                self.problem(line, directive, message)
                continue
            parsed = self.param_value(directive, line, param, text)
            if not parsed:
                continue
            value = parsed[0]
            if param.member_only and not balancer_member:
                self.problem(line, directive, f"{param.name} only applies to a BalancerMember")
                continue
            if scheme not in param.schemes:
                allowed = " or ".join(sorted(f"{s.value}://" for s in param.schemes))
                self.problem(
                    line,
                    directive,
                    f"{param.name} is only for {allowed} URLs, not {scheme.value}://",
                )
                continue
            if param.check is not None:
                message_or_none = param.check(value, scheme)
                if message_or_none is not None:
                    self.problem(line, directive, message_or_none)
                    continue
            values[param.name] = value
        for name in list(values):
            missing = [n for n in MEMBER_PARAMS[name].needs if n not in seen]
            if missing:
                needed = " and ".join(f"{n}=…" for n in missing)
                self.problem(line, directive, f"{name} has no effect without {needed}")
        self.check_upgrade(directive, line, scheme, seen)
        return replace(MemberParams(), **values)

    def check_upgrade(
        self,
        directive: str,
        line: int,
        scheme: Scheme,
        seen: dict[str, int],
    ) -> None:
        """``upgrade`` on an ``ajp://`` member needs ``upgradeurl``: AJP13 cannot carry
        an upgrade. (An ``upgradeurl`` already reported invalid is not reported again
        as missing.)"""
        if scheme is Scheme.AJP and "upgrade" in seen and "upgradeurl" not in seen:
            self.problem(
                line,
                directive,
                "upgrade on an ajp:// member needs upgradeurl=http://HOST:PORT "
                "(the node's HTTP connector): AJP13 cannot carry an upgrade",
            )
