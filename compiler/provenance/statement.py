"""The in-toto statements pkgc writes about a built image (pure: no I/O, no clock).

- provenance: ``https://slsa.dev/provenance/v1`` (what was built from what, by which pkgc, how);
- sbom: ``https://cyclonedx.org/bom`` with the package's CycloneDX SBOM as predicate (signed only:
  the unsigned SBOM is attached as it is).

The subject is the image manifest's digest: the same digest every output and the push carry. For an
image index (several platforms), each platform's statements name its manifest and the index."""

from __future__ import annotations

from dataclasses import dataclass, field

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
CYCLONEDX_BOM = "https://cyclonedx.org/bom"
BUILD_TYPE = "urn:pkgc:build-type:package:v1"
TREE_METHOD = "pkgc tree digest: sha256 over (path, executable bit, sha256) of every file"


@dataclass(frozen=True)
class Dependency:
    """One resolved input: a name, its sha256 (hex) and notes (an SLSA ResourceDescriptor)."""

    name: str
    sha256: str | None  # None: not known (a base image the engine did not know)
    annotations: dict[str, str] = field(default_factory=dict)
    media_type: str | None = None

    def as_dict(self) -> dict:
        out: dict = {"name": self.name}
        if self.sha256:
            out["digest"] = {"sha256": self.sha256}
        if self.media_type:
            out["mediaType"] = self.media_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class BuildFacts:
    """Everything the provenance states, gathered before it is written."""

    pkgc_version: str
    image: str  # the image's name (the subject's name), without tag
    external: dict  # the user's parameters: spec (name, digest), model reference, flags
    internal: dict  # what pkgc chose: builder, environment strategy, Python, lock status
    dependencies: tuple[Dependency, ...]  # spec, lock, model tree, code tree, inputs, base image
    byproducts: tuple[Dependency, ...]  # the SBOM (and what else the build wrote beside the image)
    started: str  # RFC 3339 UTC
    finished: str


def _statement(image: str, manifest_digest: str, predicate_type: str, predicate: dict, also: tuple[str, ...] = ()) -> dict:
    subjects = []
    for digest in (manifest_digest, *also):
        algorithm, _, hex_digest = digest.partition(":")
        subjects.append({"name": image, "digest": {algorithm: hex_digest}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def builder_id(version: str) -> str:
    return f"urn:pkgc:builder:pkgc@{version}"


def provenance_statement(facts: BuildFacts, manifest_digest: str, also: tuple[str, ...] = ()) -> dict:
    """The SLSA v1 provenance of the image whose manifest has ``manifest_digest`` (one platform's image
    of an index names the index as well: ``also``)."""
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": facts.external,
            "internalParameters": facts.internal,
            "resolvedDependencies": [d.as_dict() for d in facts.dependencies],
        },
        "runDetails": {
            "builder": {"id": builder_id(facts.pkgc_version), "version": {"pkgc": facts.pkgc_version}},
            "metadata": {"startedOn": facts.started, "finishedOn": facts.finished},
            "byproducts": [d.as_dict() for d in facts.byproducts],
        },
    }
    return _statement(facts.image, manifest_digest, SLSA_PROVENANCE, predicate, also)


def sbom_statement(image: str, manifest_digest: str, sbom: dict, also: tuple[str, ...] = ()) -> dict:
    """The SBOM as an in-toto statement about the image (what ``cosign attest --type cyclonedx`` writes)."""
    return _statement(image, manifest_digest, CYCLONEDX_BOM, sbom, also)
