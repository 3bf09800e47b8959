"""The twistd plugin's options and service: ``twistd -n ajpbalancer --config FILE [--check]``.

This is the only module that touches the global reactor and installs signal handlers
(``SIGHUP`` reloads). An invalid configuration is reported (one line per problem) and
exits non-zero here, before anything listens; ``--check`` also prints warnings (a
``ProxyPassMatch`` pattern with nested quantifiers) that leave the exit status 0.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, ClassVar, cast

from twisted.application.service import IService
from twisted.internet.interfaces import IReactorThreads
from twisted.python import usage

from ajpbalancer.config import CheckEndpoint, Config, ConfigError, load, summary
from ajpbalancer.patterns import warnings


def _check_endpoint() -> CheckEndpoint:
    """The service's endpoint check, imported only now: ``--help`` stays light."""
    from ajpbalancer.service import check_endpoint  # noqa: PLC0415

    return check_endpoint


def pattern_warnings(config: Config) -> list[str]:
    """``FILE:LINE: ProxyPassMatch: warning: …`` for patterns that deserve a look."""
    return [
        f"{rule.where}: ProxyPassMatch: warning: {message}"
        for frontend in config.frontends
        for rule in frontend.rules
        if rule.regex is not None
        for message in warnings(rule.regex)
    ]


class Options(usage.Options):
    synopsis = "--config FILE [--check]"
    longdesc = (
        "Reverse proxy and load balancer for Java application servers. "
        "--config names the INI file; --check validates it, prints a summary and exits."
    )
    optFlags: ClassVar[list[list[str | None]]] = [
        ["check", None, "Validate the configuration, print a summary, exit 0 or 1."]
    ]
    optParameters: ClassVar[list[list[str | None]]] = [
        ["config", "c", None, "Configuration file (required)."]
    ]

    config: Config

    def postOptions(self) -> None:
        path = self["config"]
        if not path:
            raise usage.UsageError("--config is required")
        try:
            self.config = load(path, check_endpoint=_check_endpoint())
        except ConfigError as e:
            for problem in e.problems:
                print(problem, file=sys.stderr)
            print(f"{path}: {len(e.problems)} problem(s); nothing started", file=sys.stderr)
            raise SystemExit(1) from None
        if self["check"]:
            for warning in pattern_warnings(self.config):
                print(warning, file=sys.stderr)
            print(summary(self.config))
            raise SystemExit(0)


def makeService(options: Options | dict[str, Any]) -> IService:
    from twisted.internet import reactor  # noqa: PLC0415 -- twistd installed it first

    from ajpbalancer.service import ProxyService, check_endpoint  # noqa: PLC0415

    config = options.config if isinstance(options, Options) else options["config_object"]
    path = config.path
    service = ProxyService(
        reactor, config, loader=lambda: load(path, check_endpoint=check_endpoint)
    )

    threads = cast(IReactorThreads, reactor)

    def hangup(signum: int, frame: object) -> None:
        threads.callFromThread(service.reload)  # safe from a signal handler: wakes the reactor

    # kill -HUP <pid>: read the configuration again (an invalid one changes nothing).
    signal.signal(signal.SIGHUP, hangup)
    return service
