"""``pkgc build``'s provenance step. ``ProvenanceRequest.from_args`` reads ``--sign-key`` (bad input
before any build work) and notes the flags and the start time; after the build, ``attestor(result)``
makes the attestor the publish step calls with the image's manifest; ``attest_stored`` attests an
OCI-built image that is not published (so the JSON result always has its provenance); ``record``
puts the provenance and the attached referrers into the JSON result."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.errors import SpecError, SpecProblem
from compiler.provenance.attach import Attestor
from compiler.provenance.facts import FLAGS, build_facts

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner


@dataclass(frozen=True)
class ProvenanceRequest:
    """What the provenance of one build needs from its command line."""

    spec: Path
    flags: dict[str, Any]
    signer: "CryptoSigner | None"
    started: float

    @classmethod
    def from_args(cls, args) -> "ProvenanceRequest":
        signer = None
        if getattr(args, "sign_key", None):
            if args.emit:
                raise SpecError(SpecProblem("--sign-key", "", "signs a built package; drop --emit"))
            from compiler.provenance.dsse import load_signer

            signer = load_signer(Path(args.sign_key))
        return cls(Path(args.spec), {name: getattr(args, name, None) for name in FLAGS}, signer, time.time())

    def attestor(self, result: dict) -> Attestor:
        """The attestor of the image the build's JSON ``result`` describes."""

        def facts(sbom: bytes, finished: float):
            return build_facts(result, self.spec, self.flags, sbom, self.started, finished)

        return Attestor(facts, result.get("sbom_digest"), self.signer)


def attest_stored(attestor: Attestor, result: dict, cache_dir: Path) -> None:
    """Attest an OCI-built image in pkgc's store (nothing is attached: there is no output)."""
    from compiler.oci.store import OciStore

    attestor(OciStore.in_cache(cache_dir).root, result["image"], result["manifest_digest"])


def record(result: dict, attestor: Attestor, pushed=None, attached: bool = True) -> None:
    """Put the provenance statement and (when they were ``attached``) the referrers into the build's
    JSON result."""
    if attestor.made is None:
        return
    made = attestor.made.as_dict()
    result["provenance"] = made.pop("statement")
    if not attached:
        return
    if pushed is not None:
        made["pushed"] = pushed.as_dict()
    result["attestations"] = made
