"""The ``inputs:`` part of the image-label contract: which extra assets a package expects, and where.

Label ``io.pkgc.inputs`` = ``TYPE:sha256:HEX:PATH`` entries joined by ``,`` (a mount path holds no
``:`` or ``,``: the spec's rule). ``io.pkgc.inputs.mode`` is ``copy`` (in the image) or
``readonly_mount`` (``pkgc run``/``verify`` mount each stored tree read-only at its path). Read back
like every label: a bad value is refused, naming the image and the label; a hostile image gets no
host folder mounted, only trees of this workspace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import ResolveError, excerpt
from compiler.spec.values import container_path_problem

INPUTS, INPUTS_MODE = "io.pkgc.inputs", "io.pkgc.inputs.mode"
ENTRY = re.compile(r"^(uri_file|uri_folder):sha256:([0-9a-f]{64}):(/[^,]*)$")
MAX_INPUTS = 32
PATHS_ENV = "PKGC_INPUT_PATHS"  # read by the entrypoint: the paths that must be mounted


@dataclass(frozen=True)
class InputPlace:
    type: str
    tree: str  # 64 hex digits
    path: str


def to_labels(places: Iterable[InputPlace], mode: str) -> dict[str, str]:
    places = list(places)
    if not places:
        return {}
    return {INPUTS: ",".join(f"{p.type}:sha256:{p.tree}:{p.path}" for p in places), INPUTS_MODE: mode}


def from_labels(image: str, labels: Mapping[str, str]) -> tuple[str, list[InputPlace]]:
    """The mode and the inputs an image states, checked."""
    text = labels.get(INPUTS)
    if text is None:
        return "copy", []
    mode = labels.get(INPUTS_MODE, "")
    if mode not in ("copy", "readonly_mount"):
        raise ResolveError(f"image '{excerpt(image)}': label {INPUTS_MODE}={excerpt(mode)!r} must be copy or readonly_mount")
    entries = text.split(",")
    if len(entries) > MAX_INPUTS:
        raise ResolveError(f"image '{excerpt(image)}': label {INPUTS} names more than {MAX_INPUTS} inputs")
    places = []
    for entry in entries:
        found = ENTRY.match(entry)
        problem = container_path_problem(found.group(3)) if found else "must be TYPE:sha256:HEX:PATH"
        if problem:
            raise ResolveError(f"image '{excerpt(image)}': label {INPUTS} entry {excerpt(entry)!r} {problem}")
        places.append(InputPlace(found.group(1), found.group(2), found.group(3)))
    return mode, places


def stored_input(workspace, place: InputPlace) -> Path | None:
    """The stored file or folder of an input: the one entry of its tree in this workspace, or None."""
    tree = workspace.stored_tree(place.tree)
    if tree is None:
        return None
    children = [child for child in tree.iterdir() if not child.is_symlink()]
    if len(children) != 1:
        return None
    child = children[0]
    return child if (child.is_file() if place.type == "uri_file" else child.is_dir()) else None
