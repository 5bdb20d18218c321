"""The model volume of a readonly_mount package's Kubernetes Deployment.

- ``kubernetes``: an image volume (``volumes[].image``, KEP-4639; beta and on by default since 1.35)
  of the model image, mounted read-only at the model dir: the node pulls the model like any image.
- ``kubernetes-init``: for clusters without image volumes, as KServe did before native support: an
  init container from the model image copies the model into an ``emptyDir``, mounted read-only. The
  model image holds only model files (no shell, no ``cp``), so a first init container puts a static
  busybox (``COPIER_IMAGE``) into a small ``emptyDir`` the copying one runs it from.
- without a model image (an image built before model images): a PersistentVolumeClaim the user fills.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compiler.deploy.settings import DeployFacts

COPIER_IMAGE = "busybox:1.37.0-musl"  # the musl variant is statically linked: it runs inside any image
TOOLS = "/pkgc-tools"
COPY_TARGET = "/pkgc-model"
NON_ROOT = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True}  # fmt: skip


def model_volume(facts: "DeployFacts", variant: str, container: dict, pod: dict) -> list[str]:
    """Add the model's volume (and init containers) to ``pod``; return the header comment lines."""
    container["volumeMounts"] = [{"name": "model", "mountPath": facts.model_dir, "readOnly": True}]
    image = facts.model_image
    if image is None:
        pod["volumes"] = [{"name": "model", "persistentVolumeClaim": {"claimName": f"{facts.name}-model", "readOnly": True}}]
        return [f"# PersistentVolumeClaim {facts.name}-model must hold the files of model {facts.model_ref} ({facts.model_tree})"]
    where = [] if image.pushed else [f"# the model image must be pullable as {image.reference} (pkgc build --model-push REGISTRY/REPO)"]
    if variant == "kubernetes":
        pod["volumes"] = [{"name": "model", "image": {"reference": image.reference, "pullPolicy": "IfNotPresent"}}]
        return [f"# model {facts.model_ref}: image volume of {image.reference} (Kubernetes >= 1.35, or 1.33+ with the ImageVolume gate)"] + where
    copier = {
        "name": "pkgc-copier", "image": COPIER_IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["cp", "/bin/busybox", f"{TOOLS}/busybox"],
        "volumeMounts": [{"name": "pkgc-tools", "mountPath": TOOLS}], "securityContext": dict(NON_ROOT),
    }  # fmt: skip
    copy = {
        "name": "model", "image": image.reference, "imagePullPolicy": "IfNotPresent",
        "command": [f"{TOOLS}/busybox", "cp", "-R", f"/{image.root}", f"{COPY_TARGET}/"],
        "volumeMounts": [{"name": "pkgc-tools", "mountPath": TOOLS, "readOnly": True}, {"name": "model", "mountPath": COPY_TARGET}],
        "securityContext": dict(NON_ROOT),
    }  # fmt: skip
    pod["initContainers"] = [copier, copy]
    pod["volumes"] = [{"name": "model", "emptyDir": {}}, {"name": "pkgc-tools", "emptyDir": {"sizeLimit": "16Mi"}}]
    return [f"# model {facts.model_ref}: copied from {image.reference} into an emptyDir by an init container "
            f"(static busybox from {COPIER_IMAGE})"] + where  # fmt: skip
