"""Plan the parts a deployment or ``inputs:`` add: the inputs' layers (copy mode) and their labels."""

from __future__ import annotations

from compiler import package_inputs
from compiler.plan.types import ContextFile, Copy
from compiler.resolve.types import ResolvedPackage
from compiler.spec.model import ModelMode


def input_copies(pkg: ResolvedPackage, files: list[ContextFile]) -> list[Copy]:
    """One COPY per input, after the model (copy mode); ``files`` gets their context entries."""
    copies = []
    for index, extra in enumerate(pkg.inputs):
        dest = f"inputs/{index}/content"  # pkgc's own name in the context, never the user's
        files.append(ContextFile(dest, source=extra.tree_path / extra.root_name))
        copies.append(Copy("inputs", dest, extra.mount_path, "an input the model needs; after the model, before code"))
    return copies


def deployment_labels(pkg: ResolvedPackage) -> dict[str, str]:
    """Labels for the run settings a deployment states and for the inputs a package expects."""
    labels = pkg.run_settings.to_labels() if pkg.run_settings else {}
    places = [package_inputs.InputPlace(i.type, i.tree_digest, i.mount_path) for i in pkg.inputs]
    mode = "copy" if pkg.mode is ModelMode.COPY else "readonly_mount"
    labels.update(package_inputs.to_labels(places, mode))
    return labels
