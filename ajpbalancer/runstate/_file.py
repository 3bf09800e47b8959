"""Runtime state in a file (``state = PATH``): written whole, atomically, off the reactor.

The file is JSON::

    {"format": "ajpbalancer-runtime-state", "version": 1, "written": 1764000000.5,
     "writer": "ajpbalancer 0.1.0 on lb1", "seq": 12,
     "entries": [{"balancer": "mycluster", "member": "ajp://10.0.0.2:8009",
                  "key": "status_D", "value": true, "base": false, "seq": 12,
                  "time": 1764000000.4, "by": "ops from 10.0.0.9 on lb1"}]}

Each change is written to ``PATH.tmp-PID`` in the same directory, flushed to disk
(``fsync``) and renamed over ``PATH`` (then the directory is synced), so a crash leaves
the old file or the new one, never a mix. Writes run in the reactor's thread pool, one at
a time; changes made meanwhile are written together by the next. A file this version
cannot read (not JSON, another format, a newer ``version``) is logged, renamed to
``PATH.invalid`` and the proxy starts from its configuration; a bad entry is logged and
skipped. Entries whose keys a later version adds are skipped the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ajpbalancer import __version__
from ajpbalancer.balancer import BadValueError
from ajpbalancer.runstate._model import Entry, FieldKey, parse_field
from ajpbalancer.runstate._state import RuntimeState, StoreHealth

log = Logger()

FORMAT = "ajpbalancer-runtime-state"
VERSION = 1
"""The file format this version writes, and the newest it reads."""

Runner = Callable[[Callable[[], None]], "Deferred[None]"]
"""Runs a blocking function off the reactor (the thread pool); tests run it at once."""


class StateFileError(Exception):
    """The file is not a runtime state file this version can read."""


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data``: a temporary file, fsync, rename, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = f"{path}.tmp-{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def encode(entries: list[tuple[FieldKey, Entry]], seq: int, now: float) -> bytes:
    """The file's bytes for ``entries``."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "written": now,
        "writer": f"ajpbalancer {__version__} on {socket.gethostname()}",
        "seq": seq,
        "entries": [
            {
                "balancer": balancer,
                "member": member,
                "key": key,
                "seq": entry.seq,
                **json.loads(entry.to_json()),
            }
            for (balancer, member, key), entry in entries
        ],
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


def decode(data: bytes, where: str) -> tuple[list[tuple[FieldKey, Entry]], int]:
    """The entries and the last change number in a file's ``data`` (StateFileError if the
    file as a whole cannot be read; bad entries are logged and skipped)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise StateFileError(f"not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateFileError(f"not an ajpbalancer runtime state file (no format {FORMAT!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StateFileError(f"no valid version ({version!r})")
    if version > VERSION:
        raise StateFileError(f"version {version} is newer than this ajpbalancer reads ({VERSION})")
    raw = doc.get("entries")
    seq = doc.get("seq", 0)
    if not isinstance(raw, list) or not isinstance(seq, int):
        raise StateFileError("entries must be a list and seq a number")
    entries: list[tuple[FieldKey, Entry]] = []
    for index, item in enumerate(raw):
        try:
            if not isinstance(item, dict):
                raise BadValueError("not an object")
            balancer, member, key = item.get("balancer"), item.get("member"), item.get("key")
            if not isinstance(balancer, str) or not isinstance(key, str):
                raise BadValueError("balancer and key must be strings")
            if member is not None and not isinstance(member, str):
                raise BadValueError("member must be a string or null")
            parse_field(key if member is None else f"{key} {member}")
            entry_seq = item.get("seq")
            if not isinstance(entry_seq, int) or isinstance(entry_seq, bool):
                entry_seq = None
            entries.append(((balancer, member, key), Entry.from_data(key, item, entry_seq)))
        except BadValueError as e:
            log.error("{file}: entry {index} skipped: {error}", file=where, index=index, error=e)
    return entries, seq


def threaded(reactor: Any) -> Runner:
    """Run blocking writes in ``reactor``'s thread pool."""
    from twisted.internet.threads import deferToThreadPool  # noqa: PLC0415

    def run(work: Callable[[], None]) -> Deferred[None]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), work)

    return run


class FileStore:
    """``state = PATH`` (see the module docstring)."""

    shared = False

    def __init__(self, clock: IReactorTime, path: str, run: Runner) -> None:
        self._clock = clock
        self.path = path
        self._run = run
        self._state: RuntimeState | None = None
        self._dirty = False
        self._writing: Deferred[None] | None = None
        self._saved: float | None = None
        self._error: str | None = None

    def load(self) -> tuple[list[tuple[FieldKey, Entry]], int]:
        """The entries in the file (blocking: at start, before serving)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            log.info("runtime state: {file} does not exist yet", file=self.path)
            return [], 0
        except OSError as e:
            self._error = f"cannot read {self.path}: {e.strerror}"
            log.error("runtime state: {error}; starting from the configuration", error=self._error)
            return [], 0
        try:
            entries, seq = decode(data, self.path)
        except StateFileError as e:
            aside = f"{self.path}.invalid"
            try:
                os.replace(self.path, aside)
                kept = f"kept as {aside}"
            except OSError as moved:
                kept = f"could not be renamed to {aside}: {moved.strerror}"
            self._error = f"{self.path}: {e}"
            log.error(
                "runtime state: {file}: {error}; starting from the configuration ({kept})",
                file=self.path,
                error=str(e),
                kept=kept,
            )
            return [], 0
        log.info(
            "runtime state: {count} runtime value(s) read from {file}",
            count=len(entries),
            file=self.path,
        )
        return entries, seq

    # -- Store ------------------------------------------------------------------------------

    def start(self, state: RuntimeState) -> None:
        self._state = state
        if self._dirty:
            self._save()

    def balancers(self, names: object) -> None:
        """Every balancer is in the one file."""

    def write(self, field: FieldKey, entry: Entry | None, if_seq: int | None = None) -> None:
        self._dirty = True
        if self._state is not None:
            self._save()

    def _save(self) -> None:
        state = self._state
        if self._writing is not None or state is None:
            return
        self._dirty = False
        data = encode(state.document(), state.seq, self._clock.seconds())
        path = self.path
        writing = self._writing = self._run(lambda: write_atomically(path, data))
        writing.addCallbacks(self._written, self._not_written)

    def _written(self, _: object) -> None:
        self._writing = None
        self._saved = self._clock.seconds()
        if self._error is not None:
            log.info("runtime state: {file} written again", file=self.path)
        self._error = None
        if self._dirty:
            self._save()

    def _not_written(self, failure: Failure) -> None:
        self._writing = None
        error = failure.value
        reason = getattr(error, "strerror", None) or str(error)
        self._error = f"cannot write {self.path}: {reason}"
        log.error("runtime state: {error}; the next change tries again", error=self._error)
        self._dirty = True

    def stop(self) -> Deferred[None]:
        """Fires once what was changed is written (or could not be)."""
        if self._writing is None:
            if not self._dirty or self._state is None:
                return succeed(None)
            self._save()
        done: Deferred[None] = Deferred()

        def finished(_: object) -> None:
            if self._writing is None and self._dirty:
                self._save()
            if self._writing is not None:
                self._writing.addBoth(finished)
            elif not done.called:
                done.callback(None)

        assert self._writing is not None
        self._writing.addBoth(finished)
        return done

    def health(self) -> StoreHealth:
        return StoreHealth(
            store=self.path,
            kind="file",
            connected=self._error is None,
            last_sync=self._saved,
            error=self._error,
            pending=int(self._dirty or self._writing is not None),
            reconnects=0,
        )
