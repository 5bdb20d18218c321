"""``pkgc attestations verify oci:DIR[:TAG]|oci-archive:FILE[:TAG]|REGISTRY/REPO[:TAG] [--key PUB]``:
check the SBOM and provenance attached to an image (offline for layouts; see compiler.provenance.verify).

Exit codes: 0 verified, 2 bad input (unreadable layout or key), 4 verification failed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from compiler.commands import print_result


def register(sub) -> None:
    p = sub.add_parser("attestations", help="check the SBOM and provenance attached to an image")
    verbs = p.add_subparsers(dest="verb", required=True)
    v = verbs.add_parser("verify", help="verify signatures, subjects and the SBOM of an image's attestations")
    v.add_argument("image", help="oci:DIR[:TAG], oci-archive:FILE[:TAG] or REGISTRY/REPO[:TAG] (read with skopeo)")
    v.add_argument("--key", help="PEM public key the attestations must be signed with (without: signatures are not checked)")
    v.add_argument("--json", action="store_true", help="print the result as one JSON object")
    v.set_defaults(func=run)


def describe(result: dict) -> str:
    signed = "signed provenance and SBOM statement verified" if result["signed_provenance"] else "signatures not checked"
    sbom = ", SBOM matches its label" if result["sbom_attached"] else ""
    return f"verified {len(result['referrers'])} attestations of {result['subject'][:19]}: {signed}{sbom}"


def run(args, options, reporter) -> int:
    from compiler.provenance.dsse import load_public_key
    from compiler.provenance.verify import verify_attestations

    key = load_public_key(Path(args.key)) if args.key else None
    if args.image.startswith(("oci:", "oci-archive:")):
        result = verify_attestations(args.image, key).as_dict()
    else:
        from compiler.provenance.registry import fetch_attestations, parse_remote

        parse_remote(args.image)  # bad input before any network
        with tempfile.TemporaryDirectory(prefix="pkgc-attestations-") as folder:
            result = verify_attestations(fetch_attestations(args.image, Path(folder), reporter.detail), key, args.image).as_dict()
    print_result(result, args.json, describe(result))
    return 0
