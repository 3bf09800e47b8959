"""The floor: Twisted's own ``twisted.web.proxy.ReverseProxyResource`` in front of one member.

Started by ``bench/protocols.py`` as ``python bench/_twisted_proxy.py --port P
--backend-host H --backend-port Q``. Twisted as it comes (a new member connection per
request, whole bodies buffered), except that the access log is off, as it is for every
target of the benchmark, and the listen backlog is Apache's 511.
"""

from __future__ import annotations

import argparse

from twisted.internet import reactor
from twisted.web.http import Request
from twisted.web.proxy import ReverseProxyResource
from twisted.web.server import Site


class QuietSite(Site):
    """A `Site` that writes no access log line."""

    def log(self, request: Request) -> None:
        """Log nothing."""


def main(argv: list[str] | None = None) -> None:
    """Listen on 127.0.0.1:--port and proxy every path to --backend-host:--backend-port."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend-host", required=True)
    parser.add_argument("--backend-port", type=int, required=True)
    args = parser.parse_args(argv)
    site = QuietSite(ReverseProxyResource(args.backend_host, args.backend_port, b""))
    reactor.listenTCP(args.port, site, backlog=511, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
