"""What the real servers the integration tests run (Tomcat, Apache httpd) have in common:
one process started by the fixture, and a base directory of its own (created on first
use, removed on `close` unless kept for inspection)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self


class ServerProcess(ABC):
    """A server process owned by a test, with its base directory."""

    def __init__(self, base_dir: Path | str | None, *, keep_base: bool, prefix: str) -> None:
        self._owns_base = base_dir is None
        self._base: Path | None = Path(base_dir) if base_dir is not None else None
        self._prefix = prefix
        self.keep_base = keep_base
        self._prepared = False
        self._process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def start(self) -> Self:
        """Start the server and wait until it serves."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the process started, gracefully and then by force."""

    @property
    def base(self) -> Path:
        """The server's own directory (created on first use)."""
        if self._base is None:
            self._base = Path(tempfile.mkdtemp(prefix=self._prefix))
        return self._base

    @property
    def pid(self) -> int | None:
        """PID of the process started, or None if it is not running."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """True while the process started by this object is alive."""
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """Stop; remove the base directory if this object created it, unless kept."""
        self.stop()
        if self._owns_base and self._base is not None and not self.keep_base:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None
            self._prepared = False

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
