"""Resolve the base environment: a workspace/registry environment reference -> image + conda file."""

from __future__ import annotations

from compiler.errors import ResolveError
from compiler.options import Options
from compiler.resolve.models import workspace_for
from compiler.resolve.types import ResolvedEnvironment
from compiler.spec.refs import RefSyntaxError, parse_ref
from compiler.workspace import Workspace


def resolve_environment(
    resource_id: str, workspace: Workspace, options: Options
) -> ResolvedEnvironment:
    try:
        ref = parse_ref(resource_id, "environments")
    except RefSyntaxError as exc:
        raise ResolveError(str(exc)) from None
    source = workspace_for(ref, workspace, options)
    record = source.get_environment(ref.name, ref.version, ref.label)
    conda_path = None
    if record.conda_file:
        conda_path = source.blob_path(record.conda_file)
        if not conda_path.is_file():
            raise ResolveError(f"environment {record.name}:{record.version}: its conda file is missing ({conda_path})")
    label = f"conda file '{record.conda_file_name or 'conda.yaml'}' of environment {record.name}:{record.version}"
    return ResolvedEnvironment(
        name=record.name,
        version=record.version,
        image=record.image,
        conda_file=conda_path,
        conda_label=label,
    )
