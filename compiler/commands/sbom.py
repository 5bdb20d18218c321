"""``pkgc sbom IMAGE|oci:DIR[:TAG]|oci-archive:FILE[:TAG]``: print the package's CycloneDX SBOM as stored.

Exit codes: 0 printed, 2 bad input (unknown image, unreadable layout, no SBOM in it), 5 no engine.
"""

from __future__ import annotations

import sys

from compiler.commands import connect_engine
from compiler.errors import ResolveError, excerpt


def register(sub) -> None:
    p = sub.add_parser("sbom", help="print a package image's CycloneDX SBOM (/opt/pkgc/sbom.cdx.json)")
    p.add_argument("image", help="an image in the engine, oci:DIR[:TAG] or oci-archive:FILE[:TAG]")
    p.set_defaults(func=run)


def run(args, options, reporter) -> int:
    from compiler.sbom.image_files import read_image_file
    from compiler.sbom.types import SBOM_IN_IMAGE

    data = read_image_file(args.image, SBOM_IN_IMAGE, connect_engine)
    if data is None:
        raise ResolveError(f"image '{excerpt(args.image)}' has no SBOM at {SBOM_IN_IMAGE} (not built by this pkgc?)")
    sys.stdout.buffer.write(data)  # the stored bytes, so their sha256 is the io.pkgc.sbom.digest label
    sys.stdout.flush()
    return 0
