"""What is wrong with a configuration file: its problems, and the error that lists them.

Configuration problems are the operator's: each names the file, the line, the directive
and what is wrong, and :class:`ConfigError` carries every problem found in one file.
"""

from __future__ import annotations

from dataclasses import dataclass

from ajpbalancer.config._model import Location
from ajpbalancer.errors import AJPBalancerError


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
