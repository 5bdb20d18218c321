"""A batch job's defaults as the variables the batch driver reads (``templates/runtime/pkgc_batch.py``).

A batch server's ``settings`` (a batch deployment's, or a package spec's) become ``PKGC_BATCH_*``
variables of the image; a setting not written takes Azure's default (azure-ai-ml's BatchDeployment
and BatchRetrySettings). The job's own flags (``pkgc run --batch``, or ``docker run ... --max-retries``)
win over them."""

from __future__ import annotations

from compiler.spec.model import BatchJobSettings, BatchRetrySettings

ENV_PREFIX = "PKGC_BATCH_"
AZURE_DEFAULTS = {"mini_batch_size": 10, "output_action": "append_row", "output_file_name": "predictions.csv",
                  "max_retries": 3, "timeout": 30, "error_threshold": -1, "max_concurrency": 1, "logging_level": "info"}  # fmt: skip


def job_variables(settings: BatchJobSettings, prefix: str = ENV_PREFIX) -> dict[str, str]:
    """The driver's defaults: the written settings, Azure's defaults for the rest (``prefix`` + upper
    case names; ``prefix=""``: the settings' own lower-case names, for reports)."""
    retry = settings.retry_settings or BatchRetrySettings()
    written = {
        "mini_batch_size": settings.mini_batch_size, "output_action": settings.output_action,
        "output_file_name": settings.output_file_name, "max_retries": retry.max_retries, "timeout": retry.timeout,
        "error_threshold": settings.error_threshold, "max_concurrency": settings.max_concurrency_per_instance,
        "logging_level": settings.logging_level,
    }  # fmt: skip
    named = (lambda name: prefix + name.upper()) if prefix else (lambda name: name)
    return {named(name): str(AZURE_DEFAULTS[name] if value is None else value) for name, value in written.items()}
