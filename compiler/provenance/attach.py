"""What pkgc attaches to a built image, given its manifest: the SBOM, the provenance statement, and
with a signing key their DSSE envelopes instead of the bare statement.

| artifactType | layer media type | what |
|---|---|---|
| application/vnd.cyclonedx+json | application/vnd.cyclonedx+json | the SBOM, the bytes in the image |
| application/vnd.in-toto+json | application/vnd.in-toto+json | the provenance statement (no key) |
| application/vnd.in-toto+json | application/vnd.dsse.envelope.v1+json | signed provenance, signed SBOM statement |

Each in-toto artifact is annotated with its ``in-toto.io/predicate-type``."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING


from compiler.errors import BuildError
from compiler.sbom.image_files import read_layout_file
from compiler.sbom.types import SBOM_IN_IMAGE
from compiler.oci.referrers import Artifact, Descriptor, Referrer, referrers
from compiler.oci.store import INDEX, MANIFEST
from compiler.platform import Platform
from compiler.provenance.dsse import ENVELOPE, IN_TOTO, sign
from compiler.provenance.facts import SBOM_MEDIA_TYPE
from compiler.provenance.statement import BuildFacts, provenance_statement, sbom_statement

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner

PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
PLATFORM_ANNOTATION = "io.pkgc.platform"  # an index's attestations: which platform's image each is about
MANIFEST_ANNOTATION = "io.pkgc.manifest"  # and that image's manifest digest
INDEX_LIMIT = 4 << 20  # the image's manifest or index, read to tell which it is


@dataclass(frozen=True)
class Attestations:
    """What was attached to one image manifest."""

    subject: Descriptor
    statement: dict
    signed: bool
    key_id: str | None
    referrers: tuple[Referrer, ...]

    def as_dict(self) -> dict:
        return {
            "subject": self.subject.digest, "signed": self.signed, "key_id": self.key_id,
            "referrers": [{"artifactType": r.artifact.artifact_type, "digest": r.digest,
                           "mediaType": r.artifact.media_type,
                           **({"predicateType": r.artifact.annotations[PREDICATE_ANNOTATION]}
                              if PREDICATE_ANNOTATION in r.artifact.annotations else {})} for r in self.referrers],
            "statement": self.statement,
        }  # fmt: skip


def _in_toto(statement: dict, signer: CryptoSigner | None, platform_note: dict[str, str] | None = None) -> Artifact:
    note = {**(platform_note or {}), PREDICATE_ANNOTATION: statement["predicateType"]}
    if signer is None:
        data = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
        return Artifact(IN_TOTO, IN_TOTO, data, note)
    return Artifact(IN_TOTO, ENVELOPE, sign(statement, signer), note)


@dataclass
class Attestor:
    """Makes the attestations of the image once its manifest digest is known (on first call)."""

    facts: Callable[[bytes, float], BuildFacts]  # (the image's SBOM, finish time) -> facts
    sbom_digest: str | None  # the io.pkgc.sbom.digest the build reported
    signer: CryptoSigner | None = None
    made: Attestations | None = field(default=None, init=False)

    def __call__(self, layout: Path, tag: str, manifest_digest: str) -> tuple[Referrer, ...]:
        """The referrers of the image ``tag`` in the OCI layout ``layout`` (manifest ``manifest_digest``).

        An image index of several platforms gets each platform's SBOM and statements, all attached
        to the index (the digest users pull), each statement naming its platform's manifest and the index."""
        if self.made is not None and self.made.subject.digest == manifest_digest:
            return self.made.referrers
        reference = f"oci:{layout}:{tag}"
        blob = layout / "blobs" / "sha256" / manifest_digest.split(":", 1)[1]
        with open(blob, "rb") as fh:
            document = json.loads(fh.read(INDEX_LIMIT))
        platforms: list[tuple[Platform | None, str]] = [(None, manifest_digest)]
        if document.get("mediaType") == INDEX:
            platforms = [(Platform.from_oci(m.get("platform") or {}), m["digest"]) for m in document.get("manifests") or []]
        subject = Descriptor(document.get("mediaType") or MANIFEST, manifest_digest, blob.stat().st_size)
        also = (manifest_digest,) if subject.media_type == INDEX else ()
        artifacts: list[Artifact] = []
        statement: dict = {}
        for platform, digest in platforms:
            sbom = read_layout_file(reference, SBOM_IN_IMAGE, platform) if platform else read_layout_file(reference, SBOM_IN_IMAGE)
            if sbom is None:
                raise BuildError(f"{reference}: the {platform or 'image'}'s image has no SBOM to attach")
            found = "sha256:" + hashlib.sha256(sbom).hexdigest()
            if self.sbom_digest and not also and found != self.sbom_digest:
                raise BuildError(f"{reference}: the image's SBOM has digest {found}, not the built {self.sbom_digest}")
            facts = self.facts(sbom, time.time())
            one = provenance_statement(facts, digest, also)
            statement = statement or one  # the result reports the first platform's
            note = {PLATFORM_ANNOTATION: str(platform), MANIFEST_ANNOTATION: digest} if platform else {}
            artifacts += [Artifact(SBOM_MEDIA_TYPE, SBOM_MEDIA_TYPE, sbom, note), _in_toto(one, self.signer, note)]
            if self.signer is not None:
                artifacts.append(_in_toto(sbom_statement(facts.image, digest, json.loads(sbom), also), self.signer, note))
        key_id = self.signer.public_key.keyid if self.signer is not None else None
        made = Attestations(subject, statement, self.signer is not None, key_id, referrers(tuple(artifacts), subject))
        self.made = made
        return made.referrers
