"""The checks of a configuration that need the rooms above it: can Twisted build a server
endpoint from a ``listen`` or ``admin`` line, can the admin listener use ``admin_users``;
and :func:`load_config`, which loads a file with every check a start makes."""

from __future__ import annotations

from ajpbalancer.config import Config, load


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


def check_admin_users(path: str) -> str | None:
    """Whether the admin listener can use the htpasswd file ``path``: it is read and
    checked as the start reads it (a missing, unreadable or empty file, a directory, an
    unsupported hash such as ``$apr1$`` are reported)."""
    # Imported late: the admin room (twisted.web, bcrypt) loads only when admin_users is set.
    from ajpbalancer.admin import AdminUsersError, Htpasswd  # noqa: PLC0415

    try:
        Htpasswd.load(path)
    except AdminUsersError as e:
        return str(e)
    return None


def load_config(path: str, *, starting: bool = True) -> Config:
    """Read and check the configuration file at ``path``: with ``starting``, as a start
    (and ``--check``) does, the ``admin_users`` file read too; else as a reload or a
    worker process does, which never read it (a reload keeps the admin listener, and
    both may run as twistd's ``-u`` user, who may not read it)."""
    users = check_admin_users if starting else None
    return load(path, check_endpoint=check_endpoint, check_admin_users=users)
