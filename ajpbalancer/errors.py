"""The root of every exception ajpbalancer raises on purpose.

Errors say who is at fault: configuration problems (:class:`ajpbalancer.config.ConfigError`)
are the operator's, protocol errors (in the HTTP and AJP codecs) are local (our bug) or
remote (the peer's), each with the HTTP status a client gets because of it.
"""

from __future__ import annotations


class AJPBalancerError(Exception):
    """Root of ajpbalancer's own exceptions."""
