"""Choose how the merged environment is created: a virtual environment on the base image's Python
when the conda part is only ``python`` and ``pip`` and the Pythons match; the conda path otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.deps.satisfiable import satisfiable
from compiler.deps.types import MergedEnvironment
from compiler.errors import StrategyError
from compiler.resolve.types import BaseImageFacts

VENV_CONDA_PACKAGES = {"python", "pip"}
DEFAULT_CONDA_PYTHON = "3.11"


@dataclass(frozen=True)
class EnvironmentStrategy:
    """The chosen way to create the environment, the Python it runs, and why it was chosen."""

    kind: Literal["venv", "conda"]
    python: str
    reason: str
    pip: tuple[str, ...]
    conda: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    glibc: str | None = None  # the base image's glibc when its recipe states it (see compiler/lock/pip_resolve.py)


def _python_matches(specifier: str, python: str) -> bool:
    return satisfiable(",".join(s for s in (specifier, f"=={python}.*") if s))


def _conda_python(merged: MergedEnvironment) -> str:
    """The Python version a conda environment gets: the X.Y its constraint pins, else the default."""
    spec = merged.python.specifier if merged.python else ""
    for minor in range(20, 5, -1):
        candidate = f"3.{minor}"
        if spec and _python_matches(spec, candidate):
            return candidate
    return DEFAULT_CONDA_PYTHON


def choose_strategy(merged: MergedEnvironment, facts: BaseImageFacts, conda_available: bool) -> EnvironmentStrategy:
    """Pick venv or conda for ``merged`` on the base image described by ``facts``."""
    pip_lines = tuple(d.pip_line() for d in merged.pip)
    python_spec = merged.python.specifier if merged.python else ""
    conda_only = sorted(d.name for d in merged.conda if d.name not in VENV_CONDA_PACKAGES)
    if not conda_only and facts.python and _python_matches(python_spec, facts.python):
        wanted = f"python{python_spec}" if python_spec else "no python pin"
        return EnvironmentStrategy(
            kind="venv",
            python=facts.python,
            reason=(
                f"the conda part is only python and pip ({wanted}) and base image {facts.image} provides "
                f"Python {facts.python} ({facts.how}): a virtual environment with pip packages"
            ),
            pip=merged.venv_pip_lines(),  # a conda file's pip pin (pip<22.0) is the venv's pip
            glibc=facts.glibc,
        )
    mlflow_python = [r for r in (merged.python.constraints if merged.python else ()) if r.source.kind == "mlflow_model"]
    if mlflow_python and not conda_only and facts.python:
        raise StrategyError(
            f"{mlflow_python[0].source} records Python {mlflow_python[0].specifier.strip('=.*')} but base image "
            f"{facts.image} provides Python {facts.python}: choose a base image with that Python (--base-image) "
            f"or override with --python-version {facts.python}"
        )
    if conda_only:
        why = f"conda packages {', '.join(conda_only)} need a conda environment"
    elif not facts.python:
        why = f"base image {facts.image} has no Python pkgc can use ({facts.how})"
    else:
        why = f"the conda file asks for python '{python_spec}' but base image {facts.image} provides Python {facts.python}"
    if not conda_available:
        raise StrategyError(
            f"cannot create the environment: {why}, and the conda path is not available; "
            "list the packages under 'pip:' and match the base image's Python, or use a base image with that Python"
        )
    conda_lines = tuple(
        f"{d.name}{d.specifier}" for d in merged.conda if d.name != "python"
    ) + (f"python{python_spec}" if python_spec else f"python=={_conda_python(merged)}.*",)
    return EnvironmentStrategy(
        kind="conda",
        python=_conda_python(merged),
        reason=f"{why}: the conda path (a locked conda environment installed without a conda binary)",
        pip=pip_lines,
        conda=tuple(sorted(conda_lines)),
        channels=merged.channels,
        glibc=facts.glibc,
    )
