"""The ``[ajpbalancer]`` section: process-wide settings, the admin listener, demo backends."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ajpbalancer.config import _values as v
from ajpbalancer.config._directives import SectionKind
from ajpbalancer.config._ini import Section, ValueLine
from ajpbalancer.config._model import DemoBackend, Listen, Scheme, Settings, StateStore
from ajpbalancer.config._parse_state import ParseState
from ajpbalancer.config._state_store import admin_host, state_store


class SettingsParser(ParseState):
    """Parses the ``[ajpbalancer]`` section."""

    def settings(self, section: Section) -> Settings:
        # Any: field name -> value of that field's type, checked by the parameter table.
        values: dict[str, Any] = {}
        admin_line: int | None = None
        users_line: int | None = None
        demo: list[DemoBackend] = []
        lines_of: dict[str, int] = {}
        for directive, lines in self.entries(section, SectionKind.SETTINGS):
            lines_of[directive.name] = lines[0].line
            if directive.name == "admin_hosts":
                values["admin_hosts"] = self.admin_hosts(lines)
                continue
            if directive.name == "demo":
                for value in lines:
                    backend = self.demo_backend(value)
                    if backend is not None:
                        demo.append(backend)
                values["demo"] = tuple(demo)
                continue
            line = lines[0].line
            word = self.one_word(directive, lines[0])
            if word is None:
                continue
            try:
                if directive.name == "workers":
                    values["workers"] = self.workers(word)
                elif directive.name == "admin":
                    admin_line = line
                    values["admin"] = self.endpoint(directive, line, word)
                elif directive.name == "admin_users":
                    users_line = line
                    values["admin_users"] = self.admin_users(word)
                elif directive.name == "access_log":
                    values["access_log"] = _access_log(word)
                elif directive.name == "ProxyTimeout":
                    values["proxy_timeout"] = v.seconds("ProxyTimeout", word, low=0, exclusive=True)
                elif directive.name == "BalancerPersist":
                    values["balancer_persist"] = v.on_off("BalancerPersist", word)
                elif directive.name == "state":
                    values["state"] = state_store(word)
                elif directive.name == "state_prefix":
                    values["state_prefix"] = v.nonempty("state_prefix", word)
            except v.InvalidValueError as e:
                self.problem(line, directive.name, str(e))
        self.check_state(values, lines_of)
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
        if admin_line is None and "admin_hosts" in lines_of:
            self.problem(lines_of["admin_hosts"], "admin_hosts", "has no effect without admin")
        return replace(Settings(), **values)

    def admin_hosts(self, lines: list[ValueLine]) -> tuple[str, ...]:
        """The host names the admin listener answers to, from every line's words."""
        hosts: list[str] = []
        for value in lines:
            try:
                hosts += [admin_host(word) for word in v.split_words(value.text)]
            except v.InvalidValueError as e:
                self.problem(value.line, "admin_hosts", str(e))
        return tuple(dict.fromkeys(hosts))

    def check_state(self, values: dict[str, Any], lines_of: Mapping[str, int]) -> None:
        """``BalancerPersist``, ``state`` and ``state_prefix`` only make sense together."""
        persist = values.get("balancer_persist", False)
        store = values.get("state")
        if persist and store is None and "state" not in lines_of:
            self.problem(
                lines_of["BalancerPersist"],
                "BalancerPersist",
                "on needs state = PATH or state = redis://HOST[:PORT][/DB]",
            )
        if "state" in lines_of and not persist:
            self.problem(lines_of["state"], "state", "has no effect without BalancerPersist = on")
        if "state_prefix" in lines_of and not (isinstance(store, StateStore) and store.is_redis):
            self.problem(
                lines_of["state_prefix"], "state_prefix", "has no effect without state = redis://…"
            )

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

    def admin_users(self, word: str) -> str:
        """The htpasswd file, read now by ``check_admin_users`` (when given): a file that
        is missing, unreadable, a directory, empty or with a hash the admin listener
        cannot check is reported here rather than when the proxy starts."""
        path = v.nonempty("admin_users", word)
        if self.check_admin_users is not None:
            message = self.check_admin_users(path)
            if message is not None:
                raise v.InvalidValueError(message)
        return path

    @staticmethod
    def workers(word: str) -> int:
        """``workers = N`` or ``auto`` (one per core), at most :data:`MAX_WORKERS`."""
        if word.lower() == "auto":
            return min(os.cpu_count() or 1, v.MAX_WORKERS)
        return v.integer("workers", word, low=1, high=v.MAX_WORKERS)


def _access_log(word: str) -> str:
    """``-``, ``off`` or a file that can be opened for appending: its directory exists
    and it is not a directory itself (whether the user may write there is known only
    when the proxy opens it, perhaps as root)."""
    if word.lower() == "off":
        return "off"
    path = v.nonempty("access_log", word)
    if path == "-":
        return path
    if os.path.isdir(path):
        raise v.InvalidValueError(f"{path!r} is a directory, not a file")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise v.InvalidValueError(f"cannot create {path!r}: there is no directory {folder!r}")
    return path


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
