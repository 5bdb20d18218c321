"""``--deploy-settings app-service|kubernetes``: what a platform needs to run a package, from its labels.

Everything comes from the image's ``io.pkgc.*`` labels (the scoring, readiness and liveness routes
with their ports, model mode, mount path), so the settings describe the image that was built, not the
spec it came from. Batch packages (jobs) have no deploy settings.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import yaml

from compiler.errors import ResolveError, excerpt
from compiler.deploy.model_volume import model_volume
from compiler.labels import PackageLabels, Route
from compiler.package_inputs import InputPlace, from_labels as input_places
from compiler.runsettings import RunSettings

Platform = Literal["app-service", "kubernetes", "kubernetes-init"]
PLATFORMS: tuple[Platform, ...] = ("app-service", "kubernetes", "kubernetes-init")


@dataclass(frozen=True)
class ModelImageRef:
    """The model image a readonly_mount package expects: where the cluster pulls it, and its model's root name."""

    reference: str  # pinned by digest: REPO[:TAG]@sha256:...
    digest: str
    root: str  # the file or folder the image holds at its top (what the init variant copies)
    pushed: bool = False


@dataclass(frozen=True)
class DeployFacts:
    """The run-time contract of one package image, as its labels state it."""

    image: str
    name: str
    port: int
    health_route: str
    score_route: str
    liveness_route: str
    health_port: int
    liveness_port: int
    mode: str
    model_dir: str
    model_ref: str
    model_tree: str
    digest: str | None = None  # the pushed manifest digest, when there is one
    run: RunSettings = RunSettings()  # probes, replicas (a deployment YAML's settings)
    mounted_inputs: tuple[InputPlace, ...] = ()  # inputs a readonly_mount package expects mounted
    model_image: ModelImageRef | None = None  # the model as an OCI image (readonly_mount packages built by this pkgc)

    @property
    def needs_mount(self) -> bool:
        return self.mode != "copy"

    @property
    def ports(self) -> tuple[int, ...]:
        """Distinct container ports, the scoring port first."""
        return tuple(dict.fromkeys((self.port, self.health_port, self.liveness_port)))

    def port_name(self, port: int) -> str:
        """Kubernetes port name: ``http`` for the scoring port, ``http-<port>`` for the others."""
        return "http" if port == self.port else f"http-{port}"

    @property
    def pinned_image(self) -> str:
        """``image@digest`` once pushed (a reference that never moves), else ``image``."""
        return f"{self.image}@{self.digest}" if self.digest else self.image


@dataclass(frozen=True)
class DeploySettings:
    """Settings for one platform: ``data`` for --json, ``text`` to print (a script or YAML)."""

    platform: Platform
    data: dict
    text: str


def dns_name(text: str) -> str:
    """A Kubernetes object name (RFC 1123 label) from a package name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "pkgc-package"


def deploy_facts(
    image: str, labels: Mapping[str, str], digest: str | None = None, model_image: ModelImageRef | None = None
) -> DeployFacts:
    """Read the facts from ``labels``; ``image`` (and ``digest``, once pushed) is what the platform pulls;
    ``model_image`` is where the model image the labels name can be pulled (its digest must match)."""
    contract = PackageLabels.from_labels(image, labels)
    if contract.is_job:
        raise ResolveError(f"image '{excerpt(image)}' is a batch package ({contract.server}): it runs as a job, "
                           "so it has no App Service or Kubernetes serving settings")  # fmt: skip
    readiness: Route = contract.readiness
    liveness: Route = contract.liveness
    inputs_mode, places = input_places(image, contract.extra)
    if model_image is not None and model_image.digest != contract.model_image:
        raise ResolveError(f"image '{excerpt(image)}' was built for model image {contract.model_image or '(none)'}, "
                           f"not {model_image.digest}")  # fmt: skip
    return DeployFacts(
        image=image, name=dns_name(contract.title or contract.model_name), port=contract.score.port,
        health_route=readiness.path, score_route=contract.score.path, liveness_route=liveness.path,
        health_port=readiness.port, liveness_port=liveness.port,
        mode=contract.mode, model_dir=contract.model_dir, model_ref=contract.model_ref,
        model_tree=f"sha256:{contract.model_tree}", digest=digest, run=RunSettings.from_labels(image, contract.extra),
        mounted_inputs=tuple(places) if inputs_mode == "readonly_mount" else (),
        model_image=model_image if contract.needs_mount else None,
    )  # fmt: skip


def deploy_settings(platform: Platform, facts: DeployFacts) -> DeploySettings:
    return app_service(facts) if platform == "app-service" else kubernetes(facts, platform)


def app_service(facts: DeployFacts) -> DeploySettings:
    """App settings, health check path and (readonly_mount) a read-only Azure Blob mount, with az commands."""
    settings = {"WEBSITES_PORT": str(facts.port)}
    probe = facts.run.readiness or facts.run.liveness
    if probe is not None:  # App Service waits this long for the container to answer (230-1800 s)
        settings["WEBSITES_CONTAINER_START_TIME_LIMIT"] = str(min(1800, max(230, probe.initial_delay + probe.period * probe.failure_threshold)))
    mount = None
    app = "--resource-group <resource-group> --name <app-name>"
    commands = [
        f"az webapp config container set {app} --container-image-name {shlex.quote(facts.image)}",
        f"az webapp config appsettings set {app} --settings " + " ".join(f"{k}={v}" for k, v in settings.items()),
        f"az webapp config set {app} --generic-configurations "
        + shlex.quote(json.dumps({"healthCheckPath": facts.health_route})),
    ]
    if facts.needs_mount:
        mount = {"mount_path": facts.model_dir, "read_only": True, "storage_type": "AzureBlob",
                 "model": facts.model_ref, "model_tree": facts.model_tree}  # fmt: skip
        commands.append(
            f"az webapp config storage-account add {app} --custom-id model --storage-type AzureBlob "
            f"--account-name <storage-account> --share-name <container-with-model-files> --access-key <key> "
            f"--mount-path {shlex.quote(facts.model_dir)}"
        )
    for index, place in enumerate(facts.mounted_inputs):
        commands.append(
            f"az webapp config storage-account add {app} --custom-id input{index} --storage-type AzureBlob "
            f"--account-name <storage-account> --share-name <container-with-input-{index}> --access-key <key> "
            f"--mount-path {shlex.quote(place.path)}"
        )
    data = {"platform": "app-service", "image": facts.image, "app_settings": settings,
            "health_check_path": facts.health_route, "score_path": facts.score_route,
            "model_mount": mount, "commands": commands}  # fmt: skip
    header = [f"# App Service (Linux, custom container) settings for {facts.image}",
              f"# WEBSITES_PORT={facts.port}; health check path {facts.health_route}; score at {facts.score_route}"]  # fmt: skip
    if facts.health_port != facts.port:
        note = (f"App Service probes the health check path on WEBSITES_PORT ({facts.port}), but this package's readiness "
                f"route {facts.health_route} is on port {facts.health_port}, which App Service does not route")  # fmt: skip
        data["warnings"] = [note]
        header.append(f"# warning: {note}")
    if mount:
        header.append(f"# the model {facts.model_ref} must be mounted read-only at {facts.model_dir} (Blob mounts are read-only)")
    return DeploySettings("app-service", data, "\n".join(header + commands) + "\n")


def _probe(facts: DeployFacts, path: str, port: int, **timing: int) -> dict:
    return {"httpGet": {"path": path, "port": facts.port_name(port)}, **timing}


def _probes(facts: DeployFacts) -> dict:
    """pkgc's probes, or the deployment's timing (Azure ML's probe settings) when it stated one."""
    live, ready = facts.run.liveness, facts.run.readiness
    return {
        "startupProbe": _probe(facts, facts.health_route, facts.health_port, periodSeconds=2, failureThreshold=90),
        "readinessProbe": _probe(facts, facts.health_route, facts.health_port,
                                 **(ready.kubernetes(False) if ready else {"periodSeconds": 5, "failureThreshold": 3})),
        "livenessProbe": _probe(facts, facts.liveness_route, facts.liveness_port,
                                **(live.kubernetes(True) if live else {"periodSeconds": 10, "failureThreshold": 3})),
    }


def kubernetes(facts: DeployFacts, variant: str = "kubernetes") -> DeploySettings:
    """A Deployment and a Service; readonly_mount packages get a read-only model volume at the model dir
    (``compiler.deploy.model_volume``: an image volume, or with ``kubernetes-init`` an init-container copy)."""
    container: dict = {
        "name": facts.name, "image": facts.pinned_image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": facts.port_name(p), "containerPort": p} for p in facts.ports],
        **_probes(facts),
        **({"resources": facts.run.kubernetes_resources()} if facts.run.kubernetes_resources() else {}),
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    }  # fmt: skip
    pod: dict = {"containers": [container]}
    notes = model_volume(facts, variant, container, pod) if facts.needs_mount else []
    for index, place in enumerate(facts.mounted_inputs):
        mount = {"name": f"input-{index}", "mountPath": place.path, "readOnly": True}
        if place.type == "uri_file":  # the volume holds the file under its own name
            mount["subPath"] = place.path.rsplit("/", 1)[-1]
        container.setdefault("volumeMounts", []).append(mount)
        claim = {"claimName": f"{facts.name}-input-{index}", "readOnly": True}
        pod.setdefault("volumes", []).append({"name": f"input-{index}", "persistentVolumeClaim": claim})
    selector = {"app.kubernetes.io/name": facts.name}
    annotations = {"io.pkgc.model": facts.model_ref, "io.pkgc.model.tree": facts.model_tree, "io.pkgc.model.mode": facts.mode}
    if facts.model_image is not None:
        annotations["io.pkgc.model.image"] = facts.model_image.digest
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": facts.name, "labels": dict(selector)},
        "spec": {"replicas": facts.run.instance_count or 1, "selector": {"matchLabels": dict(selector)},
                 "template": {"metadata": {"labels": dict(selector), "annotations": annotations}, "spec": pod}},
    }  # fmt: skip
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": facts.name, "labels": dict(selector)},
        "spec": {"selector": dict(selector), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip
    header = f"# Kubernetes Deployment and Service for {facts.pinned_image} (score: POST {facts.score_route} on the Service's port 80)\n"
    header += "".join(f"{line}\n" for line in notes)
    text = header + yaml.safe_dump_all([deployment, service], sort_keys=False)
    data = {"platform": variant, "image": facts.pinned_image, "objects": [deployment, service],
            **({"model_image": facts.model_image.reference} if facts.model_image else {})}  # fmt: skip
    return DeploySettings(variant, data, text)  # type: ignore[arg-type]
