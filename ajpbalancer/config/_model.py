"""The configuration as frozen, typed values: what the parser produces and the rest reads.

Nothing here does I/O. Every object carries the :class:`Location` of the line it came from,
so that problems found later (an endpoint that cannot listen) still name file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ajpbalancer.patterns import RulePattern


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value was written: file name as given on the command line, 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Scheme(Enum):
    """Schemes a rule target or a balancer member may use."""

    HTTP = "http"
    HTTPS = "https"
    AJP = "ajp"
    BALANCER = "balancer"

    @property
    def default_port(self) -> int | None:
        return {"http": 80, "https": 443, "ajp": 8009, "balancer": None}[self.value]


@dataclass(frozen=True, slots=True)
class URL:
    """A parsed member or target URL.

    For ``balancer://NAME/path`` the balancer name is in ``host`` and ``port`` is None.
    ``path`` always starts with ``/`` or is empty; it may contain ``$1``..``$9`` in a
    ``ProxyPassMatch`` target. There, and only there, it may also begin with a
    back-reference written right after the authority (``balancer://mycluster$1``): the
    expansion is a path, never part of scheme, host or port, which are fixed here.
    """

    scheme: Scheme
    host: str
    port: int | None
    path: str

    @property
    def effective_port(self) -> int | None:
        return self.port if self.port is not None else self.scheme.default_port

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` as written (port kept only when given)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme.value}://{host}{port}"

    def __str__(self) -> str:
        return self.origin + self.path


# Status flags a member may carry (Apache's letters).
STATUS_FLAGS: dict[str, str] = {
    "H": "hot standby",
    "D": "disabled",
    "S": "stopped",
    "N": "drain",
    "E": "error",
    "I": "ignore errors",
}

HC_METHODS = ("GET", "HEAD", "OPTIONS", "CPING", "TCP")
LBMETHODS = ("byrequests", "bytraffic", "bybusyness")


@dataclass(frozen=True, slots=True)
class MemberParams:
    """Parameters of a ``BalancerMember`` line (or of a direct ``ProxyPass`` target).

    Times are seconds as floats. ``None`` means "not set": the effective value comes from
    elsewhere (``timeout`` from the balancer or ``ProxyTimeout``, ``connectiontimeout``
    from ``timeout``, ``max`` unlimited, ``ttl`` no idle limit). ``upgrade``: the
    protocols a request may switch to with this member (lower-cased; ``("*",)`` for
    any); ``upgradeurl``: where an ``ajp://`` member's upgrades go (its node's HTTP
    connector).
    """

    route: str | None = None
    redirect: str | None = None
    loadfactor: float = 1.0
    lbset: int = 0
    status: frozenset[str] = frozenset()
    retry: float = 60.0
    timeout: float | None = None
    connectiontimeout: float | None = None
    ttl: float | None = None
    max: int | None = None
    keepalive: bool = False
    disablereuse: bool = False
    ping: float = 0.0
    secret: str | None = field(default=None, repr=False)
    packetsize: int = 8192
    verify: bool = True
    hcmethod: str | None = None
    hcuri: str = ""
    hcinterval: float = 30.0
    hcpasses: int = 1
    hcfails: int = 1
    upgrade: tuple[str, ...] = ()
    upgradeurl: URL | None = None

    def can_upgrade(self, offer: bytes) -> bool:
        """Whether a request offering the protocols ``offer`` (its ``Upgrade`` field) may
        switch with this member (Apache's ``ap_proxy_worker_can_upgrade``): ``upgrade=*``,
        or one protocol offered is one of ``upgrade``, compared without regard to case."""
        allowed = self.upgrade
        if not allowed:
            return False
        if allowed[0] == "*":
            return True
        for item in offer.split(b","):
            proto = item.strip(b" \t").lower().decode("latin-1")
            if proto in allowed or proto.partition("/")[0] in allowed:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Member:
    """One ``BalancerMember``: an ``http://``, ``https://`` or ``ajp://`` URL plus parameters."""

    url: URL
    params: MemberParams
    where: Location

    @property
    def name(self) -> str:
        """The member's identity: its URL as Apache's balancer-manager shows it."""
        return str(self.url)


@dataclass(frozen=True, slots=True)
class BalancerParams:
    """Parameters set with ``ProxySet`` in a ``[balancer://NAME]`` section."""

    lbmethod: str = "byrequests"
    stickysession: tuple[str, ...] = ()
    stickysessionsep: str | None = "."
    scolonpathdelim: bool = False
    nofailover: bool = False
    maxattempts: int | None = None
    failonstatus: frozenset[int] = frozenset()
    failontimeout: bool = False
    forcerecovery: bool = True
    timeout: float = 0.0


@dataclass(frozen=True, slots=True)
class Balancer:
    """A ``[balancer://NAME]`` section."""

    name: str
    members: tuple[Member, ...]
    params: BalancerParams
    where: Location


class RuleKind(Enum):
    PREFIX = "ProxyPass"
    REGEX = "ProxyPassMatch"


@dataclass(frozen=True, slots=True)
class ProxyRule:
    """One line of ``ProxyPass`` or ``ProxyPassMatch``.

    ``target`` is None for an exclusion (``!``). ``pattern`` is the path prefix
    (``PREFIX``) or the regular expression source (``REGEX``, compiled in ``regex`` for
    bounded-time matching, see :mod:`ajpbalancer.patterns`).
    ``params`` carries member parameters written on the line for a direct (non-balancer)
    target, as Apache allows.
    """

    kind: RuleKind
    pattern: str
    target: URL | None
    where: Location
    regex: RulePattern | None = None
    params: MemberParams = MemberParams()


@dataclass(frozen=True, slots=True)
class ReverseRule:
    """One ``ProxyPassReverse`` line: public ``path`` and the internal value.

    The internal value is a ``url`` or, as Apache also allows, a path alone
    (``internal_path``, compared with the path part of the header's value); exactly one
    of the two is set.
    """

    path: str
    url: URL | None
    where: Location
    internal_path: str | None = None


@dataclass(frozen=True, slots=True)
class CookieRule:
    """One ``ProxyPassReverseCookieDomain`` or ``…CookiePath`` line."""

    internal: str
    public: str
    where: Location


@dataclass(frozen=True, slots=True)
class Listen:
    """One Twisted server endpoint description from ``listen``."""

    description: str
    where: Location


@dataclass(frozen=True, slots=True)
class ReadTimeout:
    """One stage of ``RequestReadTimeout`` (mod_reqtimeout): ``timeout[-max],MinRate=rate``.

    The stage must be read within ``timeout`` seconds, extended by one second per
    ``min_rate`` bytes received, never beyond ``max_timeout`` (None: no cap). ``timeout``
    0 disables the stage.
    """

    timeout: float
    max_timeout: float | None = None
    min_rate: int = 0

    def deadline(self, start: float, received: int) -> float:
        """When the stage expires, having received ``received`` bytes since ``start``."""
        extra = received / self.min_rate if self.min_rate else 0.0
        end = start + self.timeout + extra
        if self.max_timeout is not None:
            end = min(end, start + self.max_timeout)
        return end


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What one client connection may send and how slowly: Apache's names and defaults.

    ``limit_request_body`` 0 is unlimited; Apache 2.4.54+ defaults to 1 GiB.
    ``max_connections`` (ours) 0 is unlimited; 1000 by default.
    """

    limit_request_line: int = 8190
    limit_request_field_size: int = 8190
    limit_request_fields: int = 100
    limit_request_body: int = 1 << 30
    header_timeout: ReadTimeout = ReadTimeout(20.0, 40.0, 500)
    body_timeout: ReadTimeout = ReadTimeout(20.0, None, 500)
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """Client certificates on this frontend's ``ssl:`` listeners (mod_ssl's names).

    ``verify_client``: ``none``, ``optional`` (asked for, verified when sent) or
    ``require``; ``ca_certificate_file``: the PEM bundle they are verified against.
    """

    verify_client: str = "none"
    ca_certificate_file: str | None = None


@dataclass(frozen=True, slots=True)
class Frontend:
    """A ``[frontend:NAME]`` (or ``[frontend]``, name ``""``) section."""

    name: str
    listen: tuple[Listen, ...]
    rules: tuple[ProxyRule, ...]
    where: Location
    reverse: tuple[ReverseRule, ...] = ()
    cookie_domain: tuple[CookieRule, ...] = ()
    cookie_path: tuple[CookieRule, ...] = ()
    preserve_host: bool = False
    add_headers: bool = True
    limits: ClientLimits = ClientLimits()
    tls: TLSOptions = TLSOptions()
    websocket_idle_timeout: float | None = None
    """``ProxyWebsocketIdleTimeout``: seconds a tunnel may move nothing either way before
    it is closed; None: the member's ``timeout``; 0: no limit."""


@dataclass(frozen=True, slots=True)
class DemoBackend:
    """A built-in demo member started in-process (``demo`` in ``[ajpbalancer]``)."""

    url: URL
    route: str
    where: Location


@dataclass(frozen=True, slots=True)
class StateStore:
    """Where runtime state is kept (``state``): a file (``path``) or a Redis database.

    For Redis, ``host``, ``port`` and ``db`` say which, ``username``/``password`` log in
    (``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``); ``str()`` never shows the password.
    """

    path: str | None = None
    host: str = ""
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def is_redis(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        login = "" if self.password is None else f"{self.username or ''}:***@"
        return f"redis://{login}{host}:{self.port}/{self.db}"


@dataclass(frozen=True, slots=True)
class Settings:
    """The ``[ajpbalancer]`` section: process-wide settings."""

    workers: int = 1
    demo: tuple[DemoBackend, ...] = ()
    admin: Listen | None = None
    admin_users: str | None = None
    admin_hosts: tuple[str, ...] = ()
    access_log: str = "-"
    proxy_timeout: float = 300.0
    balancer_persist: bool = False
    state: StateStore | None = None
    state_prefix: str = "ajpbalancer:"


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, valid configuration file."""

    path: str
    settings: Settings
    frontends: tuple[Frontend, ...]
    balancers: tuple[Balancer, ...]

    def balancer(self, name: str) -> Balancer:
        for b in self.balancers:
            if b.name == name:
                return b
        raise KeyError(name)
