"""A ``[frontend:NAME]`` section: listeners, rules, reverse rewriting, client limits, TLS."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import Directive, SectionKind
from ajpbalancer.config._ini import Section
from ajpbalancer.config._model import (
    URL,
    ClientLimits,
    CookieRule,
    Frontend,
    Listen,
    MemberParams,
    ProxyRule,
    ReadTimeout,
    ReverseRule,
    RuleKind,
    Scheme,
    TLSOptions,
)
from ajpbalancer.config._parse_params import ParamsParser
from ajpbalancer.config._parse_state import did_you_mean, has_key
from ajpbalancer.patterns import PatternError, RulePattern


class FrontendParser(ParamsParser):
    """Parses ``[frontend]`` and ``[frontend:NAME]`` sections."""

    def frontend(self, name: str, section: Section) -> Frontend:
        listen: list[Listen] = []
        rules: list[ProxyRule] = []
        reverse: list[ReverseRule] = []
        cookie_domain: list[CookieRule] = []
        cookie_path: list[CookieRule] = []
        flags: dict[str, bool] = {}
        idle_timeout: float | None = None
        # Any: field name -> value of that field's type, checked by the client directive table.
        limits: dict[str, Any] = {}
        tls: dict[str, Any] = {}
        for directive, lines in self.entries(section, SectionKind.FRONTEND):
            for value in lines:
                try:
                    words = v.split_words(value.text)
                except v.InvalidValueError as e:
                    self.problem(value.line, directive.name, str(e))
                    continue
                if directive.name in _CLIENT_LIMITS or directive.name in _TLS_OPTIONS:
                    try:
                        word = (
                            " ".join(words)
                            if directive.name == "RequestReadTimeout"
                            else self.exactly_one(directive, words)
                        )
                        if directive.name in _TLS_OPTIONS:
                            tls[_TLS_OPTIONS[directive.name]] = _tls_option(directive.name, word)
                        else:
                            limits.update(_client_limit(directive.name, word))
                    except v.InvalidValueError as e:
                        self.problem(value.line, directive.name, str(e))
                    continue
                handled = self.frontend_line(directive, value.line, words)
                if isinstance(handled, Listen):
                    listen.append(handled)
                elif isinstance(handled, ProxyRule):
                    rules.append(handled)
                elif isinstance(handled, ReverseRule):
                    reverse.append(handled)
                elif isinstance(handled, CookieRule):
                    if directive.name == "ProxyPassReverseCookieDomain":
                        cookie_domain.append(handled)
                    else:
                        cookie_path.append(handled)
                elif isinstance(handled, bool):
                    flags[directive.name] = handled
                elif isinstance(handled, float):
                    idle_timeout = handled
        if not has_key(section, "listen"):
            self.problem(
                section.line, "listen", f"[{section.header}] needs at least one listen line"
            )
        return Frontend(
            name=name,
            listen=tuple(listen),
            rules=tuple(rules),
            where=self.at(section.line),
            reverse=tuple(reverse),
            cookie_domain=tuple(cookie_domain),
            cookie_path=tuple(cookie_path),
            preserve_host=flags.get("ProxyPreserveHost", False),
            add_headers=flags.get("ProxyAddHeaders", True),
            limits=replace(ClientLimits(), **limits),
            tls=self.tls_options(section, listen, tls),
            websocket_idle_timeout=idle_timeout,
        )

    def tls_options(
        self, section: Section, listen: list[Listen], values: dict[str, Any]
    ) -> TLSOptions:
        """``SSLVerifyClient`` other than none needs a CA file and an ``ssl:`` listener."""
        options = replace(TLSOptions(), **values)
        if options.verify_client != "none":
            if options.ca_certificate_file is None:
                self.problem(
                    section.line,
                    "SSLVerifyClient",
                    f"SSLVerifyClient {options.verify_client} needs SSLCACertificateFile",
                )
            if not any(ln.description.lower().startswith("ssl:") for ln in listen):
                self.problem(
                    section.line, "SSLVerifyClient", "applies to ssl: listeners; there is none"
                )
        return options

    def frontend_line(
        self, directive: Directive, line: int, words: list[str]
    ) -> Listen | ProxyRule | ReverseRule | CookieRule | bool | float | None:
        name = directive.name
        try:
            if name == "listen":
                return self.endpoint(directive, line, self.exactly_one(directive, words))
            if name in ("ProxyPreserveHost", "ProxyAddHeaders"):
                return v.on_off(name, self.exactly_one(directive, words))
            if name == "ProxyWebsocketIdleTimeout":
                word = self.exactly_one(directive, words)
                return v.seconds(name, word, low=0, allow_ms=True)
            if name == "ProxyPass":
                return self.proxy_pass(line, words)
            if name == "ProxyPassMatch":
                return self.proxy_pass_match(line, words)
            if name == "ProxyPassReverse":
                path, target = self.exactly_two(directive, words)
                if target.startswith("/"):  # a path alone, as Apache allows
                    internal = v.path("internal path", target)
                    return ReverseRule(v.path("path", path), None, self.at(line), internal)
                url = v.url(target)
                self.target(line, name, url)
                return ReverseRule(v.path("path", path), url, self.at(line))
            # ProxyPassReverseCookieDomain, ProxyPassReverseCookiePath
            internal, public = self.exactly_two(directive, words)
            return CookieRule(internal, public, self.at(line))
        except v.InvalidValueError as e:
            self.problem(line, name, str(e))
            return None

    def proxy_pass(self, line: int, words: list[str]) -> ProxyRule | None:
        if len(words) < 2:
            raise v.InvalidValueError("expected PATH URL [key=value ...] or PATH !")
        pattern = v.path("path", words[0])
        if words[1] == "!":
            if len(words) > 2:
                raise v.InvalidValueError("an exclusion (PATH !) takes no parameters")
            return ProxyRule(RuleKind.PREFIX, pattern, None, self.at(line))
        url = v.url(words[1])
        params = self.rule_params("ProxyPass", line, url, words[2:])
        return ProxyRule(RuleKind.PREFIX, pattern, url, self.at(line), params=params)

    def proxy_pass_match(self, line: int, words: list[str]) -> ProxyRule | None:
        if len(words) < 2:
            raise v.InvalidValueError("expected REGEX URL [key=value ...] or REGEX !")
        pattern = words[0]
        try:
            regex = RulePattern(pattern)
        except PatternError as e:
            raise v.InvalidValueError(str(e)) from None
        if words[1] == "!":
            if len(words) > 2:
                raise v.InvalidValueError("an exclusion (REGEX !) takes no parameters")
            return ProxyRule(RuleKind.REGEX, pattern, None, self.at(line), regex=regex)
        url = v.url(words[1], allow_backrefs=True)
        for number in v.backrefs(url.path):
            if number > regex.groups:
                groups = f"{regex.groups} group{'' if regex.groups == 1 else 's'}"
                raise v.InvalidValueError(f"back-reference ${number} but {pattern!r} has {groups}")
        params = self.rule_params("ProxyPassMatch", line, url, words[2:])
        return ProxyRule(RuleKind.REGEX, pattern, url, self.at(line), regex=regex, params=params)

    def rule_params(self, directive: str, line: int, url: URL, words: list[str]) -> MemberParams:
        """Check a rule's target; parse the member parameters written on its line."""
        self.target(line, directive, url)
        if url.scheme is Scheme.BALANCER:
            if words:
                self.problem(
                    line,
                    directive,
                    "parameters on a balancer:// target are not allowed; set balancer "
                    f"parameters with ProxySet in [balancer://{url.host}]",
                )
            return MemberParams()
        return self.member_params(directive, line, url.scheme, words, balancer_member=False)

    def target(self, line: int, directive: str, url: URL) -> None:
        """A URL a frontend points at: a ``balancer://`` one names a defined balancer."""
        if url.scheme is Scheme.BALANCER and url.host not in self.balancer_names:
            hint = did_you_mean(url.host, self.balancer_names)
            self.problem(line, directive, f"undefined balancer {url.host!r}{hint}")


_CLIENT_LIMITS = frozenset(
    {
        "LimitRequestLine",
        "LimitRequestFieldSize",
        "LimitRequestFields",
        "LimitRequestBody",
        "RequestReadTimeout",
        "KeepAliveTimeout",
        "MaxConnections",
    }
)
_TLS_OPTIONS = {"SSLVerifyClient": "verify_client", "SSLCACertificateFile": "ca_certificate_file"}
_READ_TIMEOUT = re.compile(
    r"(?P<stage>[A-Za-z]+)=(?P<timeout>\d+)(?:-(?P<max>\d+))?(?:,MinRate=(?P<rate>\d+))?",
    re.IGNORECASE,
)


def _client_limit(name: str, word: str) -> dict[str, Any]:
    """The :class:`ClientLimits` field(s) one client directive sets (Apache's ranges)."""
    if name == "LimitRequestLine":
        return {"limit_request_line": v.integer(name, word, low=1, high=1 << 20)}
    if name == "LimitRequestFieldSize":
        return {"limit_request_field_size": v.integer(name, word, low=1, high=1 << 20)}
    if name == "LimitRequestFields":
        return {"limit_request_fields": v.integer(name, word, low=1, high=10000)}
    if name == "LimitRequestBody":
        return {"limit_request_body": v.integer(name, word, low=0, high=(1 << 63) - 1)}
    if name == "KeepAliveTimeout":
        return {"keep_alive_timeout": v.seconds(name, word, low=0, exclusive=True, allow_ms=True)}
    if name == "MaxConnections":
        return {"max_connections": v.integer(name, word, low=0, high=1 << 20)}
    return _request_read_timeout(word)


def _request_read_timeout(text: str) -> dict[str, Any]:
    """mod_reqtimeout's syntax: ``header=20-40,MinRate=500 body=20,MinRate=500``."""
    out: dict[str, Any] = {}
    for item in text.split():
        m = _READ_TIMEOUT.fullmatch(item)
        stage = "" if m is None else m.group("stage").lower()
        if m is None or stage not in ("header", "body"):
            raise v.InvalidValueError(
                f"expected header=SECONDS[-MAX][,MinRate=BYTES] or body=..., got {item!r}"
            )
        field = f"{stage}_timeout"
        if field in out:
            raise v.InvalidValueError(f"{stage}= given twice")
        timeout = int(m.group("timeout"))
        top = None if m.group("max") is None else int(m.group("max"))
        rate = 0 if m.group("rate") is None else int(m.group("rate"))
        if top is not None and (top <= timeout or not rate):
            raise v.InvalidValueError(
                f"{item!r}: a maximum must exceed the timeout and needs MinRate"
            )
        if m.group("rate") is not None and rate < 1:
            raise v.InvalidValueError(f"{item!r}: MinRate must be at least 1 byte/s")
        if max(timeout, top or 0) > v.MAX_SECONDS:
            raise v.InvalidValueError(
                f"{item!r}: a timeout must be at most {v.MAX_SECONDS:g} seconds (one day)"
            )
        out[field] = ReadTimeout(float(timeout), None if top is None else float(top), rate)
    if not out:
        raise v.InvalidValueError("expected header=... and/or body=...")
    return out


def _tls_option(name: str, word: str) -> str:
    if name == "SSLVerifyClient":
        return v.one_of(name, word.lower(), ("none", "optional", "require"))
    if not os.path.isfile(word):
        raise v.InvalidValueError(f"cannot read CA certificate file {word!r}")
    return word
