"""Resolve the model to package: a workspace/registry reference or a local file or folder."""

from __future__ import annotations

import re
from pathlib import Path

from compiler.errors import ResolveError, excerpt
from compiler.options import Options
from compiler.resolve.types import ResolvedModel
from compiler.spec.model import LocalModel
from compiler.spec.refs import AssetRef, RefSyntaxError, looks_like_reference, parse_ref
from compiler.workspace import Workspace
from compiler.workspace.archives import model_source


def workspace_for(ref: AssetRef, workspace: Workspace, options: Options) -> Workspace:
    """The workspace a reference points into: the current one, or a configured registry."""
    if ref.registry is None:
        return workspace
    path = options.registries.get(ref.registry)
    if path is None:
        shown = excerpt(ref.registry, 60)
        raise ResolveError(
            f"registry '{shown}' is not configured: add it under [registries] in pkgc.toml "
            f"(or [tool.pkgc.registries] in pyproject.toml), e.g. {shown} = \"/path/to/registry\""
        )
    return Workspace(path)


def store_failure(exc: Exception) -> str:
    """Why a model's files could not be stored, as one line (the path named by the caller)."""
    if isinstance(exc, UnicodeError):
        return "a file name is not valid UTF-8; rename it"
    if isinstance(exc, RuntimeError):
        return "a loop of symbolic links"
    if isinstance(exc, OSError):
        where = f" ({excerpt(str(exc.filename))})" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where}"
    return excerpt(str(exc), 200)


def is_mlflow_tree(tree_path: Path, root_name: str) -> bool:
    return (tree_path / root_name / "MLmodel").is_file()


def _anonymous_name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-.")[:64].strip("-.") or "model"


def check_utf8(path: Path, label: str) -> None:
    """Records and labels hold the path as text: a name that is not UTF-8 is refused before any write."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ResolveError(f"{label} '{excerpt(str(path))}': the name is not valid UTF-8; rename it") from None


def _path_exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the filesystem, a folder that cannot be read: not a path here
        return False


def resolve_local_model(model: LocalModel, base_dir: Path, workspace: Workspace) -> ResolvedModel:
    """Store a local file or folder content-addressed in the workspace and describe it."""
    try:
        path = (base_dir / model.path).resolve()
        check_utf8(path, "model path")
        if not path.exists():
            raise ResolveError(f"model path '{excerpt(model.path)}' does not exist ({excerpt(str(path))})")
        with model_source(path, model.properties) as stored:  # an azureml.unpack archive: its checked tree
            digest, root_name = workspace.store_tree(stored), stored.name
    except (ValueError, OSError, RuntimeError) as exc:  # a link loop, an unreadable or special file, a bad name
        raise ResolveError(f"model path '{excerpt(model.path)}': {store_failure(exc)}") from None
    tree = workspace.tree_path(digest)
    detected = "mlflow_model" if is_mlflow_tree(tree, root_name) else "custom_model"
    name = model.name or _anonymous_name(path if root_name == path.name else tree / root_name)
    version = model.version or workspace.version_for_tree(name, digest, root_name, model.type or detected, path)
    return ResolvedModel(
        name=name,
        version=version,
        type=model.type or detected,
        tree_digest=digest,
        tree_path=tree,
        root_name=root_name,
        reference=str(path),
    )


def resolve_registered_model(ref: AssetRef, workspace: Workspace, options: Options) -> ResolvedModel:
    source = workspace_for(ref, workspace, options)
    record = source.get_model(ref.name, ref.version, ref.label)
    tree = source.tree_path(record.tree)
    if not tree.is_dir():
        raise ResolveError(f"model {record.name}:{record.version} is registered but its files are missing ({tree})")
    if source.root != workspace.root:  # a registry's model: its files also in this workspace, for pkgc run/verify mounts
        workspace.store_tree(tree / record.root_name)
        tree = workspace.tree_path(record.tree)
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
    if _path_exists(base_dir / model) and not model.startswith(("azureml:", "models:/")):
        return resolve_local_model(LocalModel(path=model), base_dir, workspace)
    if not looks_like_reference(model):
        raise ResolveError(f"model '{excerpt(model)}' is neither an existing path nor a model reference")
    try:
        ref = parse_ref(model, "models")
    except RefSyntaxError as exc:
        raise ResolveError(str(exc)) from None
    if ref.mlflow:
        from compiler.resolve.mlflow_registry import resolve_mlflow_model

        return resolve_mlflow_model(ref, workspace, options)
    return resolve_registered_model(ref, workspace, options)
