"""The SBOM's last step and its reusable draft, with no CycloneDX library behind them (pure, no I/O).

``generate_sbom`` renders a draft with a zero serial number, then sets the serial to a UUIDv5 of the
draft's own hash (``finish``). The scoring code's tree digest, the model's tree digest and the model's
version appear only in their own fields (components are ordered by type, name, version and
their unique bom-ref before any hash, and the model is the one component of its type), so a draft
rendered with sentinels in their place (``as_template``) becomes any code or model version's draft
by replacing those strings (``fill``): a rebuild whose only change is the code or the model reuses
the rest of the document, kept by ``template_key`` (compiler/sbom/collect.py), instead of rendering
every locked package again. The version is also the name of a folder in the model's path, where it
is templated too; a version that JSON would escape is not templated (it stays in the key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid

from compiler.sbom.types import SbomInputs

DRAFT_SERIAL = uuid.UUID(int=0)
CODE_SENTINEL = "c0de" * 16  # 64 hex digits standing for the code tree's digest in a template
MODEL_SENTINEL = "70de1" * 12 + "cafe"  # 64 hex digits standing for the model tree's digest
VERSION_SENTINEL = "pkgc-model-version-sentinel-9b1f"  # standing for the model's version
_PLAIN_VERSION = re.compile(r"[A-Za-z0-9._+:@-]{1,128}")  # written as is in JSON: safe to put in by hand
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
    """``sbom`` with the code digest, the model digest and a plain model version replaced by sentinels."""
    model = dataclasses.replace(sbom.model, digest=MODEL_SENTINEL)
    if _templated_version(sbom):  # its field, and the path's folders named after it (.../NAME/VERSION/...)
        path = "/".join(VERSION_SENTINEL if part == model.version else part for part in model.path.split("/"))
        model = dataclasses.replace(model, version=VERSION_SENTINEL, path=path)
    code = None if sbom.code is None else dataclasses.replace(sbom.code, digest=CODE_SENTINEL)
    return dataclasses.replace(sbom, model=model, code=code)


def template_key(sbom: SbomInputs, generator: str) -> str:
    """A content key of everything the template states (all inputs but the templated values) and of
    the ``generator`` (its source and library versions): equal keys, equal templates."""
    fields = json.dumps(dataclasses.asdict(as_template(sbom)), sort_keys=True, default=str)
    return hashlib.sha256(f"{generator}\0{fields}".encode()).hexdigest()


def fill(template: str, sbom: SbomInputs) -> str | None:
    """The draft for ``sbom`` from its template; None when a sentinel is not there as often as
    ``as_template`` put it, or a value holds a sentinel (render it instead)."""
    values = {MODEL_SENTINEL: (sbom.model.digest, 1)}  # what each sentinel stands for, and how often
    if sbom.code is not None:
        values[CODE_SENTINEL] = (sbom.code.digest, 1)
    if _templated_version(sbom):
        values[VERSION_SENTINEL] = (sbom.model.version, 1 + sbom.model.path.split("/").count(sbom.model.version))
    sentinels = (CODE_SENTINEL, MODEL_SENTINEL, VERSION_SENTINEL)
    if any(sentinel in value for value, _ in values.values() for sentinel in sentinels):
        return None
    if any(template.count(sentinel) != values.get(sentinel, ("", 0))[1] for sentinel in sentinels):
        return None
    for sentinel, (value, _) in values.items():
        template = template.replace(sentinel, value)
    return template


def _templated_version(sbom: SbomInputs) -> bool:
    return sbom.model.version is not None and bool(_PLAIN_VERSION.fullmatch(sbom.model.version))
