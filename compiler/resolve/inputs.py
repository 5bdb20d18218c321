"""Resolve ``inputs:``: each local file or folder stored in the workspace like a model, its place checked.

A ``uri_file`` must be a file and a ``uri_folder`` a folder; mount paths must not hold or lie inside
the model's folder, the code folder or another input (the spec's own rules are checked on load).
"""

from __future__ import annotations

from pathlib import Path

from compiler.errors import ResolveError, SpecError, excerpt
from compiler.resolve.models import check_utf8, store_failure
from compiler.resolve.types import ResolvedInput
from compiler.spec.load import SpecFile
from compiler.workspace import Workspace


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def resolve_inputs(spec_file: SpecFile, workspace: Workspace, model_dir: str) -> tuple[ResolvedInput, ...]:
    resolved: list[ResolvedInput] = []
    for index, extra in enumerate(spec_file.spec.inputs):
        key = ("inputs", index)
        if _overlap(extra.mount_path, model_dir):
            raise SpecError(spec_file.problem(key + ("mount_path",), f"must not be inside or above the model's folder {model_dir}"))
        for other in resolved:
            if _overlap(extra.mount_path, other.mount_path):
                raise SpecError(spec_file.problem(key + ("mount_path",), f"must not be inside or above another input ({other.mount_path})"))
        written = extra.local_path
        path = (spec_file.base_dir / written).resolve()
        try:
            check_utf8(path, "input path")
            is_file, is_dir = path.is_file(), path.is_dir()
        except (OSError, ValueError) as exc:
            raise SpecError(spec_file.problem(key + ("path",), str(exc))) from None
        if extra.type == "uri_file" and not is_file or extra.type == "uri_folder" and not is_dir:
            kind = "file" if extra.type == "uri_file" else "folder"
            found = "does not exist" if not (is_file or is_dir) else f"is not a {kind}"
            raise SpecError(spec_file.problem(key + ("path",), f"'{excerpt(written)}' {found} ({extra.type} needs a {kind})"))
        try:
            digest = workspace.store_tree(path)
        except ResolveError as exc:  # a ContentError: a link leaving the tree, a FIFO...
            raise SpecError(spec_file.problem(key + ("path",), str(exc))) from None
        except (ValueError, OSError, RuntimeError) as exc:
            raise SpecError(spec_file.problem(key + ("path",), f"'{excerpt(written)}': {store_failure(exc)}")) from None
        resolved.append(ResolvedInput(extra.type, extra.mount_path, digest, workspace.tree_path(digest), Path(path).name))
    return tuple(resolved)
