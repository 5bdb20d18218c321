"""Gather the SBOM's inputs for a resolved package (the I/O the generator must not do): the code
tree's digest, the base image's id, and the lock as it is shipped."""

from __future__ import annotations

from compiler import __version__
from compiler.lock.types import Lock
from compiler.plan.types import BasePackage, ContextFile
from compiler.resolve.types import ResolvedPackage
from compiler.sbom.generate import generate_sbom
from compiler.sbom.types import SbomInputs, TreeComponent
from compiler.workspace.trees import tree_digest

SBOM_IN_CONTEXT = "pkgc/sbom.cdx.json"


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
    pkg: ResolvedPackage, lock: Lock, base_image_id: str | None, base_packages: tuple[BasePackage, ...] = ()
) -> ContextFile:
    """The SBOM as a build-context file, for the planner to ship beside the lock; ``base_image_id``
    is the base image's id (the sha256 of its config: the same for both back ends); ``base_packages``
    what the base's own Python has (listed inside the base image's component)."""
    return ContextFile(SBOM_IN_CONTEXT, data=generate_sbom(sbom_inputs(pkg, lock, base_image_id, base_packages)))
