"""Resolve the model to package: a workspace/registry reference or a local file or folder."""

from __future__ import annotations

import re
from pathlib import Path

from compiler.errors import ResolveError
from compiler.options import Options
from compiler.resolve.types import ResolvedModel
from compiler.spec.model import LocalModel
from compiler.spec.refs import AssetRef, RefSyntaxError, looks_like_reference, parse_ref
from compiler.workspace import Workspace


def workspace_for(ref: AssetRef, workspace: Workspace, options: Options) -> Workspace:
    """The workspace a reference points into: the current one, or a configured registry."""
    if ref.registry is None:
        return workspace
    path = options.registries.get(ref.registry)
    if path is None:
        raise ResolveError(
            f"registry '{ref.registry}' is not configured: add it under [registries] in pkgc.toml "
            f"(or [tool.pkgc.registries] in pyproject.toml), e.g. {ref.registry} = \"/path/to/registry\""
        )
    return Workspace(path)


def is_mlflow_tree(tree_path: Path, root_name: str) -> bool:
    return (tree_path / root_name / "MLmodel").is_file()


def _anonymous_name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-.") or "model"


def resolve_local_model(model: LocalModel, base_dir: Path, workspace: Workspace) -> ResolvedModel:
    """Store a local file or folder content-addressed in the workspace and describe it."""
    path = (base_dir / model.path).resolve()
    if not path.exists():
        raise ResolveError(f"model path '{model.path}' does not exist ({path})")
    try:
        digest = workspace.store_tree(path)
    except ValueError as exc:
        raise ResolveError(str(exc)) from None
    tree = workspace.tree_path(digest)
    detected = "mlflow_model" if is_mlflow_tree(tree, path.name) else "custom_model"
    return ResolvedModel(
        name=model.name or _anonymous_name(path),
        version=model.version or "1",
        type=model.type or detected,
        tree_digest=digest,
        tree_path=tree,
        root_name=path.name,
        reference=str(path),
    )


def resolve_registered_model(ref: AssetRef, workspace: Workspace, options: Options) -> ResolvedModel:
    source = workspace_for(ref, workspace, options)
    record = source.get_model(ref.name, ref.version, ref.label)
    tree = source.tree_path(record.tree)
    if not tree.is_dir():
        raise ResolveError(f"model {record.name}:{record.version} is registered but its files are missing ({tree})")
    return ResolvedModel(
        name=record.name,
        version=record.version,
        type=record.type,
        tree_digest=record.tree,
        tree_path=tree,
        root_name=record.root_name,
        reference=str(ref),
    )


def resolve_model(
    model: str | LocalModel, base_dir: Path, workspace: Workspace, options: Options
) -> ResolvedModel:
    """Resolve ``model`` as written in package.yml or on the command line (relative to ``base_dir``)."""
    if isinstance(model, LocalModel):
        return resolve_local_model(model, base_dir, workspace)
    if (base_dir / model).exists() and not model.startswith(("azureml:", "models:/")):
        return resolve_local_model(LocalModel(path=model), base_dir, workspace)
    if not looks_like_reference(model):
        raise ResolveError(f"model '{model}' is neither an existing path nor a model reference")
    try:
        ref = parse_ref(model, "models")
    except RefSyntaxError as exc:
        raise ResolveError(str(exc)) from None
    if ref.mlflow:
        from compiler.resolve.mlflow_registry import resolve_mlflow_model

        return resolve_mlflow_model(ref, workspace, options)
    return resolve_registered_model(ref, workspace, options)
