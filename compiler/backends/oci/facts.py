"""Base-image facts with no engine: the ``io.pkgc.base.*`` labels of the image in pkgc's OCI store
(or of an ``oci:``/``oci-archive:`` or registry reference, imported into the store to read them),
else the one ``python3.X`` its layers hold."""

from __future__ import annotations

from pathlib import Path

from compiler.errors import BuildError, ResolveError
from compiler.oci.base import resolve_base
from compiler.oci.store import OciStore
from compiler.labels import BaseImageLabels
from compiler.platform import Platform
from compiler.resolve.types import BaseImageFacts


def stored_base_facts(image: str, cache_dir: Path, required: bool = False, platform: Platform | None = None) -> BaseImageFacts | None:
    """Facts from the labels of the stored image's ``platform`` image (default: the host's); None when
    the store does not hold ``image`` (or, when ``required``, as for an ``oci:`` reference the user
    named, a ResolveError saying why). A store that holds ``image`` but not for ``platform`` is a
    ResolveError naming the command that builds it."""
    store = OciStore.in_cache(cache_dir)
    try:
        base = resolve_base(image, store, None, lambda _msg: None, platform)
    except BuildError as exc:
        if required:
            raise ResolveError(str(exc)) from None
        return None
    stated = BaseImageLabels.from_labels(image, base.labels)  # untrusted: checked by the label contract
    if stated is None:  # an image pkgc did not make (e.g. python:3.11-slim from a registry): its one python3.X
        from compiler.backends.oci.scan import scan_base

        try:
            pythons = sorted(scan_base(store, base).pythons)
        except BuildError:  # a layer pkgc cannot read: the build says so
            return None
        if len(pythons) != 1:
            return None
        return BaseImageFacts(image, pythons[0], False, f"python{pythons[0]} in its layers ({base.source})")
    return BaseImageFacts(image, stated.python, stated.has_conda, f"labels in pkgc's OCI store ({base.source})")
