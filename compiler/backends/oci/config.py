"""The image config and manifest of a built image: the base's, plus pkgc's layers and settings.

Mirrors what the Dockerfile back end's final stage does (ENV appends to the base's, LABEL merges
with the base's, ENTRYPOINT clears the base's CMD), with fixed ``created`` times so equal inputs
give equal digests."""

from __future__ import annotations

from dataclasses import dataclass

from compiler import __version__
from compiler.oci.base import BaseImage
from compiler.oci.layer import LayerBlob
from compiler.oci.store import CONFIG, MANIFEST, timestamp
from compiler.plan.types import ImagePlan


@dataclass(frozen=True)
class BuiltLayer:
    """One layer pkgc added, with what it holds and why it sits where it does."""

    kind: str
    why: str
    blob: LayerBlob


def _env(base_env: list[str], plan: ImagePlan) -> list[str]:
    env: dict[str, str] = {}
    for item in base_env:
        key, _, value = item.partition("=")
        env[key] = value
    if plan.config.path_prefix:
        base_path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env["PATH"] = f"{plan.config.path_prefix}:{base_path}"
    for key in sorted(plan.config.env):
        env[key] = plan.config.env[key]
    return [f"{k}={v}" for k, v in env.items()]


def image_config(plan: ImagePlan, base: BaseImage, layers: list[BuiltLayer], epoch: int) -> dict:
    base_config = base.config.get("config") or {}
    created = timestamp(epoch)
    config: dict = {
        "User": f"{plan.config.uid}:{plan.config.uid}",
        "Env": _env(list(base_config.get("Env") or []), plan),
        "WorkingDir": plan.config.workdir,
        "Labels": {**(base_config.get("Labels") or {}), **plan.config.labels},
    }
    ports = {**(base_config.get("ExposedPorts") or {}), **({f"{plan.config.port}/tcp": {}} if plan.config.port else {})}
    if ports:  # a batch job exposes nothing
        config["ExposedPorts"] = ports
    if plan.config.entrypoint:  # as the Dockerfile back end writes it: ENTRYPOINT, then CMD (the server's command)
        config["Entrypoint"] = list(plan.config.entrypoint)
        if plan.config.command:
            config["Cmd"] = list(plan.config.command)
    else:
        for key in ("Entrypoint", "Cmd"):
            if base_config.get(key):
                config[key] = base_config[key]
    for key in ("StopSignal", "Volumes"):
        if base_config.get(key):
            config[key] = base_config[key]
    history = list(base.config.get("history") or [])
    for layer in layers:
        history.append({"created": created, "created_by": f"pkgc {__version__}: {layer.kind} layer", "comment": layer.why})
    history.append({"created": created, "created_by": f"pkgc {__version__}: ENV, LABEL, USER, WORKDIR, EXPOSE, ENTRYPOINT",
                    "empty_layer": True})  # fmt: skip
    return {
        "created": created,
        **plan.platform.oci(),  # architecture, os (and arm64's variant): the plan's target, which the base was resolved for
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": base.diff_ids + [layer.blob.diff_id for layer in layers]},
        "history": history,
    }


def image_manifest(config_digest: str, config_size: int, base: BaseImage, layers: list[BuiltLayer]) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
        "layers": base.layers + [layer.blob.descriptor() for layer in layers],
    }
