"""IR of the resolve stage: every asset the package needs, located and fixed to one version."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compiler.servers.base import InferenceServer
from compiler.mlflow.mlmodel import MLflowModel
from compiler.runsettings import RunSettings
from compiler.spec.model import ModelMode

MODELS_ROOT = "/var/azureml-app/azureml-models"
APP_ROOT = "/var/azureml-app"


@dataclass(frozen=True)
class ResolvedModel:
    """One model version whose files are the read-only tree ``tree_path`` (laid out as in the image)."""

    name: str
    version: str
    type: str
    tree_digest: str
    tree_path: Path
    root_name: str
    reference: str

    @property
    def is_mlflow(self) -> bool:
        return self.type == "mlflow_model"


@dataclass(frozen=True)
class BaseImageFacts:
    """What pkgc knows of a base image: its Python (major.minor) and whether it carries conda."""

    image: str
    python: str | None
    has_conda: bool
    how: str  # where the facts came from: recipe, image label, probe
    glibc: str | None = None  # from the recipe, when it states one: widens the manylinux wheels pip may pick


@dataclass(frozen=True)
class ResolvedEnvironment:
    name: str
    version: str
    image: str
    conda_file: Path | None
    conda_label: str


@dataclass(frozen=True)
class ResolvedCode:
    """The scoring code: a folder copied to ``/var/azureml-app/<folder name>``."""

    directory: Path
    scoring_script: str

    @property
    def container_dir(self) -> str:
        return f"{APP_ROOT}/{self.directory.name}"

    @property
    def container_script(self) -> str:
        return f"{self.container_dir}/{self.scoring_script}"


@dataclass(frozen=True)
class ResolvedInput:
    """An extra asset (``inputs:``) stored like a model: the tree ``tree_path/root_name`` placed at ``mount_path``."""

    type: str  # uri_file | uri_folder
    mount_path: str
    tree_digest: str
    tree_path: Path
    root_name: str


@dataclass(frozen=True)
class ResolvedPackage:
    spec_path: Path
    target_name: str
    target_version: str | None
    mode: ModelMode
    model: ResolvedModel
    environment: ResolvedEnvironment | None
    server: InferenceServer
    code: ResolvedCode | None
    model_dir: str
    environment_variables: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    mlflow: MLflowModel | None = None
    mlflow_environment: bool = True  # the MLflow model's own environment is merged (False: the spec brings environment and scoring script, as Azure uses them alone)
    run_settings: RunSettings | None = None  # from a deployment YAML: probes, request timeout, concurrency
    inputs: tuple[ResolvedInput, ...] = ()
    spec_digest: str = ""  # sha256 of the spec file as read (labelled; the plan does no I/O)
