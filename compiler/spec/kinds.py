"""Which kind of YAML a spec file is (package spec, online deployment, batch deployment), told from
its top-level keys and ``$schema`` alone: cheap checks with no pydantic model behind them, so a
package spec never imports the deployment models it does not use."""

from __future__ import annotations

import re

DEPLOYMENT_SCHEMA = re.compile(r"(managed|kubernetes)OnlineDeployment", re.IGNORECASE)
PACKAGE_KEYS = ("inferencing_server", "target_environment", "target_environment_name", "base_environment_source")
DEPLOYMENT_KEYS = ("endpoint_name", "instance_type", "instance_count", "code_configuration", "environment")

BATCH_SCHEMA = re.compile(r"batchDeployment", re.IGNORECASE)
SETTING_KEYS = ("mini_batch_size", "output_action", "output_file_name", "max_concurrency_per_instance",
                "retry_settings", "error_threshold", "logging_level")  # fmt: skip
BATCH_ONLY_KEYS = ("compute", "settings", *SETTING_KEYS)


def is_deployment(data: dict) -> bool:
    """A deployment YAML: its ``$schema`` says so, or it has deployment keys and no package keys."""
    schema = str(data.get("$schema", ""))
    if DEPLOYMENT_SCHEMA.search(schema):
        return True
    if "ModelVersionPackage" in schema or any(key in data for key in PACKAGE_KEYS):
        return False
    return any(key in data for key in DEPLOYMENT_KEYS)


def is_batch_deployment(data: dict) -> bool:
    """A batch deployment: its ``$schema`` says so, or it has batch-only keys (``compute``, ``settings``, ...)."""
    schema = str(data.get("$schema", ""))
    if BATCH_SCHEMA.search(schema):
        return True
    if schema or "inferencing_server" in data:
        return False
    return data.get("type") == "pipeline" or any(key in data for key in BATCH_ONLY_KEYS)
