"""The configuration file: parse it into frozen, typed values or say everything wrong with it.

``parse``/``load`` return a :class:`Config` or raise :class:`ConfigError` whose problems
read ``FILE:LINE: Directive: message``. Nothing here does network I/O; endpoint
descriptions are checked by a function the caller injects.
"""

from __future__ import annotations

from ajpbalancer.config._endpoints import DEFAULT_BACKLOG, EndpointSpec, endpoint_spec
from ajpbalancer.config._errors import ConfigError, Problem
from ajpbalancer.config._model import (
    HC_METHODS,
    LBMETHODS,
    STATUS_FLAGS,
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
    StateStore,
    TLSOptions,
)
from ajpbalancer.config._parse_state import CheckEndpoint, CheckFile
from ajpbalancer.config._parser import load, parse
from ajpbalancer.config._summary import summary

__all__ = [
    "DEFAULT_BACKLOG",
    "HC_METHODS",
    "LBMETHODS",
    "STATUS_FLAGS",
    "URL",
    "Balancer",
    "BalancerParams",
    "CheckEndpoint",
    "CheckFile",
    "ClientLimits",
    "Config",
    "ConfigError",
    "CookieRule",
    "DemoBackend",
    "EndpointSpec",
    "Frontend",
    "Listen",
    "Location",
    "Member",
    "MemberParams",
    "Problem",
    "ProxyRule",
    "ReadTimeout",
    "ReverseRule",
    "RuleKind",
    "Scheme",
    "Settings",
    "StateStore",
    "TLSOptions",
    "endpoint_spec",
    "load",
    "parse",
    "summary",
]
