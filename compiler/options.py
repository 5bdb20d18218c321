"""The one place that reads the process environment and config files into typed options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import tomli

DEFAULT_WORKSPACE = Path.home() / ".pkgc" / "workspace"
DEFAULT_CACHE = Path.home() / ".cache" / "pkgc"


@dataclass(frozen=True)
class Options:
    """Settings that do not come from package.yml."""

    workspace: Path
    cache_dir: Path
    registries: dict[str, Path] = field(default_factory=dict)
    mlflow_tracking_uri: str | None = None
    mlflow_base_image: str | None = None
    docker_host: str | None = None  # DOCKER_HOST, for tools (skopeo) that do not read it themselves
    source_date_epoch: int = 0  # SOURCE_DATE_EPOCH: the time of every file and history entry the OCI back end writes


def _read_config(start: Path) -> dict:
    """``pkgc.toml`` or ``pyproject.toml [tool.pkgc]`` in ``start`` (the spec's folder)."""
    for candidate in (start / "pkgc.toml", start / "pyproject.toml"):
        if candidate.is_file():
            with open(candidate, "rb") as fh:
                data = tomli.load(fh)
            section = data if candidate.name == "pkgc.toml" else data.get("tool", {}).get("pkgc")
            if section is not None:
                return section
    return {}


def load_options(
    workspace: str | None = None, config_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Options:
    """Build Options from CLI values, then the environment, then config files, then defaults."""
    env = os.environ if environ is None else environ
    config = _read_config(config_dir) if config_dir else {}
    root = workspace or env.get("PKGC_WORKSPACE") or config.get("workspace")
    registries = {name: Path(path) for name, path in (config.get("registries") or {}).items()}
    return Options(
        workspace=Path(root).expanduser() if root else DEFAULT_WORKSPACE,
        cache_dir=Path(env.get("PKGC_CACHE_DIR") or DEFAULT_CACHE).expanduser(),
        registries=registries,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI"),
        mlflow_base_image=config.get("mlflow_base_image"),
        docker_host=env.get("DOCKER_HOST") or None,
        source_date_epoch=_epoch(env.get("SOURCE_DATE_EPOCH")),
    )


def _epoch(text: str | None) -> int:
    """SOURCE_DATE_EPOCH as reproducible-builds.org defines it: a non-negative integer; unset: 0."""
    if not text:
        return 0
    if not text.strip().isdigit():
        from compiler.errors import SpecError, SpecProblem

        raise SpecError(SpecProblem("SOURCE_DATE_EPOCH", "", f"'{text}' is not a number of seconds since 1970"))
    return int(text)
