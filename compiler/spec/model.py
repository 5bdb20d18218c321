"""The raw, validated model of package.yml (Azure ML ModelVersionPackage), with canonical key names.

Both spellings found in real files are accepted; ``load.py`` renames the old ones before validation:
``target_environment_name`` -> ``target_environment``, ``entry_script`` -> ``scoring_script``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Callable, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator

from compiler.errors import excerpt
from compiler.spec import values
from compiler.spec.reserved_env import reserved_env_problem

ENV_VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _rule(problem: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic validator from one of ``values``' rules (the reason becomes the error message)."""

    def check(value: str) -> str:
        if reason := problem(value):
            raise ValueError(reason)
        return value

    return AfterValidator(check)


def _asset_name(value: str) -> str | None:
    return None if values.ASSET_NAME.match(value) else values.ASSET_NAME_RULE


def _route(value: str) -> str | None:
    return None if values.ROUTE.match(value) else "must be a URL path: '/' then letters, digits and URL punctuation"


Text = Annotated[str, _rule(values.text_problem)]  # free text: no NUL
ImageText = Annotated[str, _rule(values.image_text_problem)]  # text that reaches the image: no newline, no NUL
Line = Annotated[str, Field(min_length=1, max_length=4096), _rule(values.line_problem)]  # a reference, one line
def _env_names(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not ENV_VAR_PATTERN.match(key):
            raise ValueError(f"'{excerpt(key)}' is not a valid environment variable name")
    return value


EnvName = Annotated[str, _rule(reserved_env_problem)]  # not one pkgc sets (the key and its line are named)
EnvVars = Annotated[dict[EnvName, ImageText], AfterValidator(_env_names)]  # names as a shell and an engine take them
HostPath = Annotated[str, Field(min_length=1), _rule(values.host_path_problem)]  # a path on this machine
InnerPath = Annotated[str, Field(min_length=1), _rule(values.inner_path_problem)]  # inside the code folder
AssetName = Annotated[str, _rule(_asset_name)]  # a name or version used as a path part and an image tag
# A property value as YAML writes it: ``azureml.unpack: true`` (a boolean) is the text "true".
PropertyValue = Annotated[Text, BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else v)]


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
    resource_id: Line


class CodeConfiguration(_Strict):
    code: HostPath
    scoring_script: InnerPath


class ServerCodeConfiguration(_Strict):
    """A custom server's own files (settings, handlers): a folder, and optionally a script in it."""

    code: HostPath
    scoring_script: InnerPath | None = None


class Route(_Strict):
    """An HTTP route of a custom server: a container port (required) and a path."""

    port: int
    path: Annotated[str, _rule(_route)] = "/"

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"must be a port number (1-65535), got {value}")
        return value


class OnlineInferenceConfiguration(_Strict):
    """How a custom (or Triton) server is started and probed.

    ``entry_script`` is the start command, split like a shell word list (shlex) but run without a
    shell, from the code folder; ``configuration`` holds its environment variables."""

    liveness_route: Route | None = None
    readiness_route: Route | None = None
    scoring_route: Route | None = None
    entry_script: Line | None = None  # a command in the server image, not a file here
    configuration: EnvVars = Field(default_factory=dict)


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


def _plain_name(value: str) -> str:
    if "/" in value or "\\" in value or value in ("", ".", "..") or len(value) > 255:
        raise ValueError("must be a plain file name")
    return value


LogLevel = Annotated[Literal["debug", "info", "warning", "error", "critical"],
                     BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]  # fmt: skip
FileName = Annotated[str, BeforeValidator(_plain_name)]


class BatchRetrySettings(_Strict):
    max_retries: int | None = Field(None, ge=0, le=1000)
    timeout: int | None = Field(None, ge=1, le=7 * 24 * 3600)  # seconds per mini-batch


class BatchJobSettings(_Strict):
    """A batch job's defaults, named as Azure's batch deployment ``settings`` name them (a setting not
    written takes Azure's default); a job's own flags win. Absent: the strict driver (no retries,
    the first failed file stops the job)."""

    mini_batch_size: int | None = Field(None, ge=1, le=100_000)
    output_action: Literal["append_row", "summary_only"] | None = None
    output_file_name: FileName | None = None
    max_concurrency_per_instance: int | None = Field(None, ge=1, le=256)
    retry_settings: BatchRetrySettings | None = None
    error_threshold: int | None = Field(None, ge=-1)
    logging_level: LogLevel | None = None


class AzureMLBatchServer(_Strict):
    """An Azure ML batch deployment's scoring script (init() and run(mini_batch)), run as a job; an
    MLflow model needs none (pkgc generates it, as Azure does)."""

    type: Literal["azureml_batch"]
    code_configuration: CodeConfiguration | None = None
    settings: BatchJobSettings | None = None


SERVER_TYPES = ("azureml_online", "custom", "triton", "azureml_batch")
InferencingServer = Annotated[
    Union[AzureMLOnlineServer, CustomOnlineServer, TritonServer, AzureMLBatchServer], Field(discriminator="type")
]


class ModelConfiguration(_Strict):
    mode: ModelMode = ModelMode.READONLY_MOUNT
    # Where the model sits in the container; the code folder is checked once it is known (load.py).
    mount_path: Annotated[str, _rule(values.container_path_problem)] | None = None


class LocalModel(_Strict):
    """A model given by path (relative to package.yml), optionally named and typed."""

    path: HostPath
    name: AssetName | None = None
    version: AssetName | None = None
    type: Literal["custom_model", "mlflow_model"] | None = None
    # Azure ML's model properties; ``azureml.unpack: true`` unpacks a .tar.gz model when it is stored.
    properties: dict[Text, PropertyValue] = Field(default_factory=dict)
    description: Text | None = None


def _model_kind(value: object) -> str:
    return "local" if isinstance(value, (dict, LocalModel)) else "reference"


# A reference or path (text), or {path, name, version, type}; the tag only picks which one is checked.
ModelSource = Annotated[
    Union[Annotated[HostPath, Tag("reference")], Annotated[LocalModel, Tag("local")]], Discriminator(_model_kind)
]


ContainerPath = Annotated[str, _rule(values.container_path_problem)]


def _input_path_kind(value: object) -> str:
    return "url" if isinstance(value, (dict, BaseModel)) else "local"


class InputPathUrl(_Strict):
    """The SDK's nested form of an input's path; pkgc reads local files and folders only."""

    input_path_type: Literal["url"] = "url"
    url: HostPath


class PackageInput(_Strict):
    """An extra asset the model needs (label map, tokenizer...), placed like the model (Azure SDK ModelPackageInput)."""

    type: Literal["uri_file", "uri_folder"]
    path: Annotated[
        Union[Annotated[HostPath, Tag("local")], Annotated[InputPathUrl, Tag("url")]], Discriminator(_input_path_kind)
    ]
    mode: Literal["readonly_mount", "download"] = "readonly_mount"
    mount_path: ContainerPath

    @field_validator("path", mode="before")
    @classmethod
    def _local_only(cls, value: object) -> object:
        if isinstance(value, dict) and value.get("input_path_type") in ("path_id", "path_version"):
            raise ValueError("data assets (path_id, path_version) are not in pkgc's workspace: give a local file or folder")
        return value

    @property
    def local_path(self) -> str:
        return self.path if isinstance(self.path, str) else self.path.url.removeprefix("file://")


class PackageSpec(_Strict):
    """A validated ModelVersionPackage document (canonical key names)."""

    schema_: Text | None = Field(default=None, alias="$schema")
    target_environment: AssetName
    target_environment_version: AssetName | None = None
    base_environment_source: BaseEnvironmentSource | None = None
    inferencing_server: InferencingServer
    model_configuration: ModelConfiguration = Field(default_factory=ModelConfiguration)
    model: ModelSource | None = None
    tags: dict[Text, Text] = Field(default_factory=dict)
    environment_variables: EnvVars = Field(default_factory=dict)
    inputs: list[PackageInput] = Field(default_factory=list, max_length=32)

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    @property
    def code_configuration(self) -> CodeConfiguration | ServerCodeConfiguration | None:
        return self.inferencing_server.code_configuration

    @property
    def mode(self) -> ModelMode:
        return self.model_configuration.mode.effective
