"""Check the attestations attached to an image, offline: ``pkgc attestations verify``.

From an OCI layout or archive (``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``): the image's manifest
digest, its config's ``io.pkgc.sbom.digest`` label, and every referrer whose ``subject`` is that
manifest (every blob read is checked against its digest). Then:

- each DSSE envelope is verified with the public key (any bad signature fails), its statement must
  name the image's manifest digest as subject and carry the predicate type its annotation states;
- the SBOM referrer must have the digest the image's label states (so a signature over the manifest
  also covers the SBOM), and so must the provenance's SBOM byproduct;
- the SBOM and an SLSA provenance must both be attached (the missing one is named); a referrer listed
  twice (the same manifest, or the same attested bytes) counts once;
- with a key, every attestation (each in-toto referrer) must be a DSSE envelope signed by it: an
  unsigned statement beside a signed one fails, and a signed provenance and a signed SBOM statement
  must both be among them; without a key, signatures are not checked and the result says so.

The chain a passing check establishes: key -> signature -> statement -> subject digest = the image
manifest -> its config -> the SBOM label -> the attached SBOM."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING


from compiler.errors import VerifyError, excerpt
from compiler.labels import SBOM_DIGEST
from compiler.oci.referrers import layout_referrers
from compiler.provenance.attach import PREDICATE_ANNOTATION
from compiler.provenance.dsse import ENVELOPE, IN_TOTO, BadSignature, verify
from compiler.provenance.facts import SBOM_MEDIA_TYPE
from compiler.provenance.statement import CYCLONEDX_BOM, SLSA_PROVENANCE, STATEMENT_TYPE
from compiler.oci.layout_reader import OciLayout, mapping
from compiler.sbom.image_files import image_entry, open_reference

if TYPE_CHECKING:
    from securesystemslib.signer import SSlibKey

BLOB_LIMIT = 64 << 20
MAX_PLATFORMS = 16  # the platform images of an index read for their SBOM labels


@dataclass
class AttestationCheck:
    """What was found and checked for one image."""

    image: str
    subject: str
    sbom_digest: str | None  # the image's SBOM label (an index: its first platform's)
    checked: list[dict] = field(default_factory=list)  # one entry per referrer
    sbom_digests: tuple[str, ...] = ()  # every SBOM the image's labels state (an index: one per platform)
    attached_sboms: dict = field(default_factory=dict)  # digest -> the attached SBOM, parsed
    signed_provenance: bool = False
    signed_sbom: bool = False
    provenance: bool = False  # an SLSA provenance, signed or not
    sbom_attached: bool = False
    signed_sboms: list = field(default_factory=list)  # predicates of signed CycloneDX statements

    def as_dict(self) -> dict:
        return {"image": self.image, "subject": self.subject, "sbom_digest": self.sbom_digest,
                "signed_provenance": self.signed_provenance, "signed_sbom": self.signed_sbom,
                "provenance": self.provenance, "sbom_attached": self.sbom_attached,
                "referrers": self.checked}  # fmt: skip


def _stated_sboms(layout: OciLayout, manifest: dict) -> list[str]:
    """The SBOM digests the image's config labels state; an image index: each platform image's."""
    images = [layout.blob_json(m) for m in (manifest.get("manifests") or [])[:MAX_PLATFORMS]] if "manifests" in manifest else [manifest]
    stated = []
    for image in images:
        config = layout.blob_json(image.get("config"))
        digest = mapping(mapping(config.get("config")).get("Labels")).get(SBOM_DIGEST)
        if isinstance(digest, str):
            stated.append(digest)
    return list(dict.fromkeys(stated))


def _layer(layout: OciLayout, manifest: dict) -> tuple[dict, bytes]:
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise layout.fail("a referrer does not have exactly one layer")
    descriptor = layers[0]
    return descriptor, layout.blob(descriptor, BLOB_LIMIT, "a referrer's layer")  # checked: size, digest


def _json(layout: OciLayout, data: bytes) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        raise layout.fail("an attached document is not JSON") from None
    if not isinstance(value, dict):
        raise layout.fail("an attached document is not a JSON object")
    return value


def _check_statement(check: AttestationCheck, statement: dict, stated_type: str | None) -> str:
    """The statement's predicate type, once its type, subject and annotation agree with the image."""
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerifyError(f"{check.image}: an attestation is not an in-toto v1 statement")
    subjects = statement.get("subject") if isinstance(statement.get("subject"), list) else []
    hexes = {(s.get("digest") or {}).get("sha256") for s in subjects if isinstance(s, dict)}
    if check.subject.removeprefix("sha256:") not in hexes:
        raise VerifyError(f"{check.image}: an attestation's subject is not the image's manifest {check.subject}")
    kind = statement.get("predicateType")
    if stated_type is not None and kind != stated_type:
        raise VerifyError(f"{check.image}: an attestation annotated {stated_type} holds a {kind} statement")
    if kind == SLSA_PROVENANCE and check.sbom_digests:
        byproducts = ((statement.get("predicate") or {}).get("runDetails") or {}).get("byproducts") or []
        named = {((b.get("digest") or {}).get("sha256")) for b in byproducts if isinstance(b, dict) and b.get("name") == "sbom.cdx.json"}
        if named and not named & {d.removeprefix("sha256:") for d in check.sbom_digests}:
            raise VerifyError(f"{check.image}: the provenance names another SBOM than the image's {check.sbom_digest}")
    if kind == CYCLONEDX_BOM:
        check.signed_sboms.append(statement.get("predicate"))
    return str(kind)


def _is_attestation(referrer: dict, media: object) -> bool:
    """An in-toto attestation (signed or not), by its artifact type, its layer or its predicate annotation."""
    annotated = PREDICATE_ANNOTATION in mapping(referrer.get("annotations"))
    return referrer.get("artifactType") in (IN_TOTO, ENVELOPE) or media in (IN_TOTO, ENVELOPE) or annotated


def _unique(found: list[tuple[dict, dict]]) -> list[tuple[dict, dict]]:
    """The referrers once each: an index entry listed twice, or two referrers of the same layer, count once."""
    seen: set[str] = set()
    kept = []
    for entry, referrer in found:
        layers = referrer.get("layers") if isinstance(referrer.get("layers"), list) else []
        keys = {str(entry.get("digest"))} | {f"layer:{layer.get('digest')}" for layer in layers if isinstance(layer, dict)}
        if keys & seen:
            continue
        seen |= keys
        kept.append((entry, referrer))
    return kept


def _check_referrer(check: AttestationCheck, layout: OciLayout, index_entry: dict, referrer: dict, key: SSlibKey | None) -> None:
    """Check one referrer and record it in ``check``; raise VerifyError when it fails."""
    name = check.image
    descriptor, data = _layer(layout, referrer)
    media = descriptor.get("mediaType")
    stated = mapping(referrer.get("annotations")).get(PREDICATE_ANNOTATION)
    item = {"digest": index_entry["digest"], "artifactType": referrer.get("artifactType"), "mediaType": media}
    check.checked.append(item)
    short = str(index_entry["digest"])[:19]
    if media == SBOM_MEDIA_TYPE and not _is_attestation(referrer, media):
        found_digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if found_digest not in check.sbom_digests:
            raise VerifyError(f"{name}: the attached SBOM has digest {found_digest}, the image's label states {check.sbom_digest}")
        item["verified"] = "digest matches the image's SBOM label"
        check.attached_sboms[found_digest] = _json(layout, data)
        check.sbom_attached = set(check.attached_sboms) == set(check.sbom_digests)
    elif not _is_attestation(referrer, media):
        item["verified"] = "not checked (neither the SBOM nor an in-toto attestation)"
    elif key is not None and media != ENVELOPE:
        raise VerifyError(f"{name}: attestation {short} is not signed (a {media} layer); with --key every attestation must be signed by the key")
    elif media == ENVELOPE:
        if key is None:
            item["verified"] = "signature not checked (no --key)"
            check.provenance |= stated == SLSA_PROVENANCE
            return
        try:
            statement = verify(data, key)
        except BadSignature as exc:
            raise VerifyError(f"{name}: attestation {short} is not signed by the key: {exc}") from None
        item["predicateType"] = _check_statement(check, statement, stated)
        item["verified"] = "signature verified, subject matches"
        check.signed_provenance |= item["predicateType"] == SLSA_PROVENANCE
        check.signed_sbom |= item["predicateType"] == CYCLONEDX_BOM
        check.provenance |= item["predicateType"] == SLSA_PROVENANCE
    elif media == IN_TOTO:
        item["predicateType"] = _check_statement(check, _json(layout, data), stated)
        item["verified"] = "unsigned; subject matches"
        check.provenance |= item["predicateType"] == SLSA_PROVENANCE
    else:
        raise VerifyError(f"{name}: attestation {short} has a {excerpt(str(media), 80)} layer, neither a statement nor a DSSE envelope")


def _missing(check: AttestationCheck, signed: bool) -> list[str]:
    """What a complete set of attestations lacks: the SBOM, the provenance (and, with a key, their signatures)."""
    missing = [] if check.sbom_attached else ["the SBOM"]
    if signed:
        missing += [] if check.signed_provenance else ["a signed SLSA provenance"]
        missing += [] if check.signed_sbom else ["a signed SBOM statement"]
    elif not check.provenance:
        missing.append("an SLSA provenance")
    return missing


def verify_attestations(reference: str, key: SSlibKey | None, name: str | None = None) -> AttestationCheck:
    """Check every referrer of the image ``reference`` names (``name`` in messages); raise VerifyError
    on the first failure."""
    layout = open_reference(reference)
    name = name or reference
    try:
        entry = image_entry(layout)
        stated = _stated_sboms(layout, layout.blob_json(entry))
        check = AttestationCheck(name, entry["digest"], stated[0] if stated else None, sbom_digests=tuple(stated))
        index = layout.json("index.json")
        found = layout_referrers(index, check.subject, layout.blob_json)
        if not found:
            raise VerifyError(f"{name}: no attestations are attached to {check.subject}")
        for index_entry, referrer in _unique(found):
            _check_referrer(check, layout, index_entry, referrer, key)
        missing = _missing(check, key is not None)
        if missing:
            raise VerifyError(f"{name}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not attached to {check.subject}")
        if any(signed not in check.attached_sboms.values() for signed in check.signed_sboms):
            raise VerifyError(f"{name}: a signed SBOM statement differs from the image's SBOM")
        return check
    finally:
        layout.close()


def attached_sbom(reference: str) -> bytes | None:
    """The SBOM attached as a referrer to the image an ``oci:``/``oci-archive:`` reference names."""
    layout = open_reference(reference)
    try:
        subject = image_entry(layout)["digest"]
        for _entry, referrer in layout_referrers(layout.json("index.json"), subject, layout.blob_json):
            if referrer.get("artifactType") == SBOM_MEDIA_TYPE:
                descriptor, data = _layer(layout, referrer)
                if descriptor.get("mediaType") == SBOM_MEDIA_TYPE:
                    return data
        return None
    finally:
        layout.close()
