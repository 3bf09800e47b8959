"""The directive and parameter tables of the configuration file, as data.

Each directive says which section it belongs to, whether it holds one value or one
instance per line, and a valid example; each parameter says how its value is parsed,
which member schemes it applies to and a valid example. The parser walks these tables;
tests iterate them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from types import MappingProxyType

from ajpbalancer.config import _values as v
from ajpbalancer.config._model import HC_METHODS, LBMETHODS, Scheme

_ENDPOINT = "ENDPOINT[:backlog=N]"

MAX_POOL = 65535
"""The most connections ``max`` allows to one member: one source address can hold no
more to one member address and port (Apache clamps ``max`` to ``ThreadsPerChild``)."""

MAX_HEALTH_COUNT = 1000
"""The most consecutive checks ``hcpasses`` and ``hcfails`` may ask for."""

MAX_ATTEMPTS = 100
"""The most failover attempts ``maxattempts`` may ask for."""


class SectionKind(Enum):
    """The kinds of section; the value is how messages write the section."""

    SETTINGS = "[ajpbalancer]"
    FRONTEND = "[frontend:NAME]"
    BALANCER = "[balancer://NAME]"


@dataclass(frozen=True, slots=True)
class Directive:
    """A directive (an INI key): canonical Apache spelling, section, arity, example."""

    name: str
    section: SectionKind
    many: bool
    example: str
    syntax: str


DIRECTIVES: tuple[Directive, ...] = (
    Directive("workers", SectionKind.SETTINGS, False, "1", f"N (1-{v.MAX_WORKERS}) | auto"),
    Directive("admin", SectionKind.SETTINGS, False, "tcp:8081:interface=127.0.0.1", _ENDPOINT),
    Directive("admin_users", SectionKind.SETTINGS, False, "etc/admin.htpasswd", "PATH"),
    Directive(
        "admin_hosts",
        SectionKind.SETTINGS,
        True,
        "lb1.example.org 10.0.0.5",
        "HOST ...",
    ),
    Directive("access_log", SectionKind.SETTINGS, False, "-", "- | off | PATH"),
    Directive("ProxyTimeout", SectionKind.SETTINGS, False, "300", "SECONDS"),
    Directive("BalancerPersist", SectionKind.SETTINGS, False, "on", "On | Off"),
    Directive(
        "state",
        SectionKind.SETTINGS,
        False,
        "redis://127.0.0.1:6379/0",
        "PATH | redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
    ),
    Directive("state_prefix", SectionKind.SETTINGS, False, "shop:", "TEXT"),
    Directive(
        "demo", SectionKind.SETTINGS, True, "http://127.0.0.1:18081 route=demo1", "URL route=NAME"
    ),
    Directive("listen", SectionKind.FRONTEND, True, "tcp:8080", _ENDPOINT),
    Directive(
        "ProxyPass",
        SectionKind.FRONTEND,
        True,
        "/app http://127.0.0.1:8080/app",
        "PATH URL [key=value ...] | PATH !",
    ),
    Directive(
        "ProxyPassMatch",
        SectionKind.FRONTEND,
        True,
        "^/app/(.*)$ http://127.0.0.1:8080/$1",
        "REGEX URL [key=value ...] | REGEX !",
    ),
    Directive(
        "ProxyPassReverse",
        SectionKind.FRONTEND,
        True,
        "/app http://127.0.0.1:8080/app",
        "PATH URL",
    ),
    Directive(
        "ProxyPassReverseCookieDomain",
        SectionKind.FRONTEND,
        True,
        "127.0.0.1 localhost",
        "INTERNAL PUBLIC",
    ),
    Directive(
        "ProxyPassReverseCookiePath", SectionKind.FRONTEND, True, "/app /", "INTERNAL PUBLIC"
    ),
    Directive("ProxyPreserveHost", SectionKind.FRONTEND, False, "off", "On | Off"),
    Directive("ProxyAddHeaders", SectionKind.FRONTEND, False, "on", "On | Off"),
    Directive("LimitRequestLine", SectionKind.FRONTEND, False, "8190", "BYTES (1-1048576)"),
    Directive("LimitRequestFieldSize", SectionKind.FRONTEND, False, "8190", "BYTES (1-1048576)"),
    Directive("LimitRequestFields", SectionKind.FRONTEND, False, "100", "N (1-10000)"),
    Directive(
        "LimitRequestBody", SectionKind.FRONTEND, False, "1073741824", "BYTES (0 = unlimited)"
    ),
    Directive(
        "RequestReadTimeout",
        SectionKind.FRONTEND,
        False,
        "header=20-40,MinRate=500 body=20,MinRate=500",
        "header=S[-MAX][,MinRate=BYTES] body=S[-MAX][,MinRate=BYTES]",
    ),
    Directive("KeepAliveTimeout", SectionKind.FRONTEND, False, "5", "SECONDS"),
    Directive("ProxyWebsocketIdleTimeout", SectionKind.FRONTEND, False, "300", "SECONDS"),
    Directive(
        "MaxConnections", SectionKind.FRONTEND, False, "1000", "N (0-1048576, 0 = unlimited)"
    ),
    Directive(
        "SSLVerifyClient", SectionKind.FRONTEND, False, "optional", "none | optional | require"
    ),
    Directive("SSLCACertificateFile", SectionKind.FRONTEND, False, "etc/ca.pem", "PATH"),
    Directive(
        "BalancerMember",
        SectionKind.BALANCER,
        True,
        "http://127.0.0.1:8080 route=node1",
        "URL [key=value ...]",
    ),
    Directive("ProxySet", SectionKind.BALANCER, True, "lbmethod=byrequests", "key=value ..."),
)

DIRECTIVE_BY_KEY: Mapping[str, Directive] = MappingProxyType(
    {d.name.lower(): d for d in DIRECTIVES}
)


Parse = Callable[[str, str], object]
"""A value parser: ``parse(name, text)`` returns the value or raises ``Invalid``."""

Check = Callable[[object, Scheme], "str | None"]
"""A check of a parsed value against the member's scheme: a message, or None if fine."""

MEMBER_SCHEMES = frozenset({Scheme.HTTP, Scheme.HTTPS, Scheme.AJP})


def _cping_needs_ajp(value: object, scheme: Scheme) -> str | None:
    if value == "CPING" and scheme is not Scheme.AJP:
        return f"hcmethod CPING is only for ajp:// members, not {scheme.value}://"
    return None


@dataclass(frozen=True, slots=True)
class Param:
    """A ``key=value`` parameter; ``name`` is also the field of the params dataclass."""

    name: str
    parse: Parse
    example: str
    schemes: frozenset[Scheme] = MEMBER_SCHEMES
    member_only: bool = False
    check: Check | None = None
    needs: tuple[str, ...] = ()
    """Parameters without which this one means nothing (written on the same line)."""


_on_off: Parse = v.on_off
_seconds_ms_positive: Parse = partial(v.seconds, low=0, exclusive=True, allow_ms=True)

MEMBER_PARAMS: Mapping[str, Param] = MappingProxyType(
    {
        p.name: p
        for p in (
            Param("route", v.token, "node1", member_only=True),
            Param("redirect", v.token, "node2", member_only=True),
            Param("loadfactor", partial(v.decimal, low=1, high=100), "2", member_only=True),
            Param("lbset", partial(v.integer, low=0, high=99), "1", member_only=True),
            Param("status", v.status, "+H"),
            Param("retry", partial(v.seconds, low=0), "60"),
            Param("timeout", _seconds_ms_positive, "30"),
            Param("connectiontimeout", _seconds_ms_positive, "500ms"),
            Param("ttl", partial(v.seconds, low=1), "60"),
            Param("max", partial(v.integer, low=1, high=MAX_POOL), "10"),
            Param("keepalive", _on_off, "on"),
            Param("disablereuse", _on_off, "off"),
            Param("ping", partial(v.seconds, low=0, allow_ms=True), "500ms"),
            Param("secret", v.nonempty, "s3cret", schemes=frozenset({Scheme.AJP})),
            Param(
                "packetsize",
                partial(v.integer, low=8192, high=65536),
                "16384",
                schemes=frozenset({Scheme.AJP}),
            ),
            Param("verify", _on_off, "off", schemes=frozenset({Scheme.HTTPS})),
            Param(
                "hcmethod",
                partial(v.one_of, choices=HC_METHODS, upper=True),
                "HEAD",
                check=_cping_needs_ajp,
            ),
            Param("hcuri", v.path, "/health"),
            Param("hcinterval", partial(v.seconds, low=1), "30"),
            Param("hcpasses", partial(v.integer, low=1, high=MAX_HEALTH_COUNT), "2"),
            Param("hcfails", partial(v.integer, low=1, high=MAX_HEALTH_COUNT), "3"),
            Param("upgrade", v.protocols, "websocket"),
            Param(
                "upgradeurl",
                v.upgrade_url,
                "http://127.0.0.1:8080",
                schemes=frozenset({Scheme.AJP}),
                needs=("upgrade",),
            ),
        )
    }
)

BALANCER_PARAMS: Mapping[str, Param] = MappingProxyType(
    {
        p.name: p
        for p in (
            Param("lbmethod", partial(v.one_of, choices=LBMETHODS), "byrequests"),
            Param("stickysession", v.sticky_names, "JSESSIONID|jsessionid"),
            Param("stickysessionsep", v.separator, "!"),
            Param("scolonpathdelim", _on_off, "on"),
            Param("nofailover", _on_off, "on"),
            Param("maxattempts", partial(v.integer, low=0, high=MAX_ATTEMPTS), "2"),
            Param("failonstatus", v.status_codes, "500,503"),
            Param("failontimeout", _on_off, "on"),
            Param("forcerecovery", _on_off, "off"),
            Param("timeout", partial(v.seconds, low=1, allow_ms=True), "5"),
        )
    }
)
