"""The local workspace: a registry of models, environments and built packages (stage: resolve)."""

from compiler.workspace.records import EnvironmentRecord, ModelRecord
from compiler.workspace.store import Workspace

__all__ = ["Workspace", "ModelRecord", "EnvironmentRecord"]
