"""The access log a process owns: opened at start, moved by a reload that changes it.

In one process, :attr:`AccessLogs.log` is the :class:`AccessLog` every frontend writes
to. A supervisor (``workers = N``) writes nothing itself: it opens the file (before
twistd drops privileges) and hands the descriptor to its workers (:attr:`inherited`).

A reload that changes ``access_log`` opens the new target first (:meth:`switch`: the
reload is refused, and nothing changes, if it cannot be opened) and commits once the
rest of the reload succeeded: in one process the same :class:`AccessLog` then writes to
the new file (requests already running log there too) and the old file is closed; a
supervisor hands the new descriptor to the workers it starts, and replaces its workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ajpbalancer.proxy import AccessLog
from ajpbalancer.service._errors import StartError, reason


def _failure(config_path: str, target: str, error: OSError) -> StartError:
    return StartError(f"{config_path}: access_log: cannot open {target!r}: {reason(error)}")


def _descriptor(target: str) -> str | int:
    """What a worker inherits: ``-``, ``off`` or a descriptor of the file."""
    if target in ("-", "off"):
        return target
    return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _close(inherited: str | int) -> None:
    if isinstance(inherited, int):
        os.close(inherited)


@dataclass
class AccessLogSwitch:
    """A new access log target, opened and not yet in use (see :meth:`AccessLogs.switch`)."""

    owner: AccessLogs
    target: str
    fresh: AccessLog | None
    inherited: str | int

    @property
    def log(self) -> AccessLog | None:
        """What the new runtime writes to: the same object as now when both are files."""
        if self.owner.log is not None and self.fresh is not None:
            return self.owner.log
        return self.fresh

    def commit(self) -> None:
        owner = self.owner
        if owner.log is not None and self.fresh is not None:
            owner.log.take(self.fresh)
        else:
            if owner.log is not None:
                owner.log.close()
            owner.log = self.fresh
        _close(owner.inherited)
        owner.inherited = self.inherited
        owner.target = self.target

    def rollback(self) -> None:
        if self.fresh is not None:
            self.fresh.close()
        _close(self.inherited)


class AccessLogs:
    """The access log of this process (see the module docstring)."""

    def __init__(self, config_path: str, target: str, *, supervising: bool) -> None:
        """Open ``target`` (raises :class:`StartError`, naming it, if it cannot be)."""
        self.config_path = config_path
        self.supervising = supervising
        self.target = target
        self.log: AccessLog | None = None
        self.inherited: str | int = "off"
        opened = self._open(target)
        self.log, self.inherited = opened.fresh, opened.inherited

    def _open(self, target: str) -> AccessLogSwitch:
        try:
            if self.supervising:
                return AccessLogSwitch(self, target, None, _descriptor(target))
            return AccessLogSwitch(self, target, AccessLog.open(target), "off")
        except OSError as e:
            raise _failure(self.config_path, target, e) from None

    def switch(self, target: str) -> AccessLogSwitch | None:
        """Open ``target`` for a reload; None when it is the current one (nothing to do)."""
        if target == self.target:
            return None
        return self._open(target)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        _close(self.inherited)
        self.inherited = "off"
