"""Stage resolve: a PackageSpec becomes a ResolvedPackage (model, base environment, server, code)."""

from compiler.resolve.resolver import resolve_package
from compiler.resolve.types import ResolvedPackage

__all__ = ["resolve_package", "ResolvedPackage"]
