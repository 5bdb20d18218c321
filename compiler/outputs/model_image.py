"""``--model-output oci:DIR|oci-archive:FILE`` and ``--model-push REG/REPO[:TAG]``: publish the model image.

The model image (``compiler.backends.oci.model_image``) is already in pkgc's store when the package is built;
it is published the way an OCI-built package is (``compiler.outputs.stored``): outputs from the stored
blobs, renamed into place only once all succeeded, the push through skopeo with the same digest.
Only ``readonly_mount`` packages have a model image: a ``copy`` package carries its model inside.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.deploy.settings import ModelImageRef
from compiler.errors import TargetSyntaxError
from compiler.outputs.targets import OutputTarget, parse_output
from compiler.oci.reference import PushTarget, parse_push
from compiler.errors import SpecError, SpecProblem


@dataclass(frozen=True)
class ModelTargets:
    """Where the model image goes, parsed and checked before any build work."""

    outputs: tuple[OutputTarget, ...] = ()
    push: PushTarget | None = None

    @property
    def any(self) -> bool:
        return bool(self.outputs or self.push)


def _renamed(flag: str, parse, text: str):
    try:
        return parse(text)
    except TargetSyntaxError as exc:  # the parsers name --output/--push
        raise TargetSyntaxError(str(exc).replace(f"--{flag.split('-')[-1]} ", f"--{flag} ", 1)) from None


def parse_model_targets(outputs: list[str], push: str | None, package_outputs: tuple[OutputTarget, ...] = ()) -> ModelTargets:
    targets = ModelTargets(
        tuple(_renamed("model-output", parse_output, text) for text in outputs),
        _renamed("model-push", parse_push, push) if push else None,
    )
    paths = [t.path for t in targets.outputs] + [t.path for t in package_outputs]
    if len(set(paths)) != len(paths):
        raise TargetSyntaxError("--model-output: a path is given twice (or is also an --output)")
    return targets


def check_mode(image: str, mode: str, model_image: dict | None, targets: ModelTargets) -> None:
    """Only a readonly_mount package has a model image to publish."""
    if targets.any and model_image is None:
        raise SpecError(SpecProblem("--model-output/--model-push", "", f"package {image} is a {mode} package: "
                                    "its model is inside the image; model images are for readonly_mount packages"))  # fmt: skip


def publish_model_image(model_image: dict | None, targets: ModelTargets, cache_dir, log) -> tuple[dict | None, ModelImageRef | None]:
    """Write the model image's outputs and push (``model_image``: the build's JSON of it); return that
    JSON with ``outputs`` and ``push`` added, and where a cluster pulls the model image."""
    from compiler.outputs.publish import PublishRequest
    from compiler.outputs.stored import publish_stored
    from compiler.oci.store import OciStore

    if model_image is None:
        return None, None
    info = dict(model_image)
    digest, reference = info["manifest_digest"], info["reference"]
    if targets.any:
        request = PublishRequest(reference, targets.outputs, targets.push)
        published = publish_stored(OciStore.in_cache(cache_dir), digest, request, log)
        info["outputs"] = [out.as_dict() for out in published.outputs]
        for out in published.outputs:
            log(f"wrote model image {out.kind}:{out.path}:{out.tag} ({out.size_bytes / 1e6:.0f} MB, {out.digest[:19]})")
        if published.push is not None:
            info["push"] = published.push.as_dict()
            return info, ModelImageRef(published.push.pinned, digest, info["root"], pushed=True)
    return info, ModelImageRef(f"{reference}@{digest}", digest, info["root"])
