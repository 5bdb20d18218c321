"""Stage build, Dockerfile back end: render the plan, write the normalised context, have the engine build it (network off).

The image is content-addressed: the hash of the context bytes and the base image's id names it
(``<repo>:sha256-<hash>``), so the same spec, lock, model and code reuse the image already built,
as Azure ML reuses environment images. The version tag is an alias added afterwards.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from compiler.built import BuiltImage
from compiler.engines.base import Engine
from compiler.errors import BuildError
from compiler.plan.types import ImagePlan
from compiler.render import render_dockerfile, write_context
from compiler.reporter import Reporter

CHUNK = 1 << 20


def _hash_file(fh, base_image_id: str) -> str:
    digest = hashlib.sha256(base_image_id.encode() + b"\0")
    fh.seek(0)
    while block := fh.read(CHUNK):
        digest.update(block)
    fh.seek(0)
    return digest.hexdigest()


def build_image(
    plan: ImagePlan, engine: Engine, reporter: Reporter, template: Path | None = None, no_cache: bool = False
) -> BuiltImage:
    """Build ``plan`` (or reuse the image with the same content hash) and tag it ``plan.tag``.

    ``no_cache`` builds every layer again and never reuses an existing image."""
    dockerfile = render_dockerfile(plan, template)
    base = engine.image_info(plan.base.reference)
    if base is None:
        raise BuildError(
            f"base image {plan.base.reference} is not in the engine; build it with 'pkgc base-image build' or load it"
        )
    started = time.monotonic()
    repository = plan.tag.rpartition(":")[0]
    with tempfile.TemporaryFile(prefix="pkgc-context-") as context:
        write_context(dockerfile, plan.files, context)
        size = context.tell()
        content_hash = _hash_file(context, base.id)
        content_tag = f"{repository}:sha256-{content_hash[:24]}"
        existing = None if no_cache else engine.image_info(content_tag)
        if existing is not None:
            reporter.step(f"reusing {content_tag}: an image with this content hash exists, nothing to build")
            image_id = existing.id
        else:
            reporter.step(f"building {content_tag} (context {size / 1e6:.1f} MB, network off)")
            with reporter.stage("build", total=size):  # the engine's output: in the log; on screen in plain mode
                image_id = engine.build(context, content_tag, reporter.build_output, no_cache=no_cache)
    engine.tag(image_id, plan.tag)
    info = engine.image_info(image_id)
    return BuiltImage(
        builder="docker",
        image=plan.tag,
        image_id=image_id,
        content_tag=content_tag,
        content_hash=content_hash,
        reused=existing is not None,
        size=info.size if info else 0,
        seconds=time.monotonic() - started,
    )
