"""The twistd plugin's options and service: ``twistd -n ajpbalancer --config FILE [--check]``.

This is the only module that touches the global reactor and installs signal handlers
(``SIGHUP`` reloads) and the hook that prints a failed start. An invalid configuration is
reported (one line per problem) and exits non-zero here, before anything listens; a
valid one that cannot start (a port in use, a file that cannot be opened) stops the
start with one line saying which and why, exit status 1, no traceback. ``--check`` also
prints warnings (a ``ProxyPassMatch`` pattern with nested quantifiers) that leave the
exit status 0.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, cast

from twisted.application.service import IService
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python import usage

from ajpbalancer.config import Config, ConfigError, summary
from ajpbalancer.patterns import warnings

log = Logger()


def _load(path: str) -> Config:
    """The service's loader, with every check a start makes; imported only now, so that
    ``--help`` stays light."""
    from ajpbalancer.service import load_config  # noqa: PLC0415

    return load_config(path)


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
            self.config = _load(path)
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


ExceptHook = Callable[[type[BaseException], BaseException, "TracebackType | None"], Any]


def one_line_start_errors(previous: ExceptHook, error_type: type[BaseException]) -> ExceptHook:
    """An ``excepthook`` that reports an ``error_type`` as its one line, in twistd's log
    and on the process's own stderr; anything else goes to ``previous``.

    twistd opens the listeners outside any ``try`` of ours (``privilegedStartService``):
    it removes its pid file and re-raises, so the interpreter's hook has the last word
    (and the exit status is 1).
    """

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> Any:
        if not isinstance(value, error_type):
            return previous(kind, value, tb)
        log.critical("cannot start: {error}", error=str(value))
        stream = sys.__stderr__ or sys.stderr
        stream.write(f"{value}\n")
        stream.flush()
        return None

    return hook


def makeService(options: Options | dict[str, Any]) -> IService:
    from twisted.internet import reactor  # noqa: PLC0415 -- twistd installed it first

    from ajpbalancer.service import ProxyService, StartError, load_config  # noqa: PLC0415

    config = options.config if isinstance(options, Options) else options["config_object"]
    path = config.path
    service = ProxyService(reactor, config, loader=lambda: load_config(path, starting=False))
    sys.excepthook = one_line_start_errors(sys.excepthook, StartError)

    threads = cast(IReactorThreads, reactor)

    def hangup(signum: int, frame: object) -> None:
        threads.callFromThread(service.reload)  # safe from a signal handler: wakes the reactor

    # kill -HUP <pid>: read the configuration again (an invalid one changes nothing).
    signal.signal(signal.SIGHUP, hangup)
    return service
