"""The raw, validated model of package.yml (Azure ML ModelVersionPackage), with canonical key names.

Both spellings found in real files are accepted; ``load.py`` renames the old ones before validation:
``target_environment_name`` -> ``target_environment``, ``entry_script`` -> ``scoring_script``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ENV_VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ROUTE_PATH_PATTERN = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$")  # as compiler.labels.ROUTE_RE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ModelMode(str, Enum):
    """How the model is placed in the package; ``download`` behaves as ``readonly_mount``."""

    READONLY_MOUNT = "readonly_mount"
    COPY = "copy"
    DOWNLOAD = "download"

    @property
    def effective(self) -> "ModelMode":
        return ModelMode.READONLY_MOUNT if self is ModelMode.DOWNLOAD else self


class BaseEnvironmentSource(_Strict):
    type: Literal["environment_asset"] = "environment_asset"
    resource_id: str = Field(min_length=1)


class CodeConfiguration(_Strict):
    code: str = Field(min_length=1)
    scoring_script: str = Field(min_length=1)


class ServerCodeConfiguration(_Strict):
    """A custom server's own files (settings, handlers): a folder, and optionally a script in it."""

    code: str = Field(min_length=1)
    scoring_script: str | None = Field(default=None, min_length=1)


class Route(_Strict):
    """An HTTP route of a custom server: a container port (required) and a path."""

    port: int
    path: str = "/"

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"must be a port number (1-65535), got {value}")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not ROUTE_PATH_PATTERN.match(value):
            raise ValueError("must be an HTTP path starting with '/' (letters, digits and -._~!$&'()*+,;=:@%/)")
        return value


class OnlineInferenceConfiguration(_Strict):
    """How a custom (or Triton) server is started and probed.

    ``entry_script`` is the start command, split like a shell word list (shlex) but run without a
    shell, from the code folder; ``configuration`` holds its environment variables."""

    liveness_route: Route | None = None
    readiness_route: Route | None = None
    scoring_route: Route | None = None
    entry_script: str | None = None
    configuration: dict[str, str] = Field(default_factory=dict)

    @field_validator("configuration")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_VAR_PATTERN.match(key):
                raise ValueError(f"'{key}' is not a valid environment variable name")
        return value


class AzureMLOnlineServer(_Strict):
    type: Literal["azureml_online"]
    code_configuration: CodeConfiguration | None = None


class CustomOnlineServer(_Strict):
    type: Literal["custom"]
    inference_configuration: OnlineInferenceConfiguration | None = None
    code_configuration: ServerCodeConfiguration | None = None


class TritonServer(_Strict):
    """NVIDIA Triton: the model folder is a Triton model repository; routes default to Triton's."""

    type: Literal["triton"]
    inference_configuration: OnlineInferenceConfiguration | None = None
    code_configuration: ServerCodeConfiguration | None = None


class AzureMLBatchServer(_Strict):
    """An Azure ML batch deployment's scoring script (init() and run(mini_batch)), run as a job."""

    type: Literal["azureml_batch"]
    code_configuration: CodeConfiguration


SERVER_TYPES = ("azureml_online", "custom", "triton", "azureml_batch")
InferencingServer = Annotated[
    Union[AzureMLOnlineServer, CustomOnlineServer, TritonServer, AzureMLBatchServer], Field(discriminator="type")
]


class ModelConfiguration(_Strict):
    mode: ModelMode = ModelMode.READONLY_MOUNT
    mount_path: str | None = None

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path inside the container")
        return value


class LocalModel(_Strict):
    """A model given by path (relative to package.yml), optionally named and typed."""

    path: str = Field(min_length=1)
    name: str | None = None
    version: str | None = None
    type: Literal["custom_model", "mlflow_model"] | None = None


class PackageSpec(_Strict):
    """A validated ModelVersionPackage document (canonical key names)."""

    schema_: str | None = Field(default=None, alias="$schema")
    target_environment: str
    target_environment_version: str | None = None
    base_environment_source: BaseEnvironmentSource | None = None
    inferencing_server: InferencingServer
    model_configuration: ModelConfiguration = Field(default_factory=ModelConfiguration)
    model: str | LocalModel | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    environment_variables: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    @field_validator("target_environment")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (at most 128)"
            )
        return value

    @field_validator("environment_variables")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_VAR_PATTERN.match(key):
                raise ValueError(f"'{key}' is not a valid environment variable name")
        return value

    @property
    def code_configuration(self) -> CodeConfiguration | ServerCodeConfiguration | None:
        return self.inferencing_server.code_configuration

    @property
    def mode(self) -> ModelMode:
        return self.model_configuration.mode.effective
