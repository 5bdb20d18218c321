"""The SBOM's last step and its reusable draft, with no CycloneDX library behind them (pure, no I/O).

``generate_sbom`` renders a draft with a zero serial number, then sets the serial to a UUIDv5 of the
draft's own hash (``finish``). The scoring code's tree digest appears once in the whole document (its
component's hash: components are ordered by their unique bom-ref before any hash), so a draft rendered
with ``CODE_SENTINEL`` in its place (``as_template``) becomes any code version's draft by replacing
that one string (``fill``): a rebuild whose only change is the code reuses the rest of the document,
kept by ``template_key`` (compiler/sbom/collect.py), instead of rendering every locked package again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

from compiler.sbom.types import SbomInputs

DRAFT_SERIAL = uuid.UUID(int=0)
CODE_SENTINEL = "c0de" * 16  # 64 hex digits standing for the code tree's digest in a template
_PLACEHOLDER = f'"serialNumber": "{DRAFT_SERIAL.urn}"'


def finish(draft: str) -> bytes | None:
    """The document of ``draft`` (rendered with ``DRAFT_SERIAL``): its serial set from its own hash;
    None when the placeholder is not there exactly once (render again with the serial instead)."""
    if draft.count(DRAFT_SERIAL.urn) != 1 or _PLACEHOLDER not in draft:
        return None
    serial = serial_of(draft)
    return (draft.replace(_PLACEHOLDER, f'"serialNumber": "{serial.urn}"') + "\n").encode()


def serial_of(draft: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"pkgc-sbom:sha256:{hashlib.sha256(draft.encode()).hexdigest()}")


def as_template(sbom: SbomInputs) -> SbomInputs:
    """``sbom`` with the code digest replaced by ``CODE_SENTINEL`` (inputs without code: unchanged)."""
    if sbom.code is None:
        return sbom
    return dataclasses.replace(sbom, code=dataclasses.replace(sbom.code, digest=CODE_SENTINEL))


def template_key(sbom: SbomInputs, generator: str) -> str:
    """A content key of everything the template states (all inputs but the code digest) and of the
    ``generator`` (its source and library versions): equal keys, equal templates."""
    fields = json.dumps(dataclasses.asdict(as_template(sbom)), sort_keys=True, default=str)
    return hashlib.sha256(f"{generator}\0{fields}".encode()).hexdigest()


def fill(template: str, code_digest: str) -> str | None:
    """The draft for ``code_digest`` from a template; None when the sentinel is not there exactly once."""
    if template.count(CODE_SENTINEL) != 1 or CODE_SENTINEL == code_digest:
        return None
    return template.replace(CODE_SENTINEL, code_digest)
