"""Check an image's SBOM against the image's lock: every locked package is in the SBOM with the same
version and sha256, and nothing more. The SBOM is untrusted input: size-bounded, validated against
the CycloneDX JSON schema (the library's own validator), then compared."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from compiler.lock.types import Lock

MANAGERS = {"pypi": "pip", "conda": "conda"}  # purl type -> lock manager
SHOWN = 3  # differences named in the one-line message


@dataclass(frozen=True)
class SbomCheck:
    """The outcome: ``problems`` empty means the SBOM matches the lock."""

    digest: str
    packages: int
    problems: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"digest": self.digest, "packages": self.packages, "matches_lock": not self.problems}


def _schema_problem(text: str) -> str | None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        spec = json.loads(text).get("specVersion")
    except (ValueError, AttributeError):
        return "is not a JSON object"
    versions = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}
    if spec not in versions:
        return f"has specVersion {str(spec)[:20]!r}; expected CycloneDX 1.5 or 1.6"
    error = JsonStrictValidator(versions[spec]).validate_str(text)
    return f"is not valid CycloneDX {spec}: {str(error)[:160]}" if error else None


def _sha256(component: dict) -> str:
    hashes = [h.get("content", "") for h in component.get("hashes") or [] if h.get("alg") == "SHA-256"]
    return hashes[0] if hashes else ""


def sbom_packages(document: dict) -> dict[tuple[str, str], tuple[str, str]]:
    """(manager, name) -> (version, sha256) of every pip and conda component, by its purl type."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for component in document.get("components") or []:
        purl = str(component.get("purl") or "")
        kind = purl.removeprefix("pkg:").partition("/")[0] if purl.startswith("pkg:") else ""
        if kind in MANAGERS:
            found[(MANAGERS[kind], str(component.get("name")))] = (str(component.get("version")), _sha256(component))
    return found


def compare(sbom: bytes, lock: Lock) -> SbomCheck:
    """Compare the SBOM's bytes with the lock; every difference is one short phrase."""
    digest = f"sha256:{hashlib.sha256(sbom).hexdigest()}"
    try:
        text = sbom.decode("utf-8")
    except UnicodeDecodeError:
        return SbomCheck(digest, 0, ("the SBOM is not UTF-8",))
    problem = _schema_problem(text)
    if problem:
        return SbomCheck(digest, 0, (f"the SBOM {problem}",))
    listed = sbom_packages(json.loads(text))
    locked = {(p.manager, p.name): (p.version, p.sha256) for p in lock.packages}
    problems = []
    for key in sorted(locked.keys() | listed.keys()):
        manager, name = key
        if key not in listed:
            problems.append(f"{manager} {name} {locked[key][0]} is locked but not in the SBOM")
        elif key not in locked:
            problems.append(f"{manager} {name} {listed[key][0]} is in the SBOM but not locked")
        elif listed[key] != locked[key]:
            (sv, sh), (lv, lh) = listed[key], locked[key]
            problems.append(f"{manager} {name}: SBOM {sv} sha256:{sh[:12]}, lock {lv} sha256:{lh[:12]}")
    return SbomCheck(digest, len(listed), tuple(problems))


def summary(problems: tuple[str, ...]) -> str:
    shown = "; ".join(problems[:SHOWN])
    more = len(problems) - SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")
