"""Online-deployment YAMLs (managed and Kubernetes) read as package specs, as ``--package-model`` does.

A deployment document is validated with its own schema (so errors name the keys as written), then
translated into the same ``PackageSpec`` a package.yml gives, with a key map so that later errors
still name the deployment's keys and lines. No second pipeline: everything after loading is shared.

Translation (deployment -> package):

- package name: ``<endpoint_name>-<name>-pkg`` (``--target-environment`` overrides it);
- ``model`` -> ``model`` (a path, a folder, ``{name, version, path, type, properties}``, any reference);
  ``model_mount_path`` -> ``model_configuration.mount_path``; the mode is ``copy``: the deployment
  that uses the package names no model (``--write-deployment``), so the package carries it;
- ``code_configuration`` -> ``inferencing_server: {type: azureml_online, code_configuration}``;
- ``environment``: a reference -> ``base_environment_source.resource_id``; inline ``{image, conda_file}``
  (relative to the YAML) -> the base environment directly;
- a custom container (``environment.inference_config``: liveness, readiness and scoring routes): with
  a scoring script, Azure ML's inference server runs it (its routes must be that server's); without
  one, ``inferencing_server: {type: custom}`` with those routes and no start command: the image's
  own ENTRYPOINT and CMD run (bring your own container);
- ``environment_variables``, ``tags`` as they are; ``request_settings`` and the probes -> run settings
  (``compiler.runsettings``); the other deployment-only keys are accepted and reported once as ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from compiler.errors import SpecError, excerpt
from compiler.runsettings import QUANTITY, Probe, RunSettings
from compiler.spec.model import (
    AssetName, EnvVars, ContainerPath, HostPath, InnerPath, Line, ModelSource, PropertyValue, Route, Text,
)  # fmt: skip
from compiler.spec.kinds import DEPLOYMENT_KEYS, DEPLOYMENT_SCHEMA, PACKAGE_KEYS, is_deployment  # noqa: F401 (re-exported)
from compiler.spec.refs import looks_like_reference
from compiler.spec.values import ASSET_NAME
from compiler.spec.yamldoc import KeyPath, YamlDocument

AZUREML_SERVER_PORT = 5001  # compiler.servers.azureml_online.AZUREML_ONLINE's routes
# Deployment-only keys that mean nothing to a container image: accepted, reported once as ignored.
IGNORED_KEYS = ("instance_type", "app_insights_enabled", "egress_public_network_access", "private_network_connection",
                "scale_settings", "data_collector", "properties", "description", "id",
                "provisioning_state", "type")  # fmt: skip
# Keys the written deployment keeps as they are (the package holds model, code, environment and variables).
DROPPED_BY_PACKAGE = ("model", "model_mount_path", "code_configuration", "environment", "environment_variables")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class DeploymentCode(_Strict):
    code: HostPath
    scoring_script: InnerPath


class InferenceConfig(_Strict):
    """A custom container's routes (Azure SDK's ``inference_config``): each ``{port, path}``."""

    liveness_route: Route
    readiness_route: Route
    scoring_route: Route


class InlineEnvironment(_Strict):
    """An anonymous environment written in the deployment: an image and, usually, a conda file."""

    name: AssetName | None = None
    version: AssetName | None = None
    image: Line
    conda_file: HostPath | None = None
    description: Text | None = None
    tags: dict[Text, Text] = Field(default_factory=dict)
    os_type: Literal["linux", "Linux"] | None = None
    inference_config: InferenceConfig | None = None


def _environment_kind(value: object) -> str:
    return "inline" if isinstance(value, (dict, InlineEnvironment)) else "reference"


EnvironmentSource = Annotated[
    Union[Annotated[Line, Tag("reference")], Annotated[InlineEnvironment, Tag("inline")]], Discriminator(_environment_kind)
]


class ProbeSettings(_Strict):
    initial_delay: int = Field(10, ge=0, le=3600)
    period: int = Field(10, ge=1, le=3600)
    timeout: int = Field(2, ge=1, le=3600)
    success_threshold: int = Field(1, ge=1, le=1000)
    failure_threshold: int = Field(30, ge=1, le=1000)


class RequestSettings(_Strict):
    request_timeout_ms: int | None = Field(None, ge=1, le=3_600_000)
    max_concurrent_requests_per_instance: int | None = Field(None, ge=1, le=1000)
    max_queue_wait_ms: int | None = Field(None, ge=0, le=3_600_000)


def _quantity(value: str) -> str:
    if not QUANTITY.match(value):
        raise ValueError("must be a Kubernetes quantity such as 0.5, 500m or 2Gi")
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]


class ResourceSettings(_Strict):
    """Requests or limits of a Kubernetes deployment (Kubernetes quantities: ``0.5``, ``500m``, ``2Gi``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: Quantity | None = Field(None, alias="nvidia.com/gpu")

    def pairs(self) -> tuple[tuple[str, str], ...]:
        values = (("cpu", self.cpu), ("memory", self.memory), ("nvidia.com/gpu", self.gpu))
        return tuple((name, value) for name, value in values if value is not None)


class ResourceRequirements(_Strict):
    requests: ResourceSettings | None = None
    limits: ResourceSettings | None = None


class DeploymentKeys(_Strict):
    """The keys Azure's base deployment schema gives every deployment, online or batch."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    schema_: Text | None = Field(default=None, alias="$schema")
    name: AssetName
    endpoint_name: AssetName
    description: Text | None = None
    tags: dict[Text, Text] = Field(default_factory=dict)
    properties: dict[Text, PropertyValue] = Field(default_factory=dict)
    id: Text | None = None
    provisioning_state: Text | None = None
    model: ModelSource | None = None
    code_configuration: DeploymentCode | None = None
    environment: EnvironmentSource | None = None


class OnlineDeployment(DeploymentKeys):
    """A managed or Kubernetes online deployment (Azure ML CLI v2 YAML)."""

    type: Literal["managed", "kubernetes"] | None = None
    model_mount_path: ContainerPath | None = None
    environment_variables: EnvVars = Field(default_factory=dict)
    instance_type: Text | None = None
    instance_count: int | None = Field(None, ge=1, le=1000)
    app_insights_enabled: bool | None = None
    egress_public_network_access: Literal["enabled", "disabled"] | None = None
    private_network_connection: bool | None = None
    scale_settings: dict[Text, Any] | None = None
    request_settings: RequestSettings | None = None
    liveness_probe: ProbeSettings | None = None
    readiness_probe: ProbeSettings | None = None
    data_collector: dict[Text, Any] | None = None
    resources: ResourceRequirements | None = None  # Kubernetes deployments


@dataclass(frozen=True)
class InlineBase:
    """An inline environment, its conda file resolved against the deployment YAML's folder."""

    name: str
    image: str
    conda_file: Path | None


@dataclass(frozen=True)
class DeploymentInfo:
    """What a deployment states beyond the package: names, run settings, the keys pkgc ignores."""

    endpoint_name: str
    name: str
    run_settings: RunSettings
    ignored: tuple[str, ...] = ()
    inline_environment: InlineBase | None = None
    kind: Literal["online", "batch"] = "online"
    job: dict[str, str] | None = None  # a batch deployment's settings: the job's defaults

    def summary(self) -> dict:
        summary = {"kind": self.kind, "endpoint_name": self.endpoint_name, "name": self.name,
                   "run_settings": self.run_settings.summary(), "ignored": list(self.ignored)}  # fmt: skip
        if self.job is not None:
            summary["job"] = dict(self.job)
        if self.inline_environment is not None:
            env = self.inline_environment
            summary["environment"] = {"name": env.name, "image": env.image, "conda_file": str(env.conda_file) if env.conda_file else None}
        return summary


@dataclass(frozen=True)
class Translated:
    data: dict
    key_map: dict[KeyPath, KeyPath] = field(default_factory=dict)  # package key -> deployment key
    info: DeploymentInfo | None = None


def package_name(endpoint: str, name: str) -> str:
    """The package's name: ``<endpoint>-<deployment>-pkg`` (documented in README)."""
    return f"{endpoint}-{name}-pkg"


def _run_settings(dep: OnlineDeployment) -> RunSettings:
    def probe(p: ProbeSettings | None) -> Probe | None:
        return None if p is None else Probe(**p.model_dump())

    request = dep.request_settings
    return RunSettings(
        request_timeout_ms=request.request_timeout_ms if request else None,
        max_concurrent_requests=request.max_concurrent_requests_per_instance if request else None,
        instance_count=dep.instance_count,
        liveness=probe(dep.liveness_probe),
        readiness=probe(dep.readiness_probe),
        requests=dep.resources.requests.pairs() if dep.resources and dep.resources.requests else (),
        limits=dep.resources.limits.pairs() if dep.resources and dep.resources.limits else (),
    )


def _ignored(dep: OnlineDeployment, raw: dict) -> tuple[str, ...]:
    ignored = [key for key in IGNORED_KEYS if key in raw]
    if dep.request_settings and dep.request_settings.max_queue_wait_ms is not None:
        ignored.append("request_settings.max_queue_wait_ms")
    return tuple(ignored)


def target_name(endpoint: str, name: str, doc: YamlDocument, target: str | None) -> str:
    """``--target-environment``, else ``<endpoint>-<name>-pkg`` when that is a valid asset name."""
    package = target or package_name(endpoint, name)
    if target is None and not ASSET_NAME.match(package):
        raise SpecError(doc.problem(("name",), f"the package name '{excerpt(package)}' (<endpoint_name>-<name>-pkg) is longer "
                                                "than 64 characters: pass --target-environment NAME"))  # fmt: skip
    return package


def translate(dep: OnlineDeployment, raw: dict, doc: YamlDocument, target: str | None) -> Translated:
    """The package spec data a deployment stands for, with the key map back to the deployment's keys."""
    name = target_name(dep.endpoint_name, dep.name, doc, target)
    key_map: dict[KeyPath, KeyPath] = {("target_environment",): ("name",)}
    run = _run_settings(dep)
    env_vars = {**run.environment(), **dep.environment_variables}
    data: dict = {"target_environment": name, "inferencing_server": {"type": "azureml_online"},
                  "model_configuration": {"mode": "copy"}, "tags": dict(dep.tags), "environment_variables": env_vars}  # fmt: skip
    if raw.get("model") is not None:
        data["model"] = raw["model"]
    if dep.model_mount_path is not None:
        data["model_configuration"]["mount_path"] = dep.model_mount_path
        key_map[("model_configuration", "mount_path")] = ("model_mount_path",)
    if dep.code_configuration is not None:
        data["inferencing_server"]["code_configuration"] = dep.code_configuration.model_dump()
        key_map[("inferencing_server", "code_configuration")] = ("code_configuration",)
    key_map[("inferencing_server",)] = ("code_configuration",)
    inline = None
    if isinstance(dep.environment, str):
        data["base_environment_source"] = {"type": "environment_asset", "resource_id": dep.environment}
        key_map[("base_environment_source", "resource_id")] = ("environment",)
    elif dep.environment is not None:
        inline = inline_base(dep.environment, doc, name)
        if dep.environment.inference_config is not None:
            _custom_container(dep, dep.environment.inference_config, data, key_map, doc)
    key_map[("base_environment_source",)] = ("environment",)
    info = DeploymentInfo(dep.endpoint_name, dep.name, run, _ignored(dep, raw), inline)
    return Translated(data, key_map, info)


def _custom_container(dep: OnlineDeployment, config: InferenceConfig, data: dict, key_map: dict, doc: YamlDocument) -> None:
    """A custom container's routes: Azure ML's server when a scoring script is given, else the image's own."""
    key = ("environment", "inference_config")
    if dep.code_configuration is not None:
        for name, route in (("scoring_route", config.scoring_route), ("readiness_route", config.readiness_route),
                            ("liveness_route", config.liveness_route)):  # fmt: skip
            if route.port != AZUREML_SERVER_PORT or (name == "scoring_route" and route.path != "/score"):
                raise SpecError(doc.problem(key + (name,), f"with code_configuration, Azure ML's inference server runs the "
                                                           f"scoring script: it answers on port {AZUREML_SERVER_PORT}, scoring "
                                                           "at /score; drop code_configuration to run the image's own server"))  # fmt: skip
        return
    data["inferencing_server"] = {"type": "custom", "inference_configuration": config.model_dump()}
    key_map[("inferencing_server", "inference_configuration")] = key
    key_map[("inferencing_server",)] = key


def inline_base(env: InlineEnvironment, doc: YamlDocument, package: str) -> InlineBase:
    """The inline environment, its conda file checked now (relative to the deployment YAML)."""
    from compiler.deps.conda_file import parse_conda_file

    conda = None
    if env.conda_file is not None:
        conda = (doc.path.parent / env.conda_file).resolve()
        try:
            found = conda.is_file()
        except OSError:
            found = False
        if not found:
            raise SpecError(doc.problem(("environment", "conda_file"),
                                        f"conda file '{excerpt(env.conda_file)}' not found ({excerpt(str(conda))})"))  # fmt: skip
        parse_conda_file(conda, f"conda file {conda.name}")
    return InlineBase(env.name or f"{package}-env", env.image, conda)


def check_model_form(raw: dict, doc: YamlDocument) -> None:
    """``model: {path: azureml:...}`` mixes the two forms: a reference is written ``model: azureml:NAME:VERSION``."""
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("path"), str) and looks_like_reference(model["path"]):
        try:
            exists = (doc.path.parent / model["path"]).exists()
        except (OSError, ValueError):
            exists = False
        if model["path"].startswith(("azureml:", "models:/")) or not exists:
            raise SpecError(doc.problem(("model", "path"),
                                        f"'{excerpt(model['path'], 60)}' is a model reference, not a path: give either "
                                        "'model: <reference>' or 'model: {path: <local file or folder>}', not both"))  # fmt: skip
