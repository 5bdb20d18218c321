"""Run settings a deployment YAML states for the container: probes, request timeout, concurrency, replicas.

They travel in the image as ``io.pkgc.run.*`` / ``io.pkgc.probe.*`` labels (read back, checked, by
``--deploy-settings``) and, where the Azure ML inference server reads them, as environment variables:

- ``request_settings.request_timeout_ms`` -> ``SCORING_TIMEOUT_MS`` (the server's scoring timeout; beyond
  the 300 s its gunicorn gives a worker, ``WORKER_TIMEOUT`` too);
- ``request_settings.max_concurrent_requests_per_instance`` -> ``WORKER_COUNT`` (its gunicorn workers,
  as Azure ML advises: one worker per concurrent request);
- ``liveness_probe`` / ``readiness_probe`` -> the Kubernetes probes' timing; ``instance_count`` -> replicas;
  ``resources`` (Kubernetes deployments) -> the container's resource requests and limits.

A variable the user sets in ``environment_variables`` wins over the derived one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from compiler.errors import ResolveError, excerpt

PROBE_LABELS = {"liveness": "io.pkgc.probe.liveness", "readiness": "io.pkgc.probe.readiness"}
TIMEOUT, CONCURRENCY, INSTANCES = "io.pkgc.run.request_timeout_ms", "io.pkgc.run.max_concurrent_requests", "io.pkgc.run.instance_count"
LIMITS = {TIMEOUT: 3_600_000, CONCURRENCY: 1000, INSTANCES: 1000}
NUMBER = re.compile(r"^[0-9]{1,9}$")
GUNICORN_TIMEOUT_S = 300  # azureml-inference-server-http's default WORKER_TIMEOUT
RESOURCE_LABELS = {"requests": "io.pkgc.run.requests", "limits": "io.pkgc.run.limits"}
RESOURCE_NAMES = ("cpu", "memory", "nvidia.com/gpu")
QUANTITY = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,6})?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")  # a Kubernetes quantity

Resources = tuple[tuple[str, str], ...]  # (name, quantity), in RESOURCE_NAMES order


def resources_label(resources: Resources) -> str:
    return ",".join(f"{name}={quantity}" for name, quantity in resources)


def resources_from_label(image: str, key: str, text: str) -> Resources:
    found: dict[str, str] = {}
    for part in text.split(","):
        name, _, quantity = part.partition("=")
        if name not in RESOURCE_NAMES or name in found or not QUANTITY.match(quantity):
            raise ResolveError(f"image '{excerpt(image)}': label {key}={excerpt(text)!r} is not valid")
        found[name] = quantity
    return tuple((name, found[name]) for name in RESOURCE_NAMES if name in found)


@dataclass(frozen=True)
class Probe:
    """Azure ML's probe settings (seconds and counts), with Azure's defaults."""

    initial_delay: int = 10
    period: int = 10
    timeout: int = 2
    success_threshold: int = 1
    failure_threshold: int = 30

    def to_label(self) -> str:
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))

    @classmethod
    def from_label(cls, image: str, key: str, text: str) -> "Probe":
        values: dict[str, int] = {}
        names = {f.name for f in fields(cls)}
        for part in text.split(","):
            name, _, value = part.partition("=")
            if name not in names or name in values or not NUMBER.match(value) or int(value) > 3600:
                raise ResolveError(f"image '{excerpt(image)}': label {key}={excerpt(text)!r} is not valid")
            values[name] = int(value)
        return cls(**values)

    def kubernetes(self, liveness: bool) -> dict:
        """The timing fields of a Kubernetes probe (a liveness probe's successThreshold must be 1)."""
        return {"initialDelaySeconds": self.initial_delay, "periodSeconds": self.period, "timeoutSeconds": self.timeout,
                "successThreshold": 1 if liveness else self.success_threshold, "failureThreshold": self.failure_threshold}  # fmt: skip


@dataclass(frozen=True)
class RunSettings:
    request_timeout_ms: int | None = None
    max_concurrent_requests: int | None = None
    instance_count: int | None = None
    liveness: Probe | None = None
    readiness: Probe | None = None
    requests: Resources = ()
    limits: Resources = ()

    @property
    def empty(self) -> bool:
        return self == RunSettings()

    def environment(self) -> dict[str, str]:
        """Variables the Azure ML inference server reads."""
        env = {}
        if self.request_timeout_ms is not None:
            env["SCORING_TIMEOUT_MS"] = str(self.request_timeout_ms)
            if self.request_timeout_ms > GUNICORN_TIMEOUT_S * 1000:  # gunicorn would end the worker first
                env["WORKER_TIMEOUT"] = str(-(-self.request_timeout_ms // 1000) + 1)
        if self.max_concurrent_requests is not None:
            env["WORKER_COUNT"] = str(self.max_concurrent_requests)
        return env

    def to_labels(self) -> dict[str, str]:
        labels = {}
        for key, value in ((TIMEOUT, self.request_timeout_ms), (CONCURRENCY, self.max_concurrent_requests),
                           (INSTANCES, self.instance_count)):  # fmt: skip
            if value is not None:
                labels[key] = str(value)
        for kind, key in PROBE_LABELS.items():
            probe = getattr(self, kind)
            if probe is not None:
                labels[key] = probe.to_label()
        for kind, key in RESOURCE_LABELS.items():
            if getattr(self, kind):
                labels[key] = resources_label(getattr(self, kind))
        return labels

    @classmethod
    def from_labels(cls, image: str, labels: Mapping[str, str]) -> "RunSettings":
        """Read and check the settings an image states (labels are untrusted input)."""
        numbers: dict[str, int | None] = {}
        for key, limit in LIMITS.items():
            value = labels.get(key)
            if value is not None and not (NUMBER.match(value) and 1 <= int(value) <= limit):
                raise ResolveError(f"image '{excerpt(image)}': label {key}={excerpt(value)!r} must be a number from 1 to {limit}")
            numbers[key] = int(value) if value is not None else None
        probes = {kind: Probe.from_label(image, key, labels[key]) if key in labels else None for kind, key in PROBE_LABELS.items()}
        resources = {kind: resources_from_label(image, key, labels[key]) if key in labels else () for kind, key in RESOURCE_LABELS.items()}
        return cls(numbers[TIMEOUT], numbers[CONCURRENCY], numbers[INSTANCES], probes["liveness"], probes["readiness"],
                   resources["requests"], resources["limits"])  # fmt: skip

    def kubernetes_resources(self) -> dict:
        """A container's ``resources`` (empty when the deployment stated none)."""
        return {kind: dict(getattr(self, kind)) for kind in RESOURCE_LABELS if getattr(self, kind)}

    def summary(self) -> dict:
        return {key.rsplit(".", 1)[-1]: value for key, value in self.to_labels().items()}
