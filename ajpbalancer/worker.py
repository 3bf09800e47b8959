"""One worker process of ``workers = N``: ``python -m ajpbalancer.worker``, started by the
supervisor (:mod:`ajpbalancer.service._supervisor`), never by hand.

It inherits the listening sockets, the shared balancer state and the access log as file
descriptors (named on its command line), reads the configuration itself and serves
exactly as a single-process ajpbalancer does, without the admin listener or health
checks (the supervisor runs those on the same shared state). Like the tap module, this
entry point owns the global reactor and the signal handlers: ``SIGHUP`` reloads,
``SIGTERM`` stops accepting, lets requests in flight finish (within
:data:`GRACE` seconds) and exits; ``SIGINT`` is left to the supervisor. Log lines go to
stderr, which the supervisor relays into its own log.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from twisted.logger import FileLogObserver, Logger, eventAsText, globalLogBeginner

GRACE = 10.0
"""Seconds a stopping worker lets requests in flight run before it exits anyway."""

log = Logger()


def _exit_with_parent() -> None:
    """Linux: get ``SIGTERM`` if the supervisor dies (even by ``SIGKILL``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ajpbalancer.worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--shared-fd", type=int, required=True)
    parser.add_argument("--access-log", required=True, help="-, off or a descriptor")
    parser.add_argument("--listeners", required=True, help="JSON [[fd, frontend, line], ...]")
    parser.add_argument("--counters-fd", type=int, help="the request counters (metrics)")
    args = parser.parse_args(argv)
    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from twisted.internet import reactor as installed  # noqa: PLC0415 -- as twistd does

    from ajpbalancer.config import ConfigError, load  # noqa: PLC0415
    from ajpbalancer.proxy import AccessLog  # noqa: PLC0415
    from ajpbalancer.service import ProxyService, WorkerSetup, check_endpoint  # noqa: PLC0415
    from ajpbalancer.shm import CounterTable, SharedMemory  # noqa: PLC0415

    reactor: Any = installed
    globalLogBeginner.beginLoggingTo(
        [
            FileLogObserver(
                sys.stderr, lambda event: (eventAsText(event, includeTimestamp=False) or "") + "\n"
            )
        ],
        redirectStandardIO=False,
    )
    path = args.config
    try:
        config = load(path, check_endpoint=check_endpoint)
    except ConfigError as e:
        for problem in e.problems:
            log.error("{problem}", problem=str(problem))
        raise SystemExit(1) from None
    if args.access_log == "off":
        access_log = None
    elif args.access_log == "-":
        access_log = AccessLog.open("-")
    else:
        access_log = AccessLog(os.fdopen(int(args.access_log), "a", buffering=1, encoding="utf-8"))
    setup = WorkerSetup(
        shared=SharedMemory.attach(args.shared_fd),
        access_log=access_log,
        listeners={(frontend, line): fd for fd, frontend, line in json.loads(args.listeners)},
        counters=None if args.counters_fd is None else CounterTable.attach(args.counters_fd),
    )
    service = ProxyService(
        reactor, config, loader=lambda: load(path, check_endpoint=check_endpoint), worker=setup
    )
    service.privilegedStartService()
    service.startService()
    log.info("worker {pid} serving", pid=os.getpid())
    stopping: list[bool] = []

    def stop() -> None:
        if stopping:
            return
        stopping.append(True)
        log.info("worker {pid} stopping", pid=os.getpid())
        service.drain(GRACE).addBoth(lambda _: reactor.stop())

    def hangup(signum: int, frame: object) -> None:
        reactor.callFromThread(service.reload)

    def terminate(signum: int, frame: object) -> None:
        reactor.callFromThread(stop)

    signal.signal(signal.SIGHUP, hangup)
    signal.signal(signal.SIGTERM, terminate)
    reactor.run(installSignalHandlers=False)
    service.stopService()


if __name__ == "__main__":
    main()
