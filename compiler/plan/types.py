"""IR of the plan stage: a backend-neutral description of the image.

An ImagePlan is the base image (by reference, and by digest once resolved), an ordered list of
layers (each with its kind, its *why*, and either the context files it copies or the recipe that
makes it), and the image config. Both back ends read it: the Dockerfile back end renders it, the OCI
back end writes its layers and config directly. It is built without I/O from typed inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from compiler.platform import AMD64, Platform

LayerKind = Literal["user", "environment", "runtime", "model", "inputs", "code", "sbom"]


@dataclass(frozen=True)
class ContextFile:
    """A file of the build context: copied from ``source`` (a file or folder) or given as ``data``."""

    dest: str
    source: Path | None = None
    data: bytes | None = None
    executable: bool = False


@dataclass(frozen=True)
class Copy:
    """Context files (``src``, a file or folder of the context) placed at ``dest`` in the image."""

    kind: LayerKind
    src: str
    dest: str
    why: str
    from_stage: str | None = None  # the environment: made by its recipe, not taken from the context


@dataclass(frozen=True)
class Layer:
    """One layer pkgc adds on the base, with the reason it sits where it does.

    ``copies`` place context files; the ``user`` layer has none (made from ``ImageConfig.user``),
    the ``environment`` layer is made by ``ImagePlan.environment`` (its recipe)."""

    kind: LayerKind
    why: str
    copies: tuple[Copy, ...] = ()


@dataclass(frozen=True)
class EnvironmentBuild:
    """The environment layer's recipe: made from local files only (locked wheels, a local channel)."""

    strategy: Literal["venv", "conda"]
    prefix: str
    requirements: str | None  # context path of the hashed pip requirements
    wheels: str | None  # context folder of the wheels
    conda_lock: str | None = None
    conda_channel: str | None = None
    installer_wheels: str | None = None
    slim: bool = False  # leave out installers and test folders (compiler/envbuild/slim.py)
    slim_keep: tuple[str, ...] = ()  # distributions the environment asks for by name: never slimmed away
    bytecode: bool = True  # ship byte-code
    system_site_packages: bool = False  # the venv sees the base interpreter's packages (the base has some)


@dataclass(frozen=True)
class BaseImage:
    """The base image: its reference and, once resolved, its manifest digest (in pkgc's OCI store;
    an engine knows none for a local image) and its image id (the sha256 of its config, which both
    back ends know: the SBOM names the base by it)."""

    reference: str
    digest: str | None = None
    image_id: str | None = None
    packages: tuple[BasePackage, ...] = ()  # what its Python already has (read from its layers' dist-info)


@dataclass(frozen=True)
class BasePackage:
    """A Python distribution the base image's interpreter already has, as its dist-info says."""

    name: str
    version: str
    site: str  # the in-image folder it is installed in
    requires: tuple[str, ...] = ()  # its Requires-Dist lines


@dataclass(frozen=True)
class ImageConfig:
    """The image's runtime settings: what ENV/LABEL/USER/WORKDIR/EXPOSE/ENTRYPOINT/CMD say."""

    env: dict[str, str]
    labels: dict[str, str]
    user: str
    uid: int
    workdir: str
    port: int | None  # the exposed (scoring) port; None for a batch job
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] = ()  # the CMD (a custom or Triton server's start command); empty: none
    path_prefix: str | None = None  # put before the base image's PATH


@dataclass(frozen=True)
class ImagePlan:
    """Everything both back ends need, decided; they only write it out."""

    base: BaseImage
    environment: EnvironmentBuild | None
    layers: tuple[Layer, ...]
    config: ImageConfig
    files: tuple[ContextFile, ...] = field(default_factory=tuple)
    tag: str = ""
    platform: Platform = AMD64  # the image's target: its environment's wheels, libraries and config

    @property
    def copies(self) -> tuple[Copy, ...]:
        """Every copy of every layer, in layer order (the Dockerfile's COPY lines)."""
        return tuple(copy for layer in self.layers for copy in layer.copies)

    def layer(self, kind: LayerKind) -> Layer | None:
        return next((layer for layer in self.layers if layer.kind == kind), None)

    def history(self) -> list[tuple[str, str]]:
        """(created_by, comment) per layer, as both back ends record it."""
        return [(f"{layer.kind} layer", layer.why) for layer in self.layers]

    def layer_summary(self) -> list[str]:
        """A readable listing of the plan (``--emit plan``, golden tests)."""
        base = f" @ {self.base.digest or self.base.image_id}" if self.base.digest or self.base.image_id else ""
        lines = [f"base       {self.base.reference}{base}"]
        if self.environment:
            env = self.environment
            lines.append(f"builder    {env.strategy} environment at {env.prefix} (network off, from local files)")
        config = self.config
        for layer in self.layers:
            if layer.kind == "user":
                lines.append(f"{'user':<10} {config.user} ({config.uid})    # {layer.why}")
            for copy in layer.copies:
                origin = f"--from={copy.from_stage} " if copy.from_stage else ""
                lines.append(f"{copy.kind:<10} COPY {origin}{copy.src} {copy.dest}    # {copy.why}")
        port = f"port {config.port}" if config.port else "no port (a batch job)"
        lines.append(f"runtime    USER {config.user} ({config.uid}), WORKDIR {config.workdir}, {port}")
        if config.command:
            lines.append(f"runtime    CMD {list(config.command)}")
        for key in sorted(config.env):
            lines.append(f"env        {key}={config.env[key]}")
        for key in sorted(config.labels):
            lines.append(f"label      {key}={config.labels[key]}")
        return lines
