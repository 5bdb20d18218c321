"""``pkgc build``'s provenance step: make the attestor for one build, attest an OCI-built image that
is not published (so the JSON result always has its provenance), and report what was attached."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from compiler.provenance.attach import Attestor
from compiler.provenance.facts import FLAGS, build_facts

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner


def attestor_for(args, result: dict, started: float, signer: "CryptoSigner | None") -> Attestor:
    """The attestor of the image ``result`` describes, built from ``args`` (the build's flags)."""
    flags = {name: getattr(args, name, None) for name in FLAGS}
    spec = Path(args.spec)

    def facts(sbom: bytes, finished: float):
        return build_facts(result, spec, flags, sbom, started, finished)

    return Attestor(facts, result.get("sbom_digest"), signer)


def attest_stored(attestor: Attestor, result: dict, cache_dir: Path) -> None:
    """Attest an OCI-built image in pkgc's store (nothing is attached: there is no output)."""
    from compiler.oci.store import OciStore

    store = OciStore.in_cache(cache_dir)
    attestor(store.root, result["image"], result["manifest_digest"])


def record(result: dict, attestor: Attestor, pushed=None) -> None:
    """Put the provenance statement and the attached referrers into the build's JSON result."""
    if attestor.made is None:
        return
    made = attestor.made.as_dict()
    result["provenance"] = made.pop("statement")
    if pushed is not None:
        made["pushed"] = pushed.as_dict()
    result["attestations"] = made
