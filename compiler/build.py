"""Stage build: render the plan, write the context, and have the engine build it (network off)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.engines.base import Engine
from compiler.plan.types import ImagePlan
from compiler.render import render_dockerfile, write_context
from compiler.reporter import Reporter


@dataclass(frozen=True)
class BuiltImage:
    image: str
    image_id: str
    size: int
    seconds: float
    context_bytes: int


def build_image(plan: ImagePlan, engine: Engine, reporter: Reporter, template: Path | None = None) -> BuiltImage:
    """Build ``plan`` into ``plan.tag``; the engine tags the image only when the build succeeds."""
    dockerfile = render_dockerfile(plan, template)
    started = time.monotonic()
    with tempfile.TemporaryFile(prefix="pkgc-context-") as context:
        write_context(dockerfile, plan.files, context)
        size = context.tell()
        context.seek(0)
        reporter.step(f"building {plan.tag} (context {size / 1e6:.1f} MB, network off)")
        image_id = engine.build(context, plan.tag, reporter.build_output)
    info = engine.image_info(image_id)
    return BuiltImage(plan.tag, image_id, info.size if info else 0, time.monotonic() - started, size)
