"""Gather the SBOM's inputs for a resolved package (the I/O the generator must not do): the code
tree's digest, the base image's id, and the lock as it is shipped; and keep the SBOM's reusable
draft (compiler/sbom/draft.py) in pkgc's cache, so a code-only or model-only rebuild neither imports
the CycloneDX library nor renders the lock's packages again."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from compiler import __version__
from compiler.lock.types import Lock
from compiler.plan.types import BasePackage, ContextFile
from compiler.resolve.types import ResolvedPackage
from compiler.sbom.draft import as_template, fill, finish, template_key
from compiler.sbom.types import SbomInputs, TreeComponent
from compiler.workspace.trees import tree_digest, write_file_atomic

SBOM_IN_CONTEXT = "pkgc/sbom.cdx.json"
DRAFTS = "sbom-drafts"  # <cache>/sbom-drafts/<key>.json: templates, at most MAX_DRAFTS of them
MAX_DRAFTS = 32
MAX_DRAFT_BYTES = 64 << 20
LIBRARIES = ("cyclonedx-python-lib", "py-serializable", "sortedcontainers", "packageurl-python")


def sbom_inputs(
    pkg: ResolvedPackage, lock: Lock, base_image_id: str | None, base_packages: tuple[BasePackage, ...] = ()
) -> SbomInputs:
    model = pkg.model
    code = None
    if pkg.code is not None:
        code = TreeComponent(pkg.code.directory.name, None, tree_digest(pkg.code.directory), pkg.code.container_dir)
    image = pkg.environment.image if pkg.environment else ""
    return SbomInputs(
        package=pkg.target_name, mode=pkg.mode.value,
        model=TreeComponent(model.name, model.version, model.tree_digest, f"{pkg.model_dir}/{model.root_name}"),
        model_type=model.type, code=code,
        inputs=tuple(TreeComponent(i.root_name, None, i.tree_digest, i.mount_path) for i in pkg.inputs),
        base_image=image, base_image_id=base_image_id, lock=lock, pkgc_version=__version__,
        base_packages=base_packages,
    )  # fmt: skip


def sbom_context_file(
    pkg: ResolvedPackage, lock: Lock, base_image_id: str | None, base_packages: tuple[BasePackage, ...] = (),
    drafts: Path | None = None,
) -> ContextFile:  # fmt: skip
    """The SBOM as a build-context file, for the planner to ship beside the lock; ``base_image_id``
    is the base image's id (the sha256 of its config: the same for both back ends); ``base_packages``
    what the base's own Python has (listed inside the base image's component); ``drafts``: the folder
    of reusable drafts (None: render it all)."""
    return ContextFile(SBOM_IN_CONTEXT, data=sbom_bytes(sbom_inputs(pkg, lock, base_image_id, base_packages), drafts))


def sbom_bytes(sbom: SbomInputs, drafts: Path | None) -> bytes:
    """``generate_sbom(sbom)``'s very bytes, from a kept template when one fits (compiler/sbom/draft.py)."""
    if drafts is not None:
        path = drafts / f"{template_key(sbom, _generator())}.json"
        template = _read_draft(path)
        if template is None:
            from compiler.sbom.generate import sbom_draft

            template = sbom_draft(as_template(sbom))
            if fill(template, sbom) is not None:
                _keep_draft(path, template)
        filled = fill(template, sbom)
        done = finish(filled) if filled is not None else None
        if done is not None:
            return done
    from compiler.sbom.generate import generate_sbom

    return generate_sbom(sbom)


def _generator() -> str:
    """What the draft's bytes depend on besides its inputs: the generator's source and its libraries."""
    source = Path(__file__).with_name("generate.py").read_bytes()
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}==?")
    return f"{hashlib.sha256(source).hexdigest()}:{','.join(versions)}"


def _read_draft(path: Path) -> str | None:
    """A kept template, or None (missing, too large, unreadable, damaged: rendered again)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DRAFT_BYTES + 1)
        text = data.decode("utf-8")
        if len(data) > MAX_DRAFT_BYTES or json.loads(text).get("bomFormat") != "CycloneDX":
            return None
    except (OSError, ValueError, AttributeError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    try:
        os.utime(path)  # most recently used: the last to go
    except OSError:
        pass
    return text


def _keep_draft(path: Path, template: str) -> None:
    """Keep ``template`` (best effort: a read-only cache still builds), then the newest ``MAX_DRAFTS``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(path, template.encode("utf-8"))
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[MAX_DRAFTS:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
