"""Batch-deployment YAMLs (``modelBatchDeployment``, and the older ``batchDeployment``) read as package specs.

As for online deployments (``compiler.spec.deployment``), the document is validated with its own
schema (Azure SDK's ``ModelBatchDeploymentSchema``: the settings under ``settings:``, or at the top
level as older samples write them), then translated into a package spec:

- ``inferencing_server: {type: azureml_batch, code_configuration}`` (an MLflow model needs no code:
  pkgc generates the driver's scoring script, as Azure does);
- the settings become the batch server's ``settings`` (the job's defaults, baked into the image as
  ``PKGC_BATCH_*`` variables the driver reads: ``compiler.spec.batch_job``; a job's own flags win;
  a setting not written takes Azure's default);
- ``settings.environment_variables`` join ``environment_variables``; ``compute``, ``resources``,
  ``settings.instance_count`` and the other service-only keys are reported once as ignored.

A ``pipelineComponentBatchDeployment`` (``type: pipeline``) runs an Azure ML pipeline, not a model:
refused in one line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from compiler.errors import SpecError
from compiler.runsettings import RunSettings
from compiler.spec.deployment import (
    DeploymentInfo, DeploymentKeys, Translated, inline_base, package_name, target_name,
)  # fmt: skip
from compiler.spec.batch_job import job_variables
from compiler.spec.kinds import BATCH_ONLY_KEYS, BATCH_SCHEMA, SETTING_KEYS, is_batch_deployment  # noqa: F401 (re-exported)
from compiler.spec.model import BatchJobSettings, EnvVars, Text
from compiler.spec.yamldoc import KeyPath, YamlDocument

PIPELINE_SCHEMA = re.compile(r"pipelineComponentBatchDeployment", re.IGNORECASE)
IGNORED_KEYS = ("compute", "resources", "instance_count", "description", "properties", "id", "provisioning_state", "type", "job_definition")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)


class Settings(BatchJobSettings):
    """The job's settings (``settings:`` of a modelBatchDeployment, or the top level of an older one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)
    instance_count: int | None = Field(None, ge=1)  # of the cluster: nothing to a container image
    environment_variables: EnvVars = Field(default_factory=dict)


class JobResources(_Strict):
    """``resources`` of a batch deployment (the cluster): accepted, ignored."""

    instance_count: int | None = Field(None, ge=1)
    instance_type: Text | None = None
    shm_size: Text | None = None
    max_instance_count: int | None = None
    properties: dict[Text, Any] = Field(default_factory=dict)
    docker_args: Text | None = None


class BatchDeployment(DeploymentKeys, Settings):
    """A model batch deployment (Azure ML CLI v2 YAML): the common keys, the settings (also at the top
    level, as older samples write them), and the batch ones."""

    type: Literal["model"] | None = None
    compute: Text | None = None
    resources: JobResources | None = None
    settings: Settings | None = None
    job_definition: dict[Text, Any] | None = None


def refuse_pipeline(data: dict, doc: YamlDocument) -> None:
    """A pipeline component deployment has no model to package: one line."""
    key: KeyPath | None = None
    if PIPELINE_SCHEMA.search(str(data.get("$schema", ""))):
        key = ("$schema",)
    elif data.get("type") == "pipeline" or "component" in data:
        key = ("type",) if "type" in data else ("component",)
    if key is not None:
        raise SpecError(doc.problem(key, "a pipeline component batch deployment runs an Azure ML pipeline, not a model: "
                                         "pkgc packages model batch deployments (type: model)"))  # fmt: skip


def merged_settings(dep: BatchDeployment, raw: dict, doc: YamlDocument) -> Settings:
    """``settings:`` and the older top-level keys, one place each."""
    nested = raw.get("settings") if isinstance(raw.get("settings"), dict) else {}
    both = [key for key in SETTING_KEYS if key in nested and key in raw]  # environment_variables: two different keys
    if both:
        raise SpecError(doc.problem((both[0],), f"given both here and under settings: give settings.{both[0]} only"))
    values = {key: getattr(dep, key) for key in SETTING_KEYS if key in raw}
    if dep.settings is not None:
        values.update({key: getattr(dep.settings, key) for key in (*SETTING_KEYS, "instance_count") if key in nested})
    values["environment_variables"] = dict(dep.settings.environment_variables) if dep.settings else {}
    return Settings(**values)


def translate_batch(dep: BatchDeployment, raw: dict, doc: YamlDocument, target: str | None) -> Translated:
    """The package spec data a batch deployment stands for, with the key map back to its keys."""
    name = target_name(dep.endpoint_name, dep.name, doc, target)
    settings = merged_settings(dep, raw, doc)
    job = settings.model_dump(include=set(BatchJobSettings.model_fields), exclude_none=True)
    env_vars = {**dep.environment_variables, **settings.environment_variables}
    data: dict = {"target_environment": name, "inferencing_server": {"type": "azureml_batch", "settings": job},
                  "model_configuration": {"mode": "copy"}, "tags": dict(dep.tags), "environment_variables": env_vars}  # fmt: skip
    key_map: dict[KeyPath, KeyPath] = {("target_environment",): ("name",), ("inferencing_server",): ("code_configuration",),
                                       ("base_environment_source",): ("environment",)}  # fmt: skip
    if raw.get("model") is not None:
        data["model"] = raw["model"]
    if dep.code_configuration is not None:
        data["inferencing_server"]["code_configuration"] = dep.code_configuration.model_dump()
        key_map[("inferencing_server", "code_configuration")] = ("code_configuration",)
    inline = None
    if isinstance(dep.environment, str):
        data["base_environment_source"] = {"type": "environment_asset", "resource_id": dep.environment}
        key_map[("base_environment_source", "resource_id")] = ("environment",)
    elif dep.environment is not None:
        inline = inline_base(dep.environment, doc, name)
    ignored = [key for key in IGNORED_KEYS if key in raw]
    if settings.instance_count is not None:
        ignored.append("settings.instance_count")
    info = DeploymentInfo(dep.endpoint_name, dep.name, RunSettings(), tuple(ignored), inline, kind="batch",
                          job=job_variables(BatchJobSettings(**job), prefix=""))  # fmt: skip
    return Translated(data, key_map, info)


__all__ = ["BatchDeployment", "is_batch_deployment", "refuse_pipeline", "translate_batch", "package_name"]
