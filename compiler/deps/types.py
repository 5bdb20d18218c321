"""The shared dependency IR: a requirement always knows which source asked for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Manager = Literal["conda", "pip"]


@dataclass(frozen=True)
class Source:
    """Where requirements came from, e.g. the conda file of environment sklearn-env:1."""

    kind: Literal["conda_file", "server", "mlflow_model", "cli"]
    label: str
    path: str | None = None

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Requirement:
    """One requirement on one package, as written in its source.

    ``specifier`` is in pip syntax (conda specs are translated), so constraints from both managers
    can be compared; ``raw`` keeps the original text.
    """

    name: str
    manager: Manager
    specifier: str
    raw: str
    source: Source
    extras: tuple[str, ...] = ()
    marker: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class DepSet:
    """The requirements of one source, plus the conda channels it names."""

    source: Source
    requirements: tuple[Requirement, ...]
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MergedDependency:
    """One package with every constraint placed on it and the sources of each."""

    name: str
    manager: Manager
    constraints: tuple[Requirement, ...]
    extras: tuple[str, ...] = ()

    @property
    def specifier(self) -> str:
        parts: list[str] = []
        for req in self.constraints:
            for part in (p.strip() for p in req.specifier.split(",")):
                if part and part not in parts:
                    parts.append(part)
        return ",".join(parts)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(str(r.source) for r in self.constraints))

    def pip_line(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        markers = {r.marker for r in self.constraints if r.marker}
        marker = f" ; {markers.pop()}" if len(markers) == 1 else ""
        return f"{self.name}{extras}{self.specifier}{marker}"


@dataclass(frozen=True)
class MergedEnvironment:
    """The one environment every source agreed on (stage output of merge)."""

    channels: tuple[str, ...]
    conda: tuple[MergedDependency, ...]
    pip: tuple[MergedDependency, ...]
    sources: tuple[Source, ...] = field(default_factory=tuple)

    def conda_dep(self, name: str) -> MergedDependency | None:
        return next((d for d in self.conda if d.name == name), None)

    @property
    def python(self) -> MergedDependency | None:
        return self.conda_dep("python")

    def pinned_installers(self) -> tuple[str, ...]:
        """The pip packages a slim environment keeps: every name under ``pip:``, and ``pip`` when the conda
        part pins it (``pip<22.0``); a bare conda ``pip`` only enables the ``pip:`` part."""
        conda_pip = self.conda_dep("pip")
        pinned = ("pip",) if conda_pip and any(r.specifier for r in conda_pip.constraints) else ()
        return tuple(dict.fromkeys(tuple(d.name for d in self.pip) + pinned))

    def venv_pip_lines(self) -> tuple[str, ...]:
        """The pip part of a virtual environment: a conda ``pip`` pin (``pip<22.0``), which a venv has
        no conda to honour, becomes the venv's own pip requirement instead of being dropped."""
        conda_pip = self.conda_dep("pip")
        pinned = tuple(r for r in (conda_pip.constraints if conda_pip else ()) if r.specifier)
        if not pinned:
            return tuple(d.pip_line() for d in self.pip)
        deps = list(self.pip)
        at = next((i for i, d in enumerate(deps) if d.name == "pip"), None)
        if at is None:
            deps.append(MergedDependency("pip", "pip", pinned))
        else:
            deps[at] = MergedDependency("pip", "pip", deps[at].constraints + pinned, deps[at].extras)
        return tuple(d.pip_line() for d in sorted(deps, key=lambda d: d.name))
