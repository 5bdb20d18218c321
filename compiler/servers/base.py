"""What a server type is (``ServerType``) and the server a package gets from it (``InferenceServer``).

A server type reads the spec's ``inferencing_server`` and gives an ``InferenceServer``: what it
injects into the environment (its requirements and preferred pins: compiler/servers/pins.py), the
files pkgc ships for it (launchers from templates/runtime; an MLflow model's scoring code), and how
it starts (command, variables) and is probed (routes). The resolver chooses the type once; every
later stage asks the server's ``kind``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from compiler.labels import Route
from compiler.mlflow.mlmodel import MLflowModel
from compiler.mlflow.scoring import GeneratedCode
from compiler.spec.load import SpecFile


class ModelFolder(Protocol):
    """The model's files as resolved (compiler.resolve.types.ResolvedModel): the tree and the model's folder in it."""

    @property
    def tree_path(self) -> Path: ...

    @property
    def root_name(self) -> str: ...


@dataclass(frozen=True)
class ServerRequest:
    """What a server type reads: the spec (its problems name the spec's keys), the model's files and
    the model's folder in the container."""

    spec_file: SpecFile
    model: ModelFolder
    model_dir: str


@dataclass(frozen=True)
class RuntimeFile:
    """A file of templates/runtime that pkgc ships in the image for the server."""

    name: str  # in templates/runtime
    dest: str  # in the image
    why: str
    executable: bool


class ServerType(ABC):
    """One kind of inference server; one instance per module, listed in compiler/servers/registry.py."""

    name: ClassVar[str]  # the spec's inferencing_server.type
    needs_code: ClassVar[bool] = False  # code_configuration is required unless the model is an MLflow model
    runtime_files: ClassVar[tuple[RuntimeFile, ...]] = ()
    entrypoint_default: ClassVar[bool] = False  # pkgc's entrypoint starts it when PKGC_SERVER is unset

    @abstractmethod
    def from_spec(self, request: ServerRequest) -> InferenceServer:
        """The server the spec describes, its routes and start command checked (SpecError naming the key)."""

    def mlflow_scoring(self, model: MLflowModel, model_subdir: str, cache_dir: Path) -> GeneratedCode | None:
        """The scoring code pkgc writes for an MLflow model the spec gives none (None: the server needs none)."""
        return None

    def start_variables(self, server: InferenceServer) -> dict[str, str]:
        """The entrypoint's variables: which server to start (unless the default) and its port."""
        env = {} if self.entrypoint_default else {"PKGC_SERVER": self.name}
        if server.default_port is not None:
            env["PKGC_PORT"] = str(server.default_port)
        return env

    def own_container(self, server: InferenceServer) -> bool:
        """Does the image keep its base image's ENTRYPOINT and CMD (a deployment's own container)?"""
        return False

    def __repr__(self) -> str:
        return f"<server type {self.name}>"


@dataclass(frozen=True)
class InferenceServer:
    """An inference server: what it needs installed, how it starts, and its three HTTP routes.

    ``command`` is the argv started from the working folder (empty: pkgc's entrypoint decides);
    ``environment`` its variables. A batch job has no routes (``score`` is None)."""

    kind: ServerType
    requirements: tuple[str, ...]
    score: Route | None
    readiness: Route | None
    liveness: Route | None
    command: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    preferred: tuple[str, ...] = ()  # exact pins taken when no other source names the package
    brought_by: tuple[str, ...] = ()  # packages that bring the server with their own pin

    @property
    def type(self) -> str:
        """The spec's name of the server type (``azureml_online``, ``custom``, ...)."""
        return self.kind.name

    @property
    def default_port(self) -> int | None:
        """The port the image exposes (the scoring route's), None for a batch job."""
        return self.score.port if self.score else None

    @property
    def ports(self) -> tuple[int, ...]:
        """Every distinct container port of the routes, the scoring port first."""
        routes = [r for r in (self.score, self.readiness, self.liveness) if r is not None]
        return tuple(dict.fromkeys(r.port for r in routes))
