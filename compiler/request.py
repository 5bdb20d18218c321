"""What ``pkgc build`` and ``pkgc lock`` were asked: the pipeline's input, parsed and checked by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from compiler.platform import Platform
from compiler.spec.overrides import Overrides

Emit = Literal["spec", "deps", "plan", "dockerfile"]
Builder = Literal["auto", "oci", "docker"]


@dataclass(frozen=True)
class BuildRequest:
    spec_path: Path
    model: str | None = None
    emit: Emit | None = None
    relock: bool = False
    lock_path: Path | None = None
    template: Path | None = None
    no_cache: bool = False
    base_image: str | None = None
    python_version: str | None = None
    target_environment: str | None = None  # overrides the spec's name (a deployment's <endpoint>-<name>-pkg)
    builder: Builder = "auto"
    slim: bool | None = None  # --slim/--no-slim; None: the config's ``slim``
    bytecode: bool | None = None  # --bytecode/--no-bytecode; None: the config's ``bytecode``
    compression: str | None = None  # --compression gzip|zstd|none (OCI back end); None: the config's ``compression``
    check_lock: bool = False  # pkgc lock --check: the lock must exist already
    model_image_wanted: bool = False  # --model-output/--model-push: only a readonly_mount package has a model image
    overrides: Overrides | None = None  # --set KEY=VALUE, --endpoint-name (compiler/spec/overrides.py)
    platforms: tuple[Platform, ...] = ()  # --platform; empty: the config's ``platforms``, else the host's
