"""A ``[balancer://NAME]`` section: its members and its ``ProxySet`` parameters."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import BALANCER_PARAMS, MEMBER_PARAMS, SectionKind
from ajpbalancer.config._ini import Section
from ajpbalancer.config._model import Balancer, BalancerParams, Member, Scheme
from ajpbalancer.config._parse_params import ParamsParser
from ajpbalancer.config._parse_state import did_you_mean, has_key

_MEMBER_SCHEMES_TEXT = "http://, https:// or ajp://"


class BalancerParser(ParamsParser):
    """Parses ``[balancer://NAME]`` sections."""

    def balancer(self, name: str, section: Section) -> Balancer:
        members: list[Member] = []
        by_url: dict[tuple[str, str, int | None, str], int] = {}
        by_route: dict[str, int] = {}
        set_at: dict[str, int] = {}
        # Any: field name -> value of that field's type, checked by the parameter table.
        balancer_values: dict[str, Any] = {}
        for directive, lines in self.entries(section, SectionKind.BALANCER):
            for value in lines:
                try:
                    words = self.strip_balancer_url(name, v.split_words(value.text))
                    if directive.name == "BalancerMember":
                        member = self.member(value.line, words)
                        if member is not None:
                            members.append(member)
                            self.unique_member(member, by_url, by_route)
                    else:
                        self.proxy_set(name, value.line, words, set_at, balancer_values)
                except v.InvalidValueError as e:
                    self.problem(value.line, directive.name, str(e))
        if not has_key(section, "BalancerMember"):
            self.problem(
                section.line,
                "BalancerMember",
                f"[{section.header}] needs at least one BalancerMember",
            )
        return Balancer(
            name=name,
            members=tuple(members),
            params=replace(BalancerParams(), **balancer_values),
            where=self.at(section.line),
        )

    def strip_balancer_url(self, name: str, words: list[str]) -> list[str]:
        """Accept Apache's out-of-``<Proxy>`` form, ``balancer://NAME`` first, for this balancer."""
        if len(words) >= 2 and words[0].lower().startswith("balancer://") and "=" not in words[0]:
            url = v.url(words[0])
            if url.host != name or url.path not in ("", "/"):
                raise v.InvalidValueError(f"{words[0]!r} is not this section's balancer://{name}")
            return words[1:]
        return words

    def member(self, line: int, words: list[str]) -> Member | None:
        if not words:
            raise v.InvalidValueError("expected URL [key=value ...]")
        url = v.url(words[0])
        if url.scheme is Scheme.BALANCER:
            raise v.InvalidValueError(
                f"a member URL must be {_MEMBER_SCHEMES_TEXT}, got {words[0]!r}"
            )
        params = self.member_params(
            "BalancerMember", line, url.scheme, words[1:], balancer_member=True
        )
        return Member(url, params, self.at(line))

    def unique_member(
        self,
        member: Member,
        by_url: dict[tuple[str, str, int | None, str], int],
        by_route: dict[str, int],
    ) -> None:
        line = member.where.line
        url = member.url
        key = (url.scheme.value, url.host, url.effective_port, url.path.rstrip("/"))
        if key in by_url:
            self.problem(
                line,
                "BalancerMember",
                f"duplicate member {str(url)!r} (first at line {by_url[key]})",
            )
        else:
            by_url[key] = line
        route = member.params.route
        if route is not None:
            if route in by_route:
                self.problem(
                    line,
                    "BalancerMember",
                    f"duplicate route {route!r} in this balancer (first at line {by_route[route]})",
                )
            else:
                by_route[route] = line

    def proxy_set(
        self,
        name: str,
        line: int,
        words: list[str],
        set_at: dict[str, int],
        values: dict[str, Any],
    ) -> None:
        for key, text in self.key_values("ProxySet", line, words, set_at, "already set at line"):
            param = BALANCER_PARAMS.get(key.lower())
            if param is None:
                if key.lower() in MEMBER_PARAMS:
                    message = (
                        f"{key.lower()!r} is a member parameter: "
                        "write it on the BalancerMember line"
                    )
                else:
                    hint = did_you_mean(key, BALANCER_PARAMS)
                    message = f"unknown parameter {key!r}{hint}"
                self.problem(line, "ProxySet", message)
                continue
            parsed = self.param_value("ProxySet", line, param, text)
            if not parsed:
                continue
            values[param.name] = parsed[0]
