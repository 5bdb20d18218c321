"""Attach the referrers (SBOM, provenance) to every prepared output before it is put in place."""

from __future__ import annotations

import tarfile

from compiler.errors import BuildError
from compiler.oci.referrers import Referrer, attach_to_archive, attach_to_layout
from compiler.outputs.targets import PreparedOutput


def attach_to_outputs(prepared: list[PreparedOutput], refs: tuple[Referrer, ...]) -> None:
    """Add ``refs`` to every prepared (not yet committed) ``--output``."""
    for p in prepared:
        try:
            if p.output.kind == "oci":
                attach_to_layout(p.written, refs)
            else:
                attach_to_archive(p.written, refs)
        except (OSError, ValueError, tarfile.TarError) as exc:
            raise BuildError(f"cannot attach the SBOM and provenance to {p.output.path}: {getattr(exc, 'strerror', None) or exc}") from None
