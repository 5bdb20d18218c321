"""The one error class emit adds: a malformed ``--output``/``--push`` value or target (bad input, exit 2)."""

from __future__ import annotations

from compiler.errors import PkgcError


class TargetSyntaxError(PkgcError):
    """A ``--output``/``--push`` value that cannot be used; raised before any build work starts."""

    exit_code = 2
