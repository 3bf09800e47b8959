"""Check a ``listen`` or ``admin`` line: can Twisted build a server endpoint from it?"""

from __future__ import annotations


def check_endpoint(description: str) -> str | None:
    """Whether Twisted can build a server endpoint from ``description`` (files are read)."""
    # Imported late: twistd installs the reactor chosen on its command line first.
    from twisted.internet import reactor  # noqa: PLC0415
    from twisted.internet.endpoints import serverFromString  # noqa: PLC0415

    try:
        serverFromString(reactor, description)
    except Exception as e:
        return f"invalid endpoint {description!r}: {e}"
    return None
