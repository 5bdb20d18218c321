"""Records kept in the workspace: one JSON file per asset version, never rewritten."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ModelType = Literal["custom_model", "mlflow_model"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRecord(_Record):
    """A registered model version; its files are the content-addressed tree ``tree``."""

    name: str
    version: str
    type: ModelType = "custom_model"
    tree: str  # sha256 of the tree, see workspace.trees
    root_name: str  # the file or folder name the model keeps under AZUREML_MODEL_DIR
    description: str = ""
    source: str = ""
    created: str = ""
    properties: dict[str, str] = Field(default_factory=dict)  # Azure ML model properties (azureml.unpack...)


class PackageInfo(_Record):
    """What a built package is: the image and the model it serves (Azure ML: an environment)."""

    image: str
    image_id: str
    mode: str
    model: str
    model_tree: str
    model_dir: str
    spec: str
    port: int | None = None  # None: a batch package (a job)
    lock: str | None = None  # blob digest of the lock file the image was built from


class EnvironmentRecord(_Record):
    """An environment version: a base image plus an optional conda file, or a built package."""

    name: str
    version: str
    image: str
    conda_file: str | None = None  # blob digest of the conda file's text
    conda_file_name: str | None = None
    description: str = ""
    created: str = ""
    package: PackageInfo | None = None
    tags: dict[str, str] = Field(default_factory=dict)
