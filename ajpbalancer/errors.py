"""The root of every exception ajpbalancer raises on purpose, and the configuration error.

Errors say who is at fault: configuration problems are the operator's, protocol errors
(in the HTTP and AJP codecs) are local (our bug) or remote (the peer's), each with the
HTTP status a client gets because of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for the annotation: importing ajpbalancer.config at run time would be circular,
    # since ajpbalancer.config re-exports Problem and ConfigError from here.
    from ajpbalancer.config._model import Location


class AJPBalancerError(Exception):
    """Root of ajpbalancer's own exceptions."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a configuration file, printed as ``file:line: Directive: message``."""

    where: Location | None
    directive: str
    message: str

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where is not None else ""
        return f"{prefix}{self.directive}: {self.message}"


class ConfigError(AJPBalancerError):
    """A configuration file is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
