"""``pkgc sbom IMAGE|oci:DIR[:TAG]|oci-archive:FILE[:TAG] [--attached]``: print the package's CycloneDX
SBOM as stored in the image; from a layout, the one attached as a referrer when the image has none
(or with ``--attached``, only that one).

Exit codes: 0 printed, 2 bad input (unknown image, unreadable layout, no SBOM in it), 5 no engine.
"""

from __future__ import annotations

import sys

from compiler.commands import connect_engine
from compiler.errors import ResolveError, SpecError, SpecProblem, excerpt


def register(sub) -> None:
    p = sub.add_parser("sbom", help="print a package image's CycloneDX SBOM (/opt/pkgc/sbom.cdx.json)")
    p.add_argument("image", help="an image in the engine, oci:DIR[:TAG] or oci-archive:FILE[:TAG]")
    p.add_argument("--attached", action="store_true", help="print the SBOM attached to the image as an OCI referrer")
    p.set_defaults(func=run)


def run(args, options, reporter) -> int:
    from compiler.sbom.image_files import is_layout_reference, read_image_file
    from compiler.sbom.types import SBOM_IN_IMAGE

    layout = is_layout_reference(args.image)
    if args.attached and not layout:
        raise SpecError(SpecProblem("--attached", "", "reads an oci:DIR or oci-archive:FILE"))
    data = None if args.attached else read_image_file(args.image, SBOM_IN_IMAGE, connect_engine)
    if data is None and layout:
        from compiler.provenance.verify import attached_sbom

        data = attached_sbom(args.image)
    if data is None:
        where = "attached" if args.attached else f"at {SBOM_IN_IMAGE}"
        raise ResolveError(f"image '{excerpt(args.image)}' has no SBOM {where} (not built by this pkgc?)")
    sys.stdout.buffer.write(data)  # the stored bytes, so their sha256 is the io.pkgc.sbom.digest label
    sys.stdout.flush()
    return 0
