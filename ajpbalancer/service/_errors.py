"""What keeps the proxy from starting, or a reload from applying, said in one line.

The configuration file can be valid and the proxy still unable to start as it says: a
port already in use, a file the user may not write. Such a failure is a
:class:`StartError` whose message reads like a configuration problem
(``lb.ini:4: listen: cannot listen on tcp:8080 for [frontend:www]: Address already in
use``): which directive, which listener or file, what is wrong. The tap module prints
it as that one line (exit status 1, no traceback); a reload logs it and changes nothing.
"""

from __future__ import annotations

from twisted.internet.error import CannotListenError

from ajpbalancer.errors import AJPBalancerError


class StartError(AJPBalancerError):
    """The proxy cannot start, or a reload cannot apply, as configured (one line)."""


def reason(error: object) -> str:
    """What went wrong with a socket or a file, in the system's words."""
    if isinstance(error, CannotListenError) and isinstance(error.socketError, BaseException):
        return reason(error.socketError)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
