"""Turn configuration text into a valid :class:`Config`, or a ConfigError listing every problem.

The INI reader (:mod:`._ini`) yields sections, keys and value lines with their line
numbers; this module looks each key up in the directive table (:mod:`._directives`),
parses each instance with the value parsers (:mod:`._values`), rejects features whose
stage has not landed (:mod:`._stages`), checks what spans sections (balancers named by
rules, duplicate members, routes and listeners) and builds the frozen model. Problems are
collected, never raised one at a time, and reported in file order.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import (
    BALANCER_PARAMS,
    DIRECTIVE_BY_KEY,
    DIRECTIVES,
    MEMBER_PARAMS,
    Directive,
    Param,
    SectionKind,
)
from ajpbalancer.config._ini import Entry, Section, ValueLine, read
from ajpbalancer.config._model import (
    URL,
    Balancer,
    BalancerParams,
    ClientLimits,
    Config,
    CookieRule,
    DemoBackend,
    Frontend,
    Listen,
    Location,
    Member,
    MemberParams,
    ProxyRule,
    ReadTimeout,
    ReverseRule,
    RuleKind,
    Scheme,
    Settings,
    TLSOptions,
)
from ajpbalancer.config._stages import WORKERS_OTHER_THAN_ONE, not_yet
from ajpbalancer.errors import ConfigError, Problem
from ajpbalancer.patterns import PatternError, RulePattern

CheckEndpoint = Callable[[str], "str | None"]
"""Checks a Twisted server endpoint description: an error message, or None if valid."""

SECTION_NAMES = ("ajpbalancer", "frontend")
_MEMBER_SCHEMES_TEXT = "http://, https:// or ajp://"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate (case-insensitively), or ``""``."""
    by_folded = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(by_folded), n=1)
    return f" (did you mean {by_folded[close[0]]!r}?)" if close else ""


def parse(text: str, filename: str, *, check_endpoint: CheckEndpoint | None = None) -> Config:
    """Parse configuration ``text`` read from ``filename`` (used in messages and ``Config.path``).

    ``check_endpoint`` validates each ``listen`` and ``admin`` endpoint description.
    Raises :class:`ConfigError` listing every problem in file order.
    """
    return _Parser(text, filename, check_endpoint).run()


def load(path: str, *, check_endpoint: CheckEndpoint | None = None) -> Config:
    """Read the file at ``path`` (UTF-8) and :func:`parse` it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        reason = e.strerror or str(e)
        raise ConfigError([Problem(None, "config", f"cannot read {path!r}: {reason}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        message = f"not UTF-8 text (byte 0x{data[e.start]:02x})"
        raise ConfigError([Problem(Location(path, line), "config", message)]) from None
    return parse(text, path, check_endpoint=check_endpoint)


class _Parser:
    """One parse: the text, the problems found so far and the cross-section facts."""

    def __init__(self, text: str, filename: str, check_endpoint: CheckEndpoint | None) -> None:
        self.text = text
        self.filename = filename
        self.check_endpoint = check_endpoint
        self.problems: list[Problem] = []
        self.balancer_names: dict[str, int] = {}
        self.endpoints: dict[str, int] = {}

    # -- problems ---------------------------------------------------------------------------

    def at(self, line: int) -> Location:
        return Location(self.filename, line)

    def problem(self, line: int, directive: str, message: str) -> None:
        self.problems.append(Problem(self.at(line), directive, message))

    def stage(self, line: int, directive: str, feature: str, what: str) -> bool:
        """Report ``feature`` if its stage has not landed; True if it was reported."""
        message = not_yet(feature, what)
        if message is None:
            return False
        self.problem(line, directive, message)
        return True

    # -- the whole file -----------------------------------------------------------------------

    def run(self) -> Config:
        document = read(self.text)
        for syntax in document.problems:
            self.problem(syntax.line, syntax.directive, syntax.message)
        sections = self.classify(document.sections)
        for kind, name, section in sections:
            if kind is SectionKind.BALANCER:
                self.balancer_names.setdefault(name.lower(), section.line)

        settings = Settings()
        frontends: list[Frontend] = []
        balancers: list[Balancer] = []
        for kind, name, section in sections:
            if kind is SectionKind.SETTINGS:
                settings = self.settings(section)
            elif kind is SectionKind.FRONTEND:
                frontends.append(self.frontend(name, section))
            else:
                balancers.append(self.balancer(name, section))
        if not any(kind is SectionKind.FRONTEND for kind, _, _ in sections):
            self.problem(
                1, "section", "at least one [frontend] or [frontend:NAME] section is required"
            )

        if self.problems:
            ordered = sorted(self.problems, key=lambda p: p.where.line if p.where else 0)
            raise ConfigError(ordered)
        return Config(self.filename, settings, tuple(frontends), tuple(balancers))

    def classify(self, sections: list[Section]) -> list[tuple[SectionKind, str, Section]]:
        """Each section's kind and name; unknown, misnamed or repeated sections are reported."""
        result: list[tuple[SectionKind, str, Section]] = []
        seen: dict[tuple[SectionKind, str], int] = {}
        for section in sections:
            header = section.header
            folded = header.lower()
            if folded == "ajpbalancer":
                kind, name = SectionKind.SETTINGS, ""
            elif folded == "frontend":
                kind, name = SectionKind.FRONTEND, ""
            elif folded.startswith("frontend:"):
                kind, name = SectionKind.FRONTEND, header[len("frontend:") :]
            elif folded.startswith("balancer://"):
                kind, name = SectionKind.BALANCER, header[len("balancer://") :]
            else:
                hint = did_you_mean(header, _section_candidates(header))
                self.problem(section.line, "section", f"unknown section {header!r}{hint}")
                continue
            if kind is SectionKind.FRONTEND and folded.startswith("frontend:") and not name:
                self.problem(
                    section.line, "section", "[frontend:] needs a name, or write [frontend]"
                )
            elif kind is not SectionKind.SETTINGS and (name or kind is SectionKind.BALANCER):
                try:
                    v.name(kind.name.lower(), name)
                except v.InvalidValueError as e:
                    self.problem(section.line, "section", str(e))
            if kind is SectionKind.BALANCER:
                name = name.lower()
            key = (kind, name.lower())
            if key in seen:
                self.problem(
                    section.line,
                    "section",
                    f"duplicate section [{header}] (first at line {seen[key]})",
                )
                continue
            seen[key] = section.line
            result.append((kind, name, section))
        return result

    def entries(
        self, section: Section, kind: SectionKind
    ) -> list[tuple[Directive, Entry, list[ValueLine]]]:
        """The section's entries looked up in the directive table, with their value lines.

        Unknown directives, directives of another section, missing values and extra lines
        for a one-value directive are reported; what remains is safe to interpret.
        """
        result: list[tuple[Directive, Entry, list[ValueLine]]] = []
        here = [d.name for d in DIRECTIVES if d.section is kind]
        for entry in section.entries:
            directive = DIRECTIVE_BY_KEY.get(entry.key.lower())
            if directive is None:
                hint = did_you_mean(entry.key, here)
                if not hint and re.search(r"[\s/:]", entry.key):
                    hint = " (a value continuing on the next line must be indented)"
                self.problem(
                    entry.line,
                    entry.key,
                    f"unknown directive {entry.key!r} in [{section.header}]{hint}",
                )
                continue
            if directive.section is not kind:
                self.problem(
                    entry.line,
                    directive.name,
                    f"belongs in {directive.section.value}, not in [{section.header}]",
                )
                continue
            if not entry.values:
                self.problem(entry.line, directive.name, f"needs a value: {directive.syntax}")
                continue
            values = entry.values
            if not directive.many and len(values) > 1:
                for extra in values[1:]:
                    self.problem(extra.line, directive.name, "takes one value, not one per line")
                values = values[:1]
            result.append((directive, entry, values))
        return result

    # -- [ajpbalancer] ------------------------------------------------------------------------

    def settings(self, section: Section) -> Settings:
        # Any: field name -> value of that field's type, checked by the parameter table.
        values: dict[str, Any] = {}
        admin_line: int | None = None
        users_line: int | None = None
        demo: list[DemoBackend] = []
        for directive, entry, lines in self.entries(section, SectionKind.SETTINGS):
            if directive.name == "demo":
                for value in lines:
                    backend = self.demo_backend(value)
                    if backend is not None:
                        demo.append(backend)
                values["demo"] = tuple(demo)
                self.stage(entry.line, directive.name, directive.name, directive.name)
                continue
            line = lines[0].line
            word = self.one_word(directive, lines[0])
            if word is None:
                continue
            try:
                if directive.name == "workers":
                    workers = self.workers(line, word)
                    if workers is not None:
                        values["workers"] = workers
                elif directive.name == "admin":
                    admin_line = line
                    values["admin"] = self.endpoint(directive, line, word)
                elif directive.name == "admin_users":
                    users_line = line
                    values["admin_users"] = v.nonempty("admin_users", word)
                elif directive.name == "access_log":
                    folded = word.lower()
                    values["access_log"] = (
                        "off" if folded == "off" else v.nonempty("access_log", word)
                    )
                elif directive.name == "ProxyTimeout":
                    values["proxy_timeout"] = v.seconds("ProxyTimeout", word, low=0, exclusive=True)
            except v.InvalidValueError as e:
                self.problem(line, directive.name, str(e))
                continue
            self.stage(entry.line, directive.name, directive.name, directive.name)
        admin = values.get("admin")
        if isinstance(admin, Listen) and users_line is None and _beyond_loopback(admin.description):
            self.problem(
                admin.where.line,
                "admin",
                f"{admin.description!r} listens beyond loopback; "
                "set admin_users to require a password",
            )
        if admin_line is None and users_line is not None:
            self.problem(users_line, "admin_users", "has no effect without admin")
        return replace(Settings(), **values)

    def demo_backend(self, value: ValueLine) -> DemoBackend | None:
        """``URL route=NAME``: a demo member this process runs itself, on loopback only."""
        try:
            words = v.split_words(value.text)
            if not words:
                raise v.InvalidValueError("expected URL route=NAME")
            url = v.url(words[0])
            if url.scheme not in (Scheme.HTTP, Scheme.AJP):
                raise v.InvalidValueError(
                    f"a demo backend URL must be http:// or ajp://, got {words[0]!r}"
                )
            if url.port is None:
                raise v.InvalidValueError(f"a demo backend URL needs a port, got {words[0]!r}")
            if not (url.host.startswith("127.") or url.host in ("localhost", "::1")):
                raise v.InvalidValueError(
                    f"a demo backend listens on loopback only, not {url.host!r}"
                )
            route = ""
            for word in words[1:]:
                key, eq, text = word.partition("=")
                if key.lower() != "route" or not eq or not text:
                    raise v.InvalidValueError(f"unknown demo parameter {word!r} (only route=NAME)")
                route = v.token("route", text)
            if not route:
                raise v.InvalidValueError("a demo backend needs route=NAME")
        except v.InvalidValueError as e:
            self.problem(value.line, "demo", str(e))
            return None
        return DemoBackend(url, route, self.at(value.line))

    def workers(self, line: int, word: str) -> int | None:
        if word.lower() == "auto":
            count = os.cpu_count() or 1
            shown = f"auto = {count}"
        else:
            count = v.integer("workers", word, low=1)
            shown = word
        if count != 1 and self.stage(
            line, "workers", WORKERS_OTHER_THAN_ONE, f"more than one worker (workers = {shown})"
        ):
            return None
        return count

    # -- [frontend:NAME] ----------------------------------------------------------------------

    def frontend(self, name: str, section: Section) -> Frontend:
        listen: list[Listen] = []
        rules: list[ProxyRule] = []
        reverse: list[ReverseRule] = []
        cookie_domain: list[CookieRule] = []
        cookie_path: list[CookieRule] = []
        flags: dict[str, bool] = {}
        # Any: field name -> value of that field's type, checked by the client directive table.
        limits: dict[str, Any] = {}
        tls: dict[str, Any] = {}
        for directive, entry, lines in self.entries(section, SectionKind.FRONTEND):
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
            self.stage(entry.line, directive.name, directive.name, directive.name)
        if not _has_key(section, "listen"):
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
    ) -> Listen | ProxyRule | ReverseRule | CookieRule | bool | None:
        name = directive.name
        try:
            if name == "listen":
                return self.endpoint(directive, line, self.exactly_one(directive, words))
            if name in ("ProxyPreserveHost", "ProxyAddHeaders"):
                return v.on_off(name, self.exactly_one(directive, words))
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
        """A URL a frontend points at: a defined balancer, and a scheme that has landed."""
        if url.scheme is Scheme.BALANCER and url.host not in self.balancer_names:
            hint = did_you_mean(url.host, self.balancer_names)
            self.problem(line, directive, f"undefined balancer {url.host!r}{hint}")
        self.stage(
            line, directive, f"scheme {url.scheme.value}", f"the {url.scheme.value}:// scheme"
        )

    # -- [balancer://NAME] --------------------------------------------------------------------

    def balancer(self, name: str, section: Section) -> Balancer:
        members: list[Member] = []
        by_url: dict[tuple[str, str, int | None, str], int] = {}
        by_route: dict[str, int] = {}
        set_at: dict[str, int] = {}
        # Any: field name -> value of that field's type, checked by the parameter table.
        balancer_values: dict[str, Any] = {}
        for directive, entry, lines in self.entries(section, SectionKind.BALANCER):
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
            self.stage(entry.line, directive.name, directive.name, directive.name)
        if not _has_key(section, "BalancerMember"):
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
        self.stage(
            line,
            "BalancerMember",
            f"scheme {url.scheme.value}",
            f"the {url.scheme.value}:// scheme",
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
            value = parsed[0]
            if self.stage(line, "ProxySet", f"ProxySet {param.name}", f"parameter {param.name!r}"):
                continue
            if isinstance(value, str) and self.stage(
                line, "ProxySet", f"ProxySet {param.name}={value}", f"{param.name} {value!r}"
            ):
                continue
            values[param.name] = value

    # -- parameters ---------------------------------------------------------------------------

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
            if self.stage(line, directive, f"member {param.name}", f"parameter {param.name!r}"):
                continue
            values[param.name] = value
        return replace(MemberParams(), **values)

    # -- small shapes -------------------------------------------------------------------------

    def one_word(self, directive: Directive, value: ValueLine) -> str | None:
        try:
            return self.exactly_one(directive, v.split_words(value.text))
        except v.InvalidValueError as e:
            self.problem(value.line, directive.name, str(e))
            return None

    @staticmethod
    def exactly_one(directive: Directive, words: list[str]) -> str:
        if len(words) != 1:
            raise v.InvalidValueError(
                f"expected one value ({directive.syntax}), got {len(words)} words"
                + ("; write one per line" if directive.many else "")
            )
        return words[0]

    @staticmethod
    def exactly_two(directive: Directive, words: list[str]) -> tuple[str, str]:
        if len(words) != 2:
            raise v.InvalidValueError(f"expected {directive.syntax}, got {len(words)} words")
        return words[0], words[1]

    def endpoint(self, directive: Directive, line: int, description: str) -> Listen:
        """A server endpoint description, checked by ``check_endpoint`` and for duplicates."""
        if self.check_endpoint is not None:
            message = self.check_endpoint(description)
            if message is not None:
                raise v.InvalidValueError(message)
        first = self.endpoints.setdefault(description, line)
        if first != line:
            raise v.InvalidValueError(f"duplicate endpoint {description!r} (first at line {first})")
        return Listen(description, self.at(line))


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


def _has_key(section: Section, name: str) -> bool:
    """Whether ``section`` has the directive ``name`` at all (valid or not)."""
    return any(e.key.lower() == name.lower() for e in section.entries)


def _section_candidates(header: str) -> list[str]:
    """Section headers the user may have meant by ``header``."""
    candidates = list(SECTION_NAMES)
    tail = re.sub(r"^\s*[A-Za-z]*[\s:/]*", "", header)
    if "://" in header:
        tail = header.rsplit("://", 1)[1]
    if tail:
        candidates += [f"frontend:{tail}", f"balancer://{tail}"]
    return candidates


def _beyond_loopback(description: str) -> bool:
    """Whether a server endpoint may accept connections from other hosts."""
    parts = re.split(r"(?<!\\):", description)
    kind = parts[0].lower()
    if kind == "unix":
        return False
    if kind not in ("tcp", "tcp6", "ssl"):
        return True
    options: Mapping[str, str] = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    interface = options.get("interface", "")
    if not interface and kind == "tcp":
        positional = [p for p in parts[1:] if "=" not in p]
        interface = positional[1] if len(positional) > 1 else ""
    interface = interface.replace("\\:", ":")
    if interface.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return True
