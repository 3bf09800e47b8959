"""Values of the runtime-state settings: the ``state`` store and the ``admin_hosts`` names.

``state`` is a file path or ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``; a file's
directory must exist (the file is written next to itself and renamed into place).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from ajpbalancer.config._model import StateStore
from ajpbalancer.config._values import InvalidValueError, _authority, nonempty

_REDIS = re.compile(r"redis://(?P<rest>.*)", re.IGNORECASE | re.DOTALL)
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]")

MAX_DB = 1 << 20
"""Highest Redis database number accepted (Redis' own default is 16 databases)."""


def state_store(text: str) -> StateStore:
    """The store ``state`` names (a path is checked against its directory)."""
    match = _REDIS.fullmatch(text)
    if match is None:
        if "://" in text:
            raise InvalidValueError(
                f"invalid state {text!r}: a file path or redis://HOST[:PORT][/DB]"
            )
        path = nonempty("state", text)
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise InvalidValueError(f"the directory of {path!r} does not exist")
        if os.path.isdir(path):
            raise InvalidValueError(f"{path!r} is a directory; name a file")
        return StateStore(path=path)
    bad = f"invalid state {_redacted(text)!r}"
    rest = match.group("rest")
    if "?" in rest or "#" in rest:
        raise InvalidValueError(f"{bad}: a query or fragment is not allowed")
    authority, _, db_text = rest.partition("/")
    login, at, hostport = authority.rpartition("@")
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = login.partition(":")
        if not colon:
            raise InvalidValueError(f"{bad}: write the login as [USER]:PASSWORD@")
        username, password = (unquote(user) or None), unquote(secret)
    host, port = _authority(bad, hostport)
    db = 0
    if db_text:
        if not db_text.isdigit() or int(db_text) >= MAX_DB:
            raise InvalidValueError(f"{bad}: the database must be a number, got {db_text!r}")
        db = int(db_text)
    return StateStore(
        host=host, port=6379 if port is None else port, db=db, username=username, password=password
    )


def _redacted(text: str) -> str:
    _, at, tail = text.rpartition("@")
    return f"redis://***@{tail}" if at else text


def admin_host(text: str) -> str:
    """One host name (or address) the admin listener is addressed by, lower-cased."""
    if _HOST.fullmatch(text) is None:
        raise InvalidValueError(f"{text!r} is not a host name or address (no port, no scheme)")
    return text.lower().strip("[]")
