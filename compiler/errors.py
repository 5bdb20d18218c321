"""Errors every stage may raise; the CLI turns each into one line per problem and an exit code.

Exit codes (documented in README): 2 bad input (spec, reference, merge conflict, lock mismatch),
3 build failure (engine, dependency fetch), 4 verification failure, 5 no engine available.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


class PkgcError(Exception):
    """Base class: ``lines()`` gives the user-facing message, one problem per line."""

    exit_code = 2

    def lines(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True)
class SpecProblem:
    """One problem in one input file: where (file, key path, line) and what."""

    file: Path | str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class SpecError(PkgcError):
    """One or more problems in an input file (package.yml, environment YAML, conda file, lock)."""

    def __init__(self, problems: list[SpecProblem] | SpecProblem):
        self.problems = [problems] if isinstance(problems, SpecProblem) else list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ResolveError(PkgcError):
    """An asset reference (model, environment, registry) that cannot be resolved."""


@dataclass(frozen=True)
class Conflict:
    """Two constraints on one package that cannot hold together, with where each came from."""

    package: str
    first: str
    first_source: str
    second: str
    second_source: str

    def __str__(self) -> str:
        return (
            f"conflicting constraints on '{self.package}': '{self.first}' from {self.first_source} "
            f"and '{self.second}' from {self.second_source} cannot both hold"
        )


class MergeError(PkgcError):
    """Dependencies from several sources that cannot be merged into one environment."""

    def __init__(self, conflicts: list[Conflict]):
        self.conflicts = conflicts
        super().__init__("; ".join(str(c) for c in conflicts))

    def lines(self) -> list[str]:
        return [str(c) for c in self.conflicts]


class StrategyError(PkgcError):
    """The merged environment cannot be created in the chosen base image."""


class LockError(PkgcError):
    """Locking failed, or an existing lock no longer matches the spec."""


class MissingLibraries(PkgcError):
    """The environment needs shared libraries that neither it nor the base image provides."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self._lines = lines

    def lines(self) -> list[str]:
        return list(self._lines)


class BuildError(PkgcError):
    """The engine failed to build the image, or a dependency could not be fetched."""

    exit_code = 3


class VerifyError(PkgcError):
    """A built package did not answer as expected."""

    exit_code = 4


class EngineUnavailable(PkgcError):
    """No container engine answers."""

    exit_code = 5


@dataclass
class Collected:
    """Problems gathered across a stage before raising them together."""

    problems: list[SpecProblem] = field(default_factory=list)

    def add(self, file: Path | str, key: str, message: str, line: int | None = None) -> None:
        self.problems.append(SpecProblem(file, key, message, line))

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # and undecodable bytes (surrogates)


def excerpt(value: object, limit: int = 100) -> str:
    """``value`` as text for an error line: at most ``limit`` characters, the cut marked with '...',
    control characters (newline, NUL, ...) and undecodable file-name bytes escaped as in Python, so the
    line stays one printable line."""
    text = value if isinstance(value, str) else repr(value)
    text = text[: limit * 4]  # escaping only lengthens; no need to look further
    text = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TargetSyntaxError(PkgcError):
    """A ``--output``/``--push`` value that cannot be used; raised before any build work starts."""

    exit_code = 2
