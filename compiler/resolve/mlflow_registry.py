"""Resolve ``models:/NAME/VERSION`` and ``models:/NAME@ALIAS`` in an MLflow Model Registry.

The registry is the one ``MLFLOW_TRACKING_URI`` names (e.g. a sqlite-backed one); the model's files
are downloaded once and stored content-addressed in the workspace like any registered model.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from compiler.errors import ResolveError
from compiler.options import Options
from compiler.resolve.types import ResolvedModel
from compiler.spec.refs import AssetRef
from compiler.workspace import Workspace


def resolve_mlflow_model(ref: AssetRef, workspace: Workspace, options: Options) -> ResolvedModel:
    uri = options.mlflow_tracking_uri
    if not uri:
        raise ResolveError(f"'{ref}' is an MLflow registry reference: set MLFLOW_TRACKING_URI to the registry")
    try:
        import mlflow.artifacts
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise ResolveError("MLflow registry references need the mlflow package: pip install 'pkgc[mlflow]'") from None
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        if ref.version:
            version = client.get_model_version(ref.name, ref.version)
        else:
            version = client.get_model_version_by_alias(ref.name, ref.label)
    except MlflowException as exc:
        first = str(exc.message).splitlines()[0]
        raise ResolveError(f"'{ref}' not found in the MLflow registry at {uri}: {first}") from None
    # MLflow names may hold spaces and more: the package's name is an asset name (path part, tag, label)
    root_name = re.sub(r"[^A-Za-z0-9._-]", "-", ref.name).strip("-.")[:64] or "model"
    with tempfile.TemporaryDirectory(prefix="pkgc-mlflow-") as tmp:
        target = Path(tmp) / root_name
        target.mkdir()
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{ref.name}/{version.version}", dst_path=str(target), tracking_uri=uri
            )
        except MlflowException as exc:
            raise ResolveError(f"cannot download '{ref}' from {uri}: {exc.message}") from None
        if not (target / "MLmodel").is_file():
            raise ResolveError(f"'{ref}' in {uri} has no MLmodel file at its root: not an MLflow model")
        digest = workspace.store_tree(target)
    return ResolvedModel(
        name=root_name,
        version=str(version.version),
        type="mlflow_model",
        tree_digest=digest,
        tree_path=workspace.tree_path(digest),
        root_name=root_name,
        reference=f"{ref} (version {version.version}, {uri})",
    )
