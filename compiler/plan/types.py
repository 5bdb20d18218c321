"""IR of the plan stage: what goes into the build context and in which layer order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class ContextFile:
    """A file of the build context: copied from ``source`` (a file or folder) or given as ``data``."""

    dest: str
    source: Path | None = None
    data: bytes | None = None
    executable: bool = False


@dataclass(frozen=True)
class Copy:
    """One COPY layer of the final stage, with the reason it sits where it does."""

    kind: Literal["environment", "runtime", "model", "inputs", "code", "sbom"]
    src: str
    dest: str
    why: str
    from_stage: str | None = None


@dataclass(frozen=True)
class EnvironmentBuild:
    """The builder stage that creates the environment from local files only."""

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


@dataclass(frozen=True)
class ImagePlan:
    """Everything the Dockerfile template needs, decided; the template only writes it out."""

    base_image: str
    environment: EnvironmentBuild | None
    copies: tuple[Copy, ...]
    env: dict[str, str]
    labels: dict[str, str]
    user: str
    uid: int
    workdir: str
    port: int | None  # the exposed (scoring) port; None for a batch job
    entrypoint: tuple[str, ...] | None
    path_prefix: str | None
    files: tuple[ContextFile, ...] = field(default_factory=tuple)
    tag: str = ""
    command: tuple[str, ...] = ()  # the CMD (a custom or Triton server's start command); empty: none

    def layer_summary(self) -> list[str]:
        """A readable listing of the layer order (``--emit plan``, golden tests)."""
        lines = [f"base       {self.base_image}"]
        if self.environment:
            env = self.environment
            lines.append(f"builder    {env.strategy} environment at {env.prefix} (network off, from local files)")
        for copy in self.copies:
            origin = f"--from={copy.from_stage} " if copy.from_stage else ""
            lines.append(f"{copy.kind:<10} COPY {origin}{copy.src} {copy.dest}    # {copy.why}")
        port = f"port {self.port}" if self.port else "no port (a batch job)"
        lines.append(f"runtime    USER {self.user} ({self.uid}), WORKDIR {self.workdir}, {port}")
        if self.command:
            lines.append(f"runtime    CMD {list(self.command)}")
        for key in sorted(self.env):
            lines.append(f"env        {key}={self.env[key]}")
        for key in sorted(self.labels):
            lines.append(f"label      {key}={self.labels[key]}")
        return lines
