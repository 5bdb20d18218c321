"""Check an image's SBOM against the image's lock: every locked package is in the SBOM with the same
version and sha256, and nothing more. The SBOM is untrusted input: size-bounded, its shape checked, then compared."""

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


def _shape_problem(document: object) -> str | None:
    """What keeps ``document`` from being read as a CycloneDX 1.5/1.6 BOM's components, or None.
    (Full schema validation, as the unit tests do with the library's validator, takes seconds: its
    IRI format check parses every URL with an Earley parser. The comparison needs only the shape.)"""
    if not isinstance(document, dict):
        return "is not a JSON object"
    if document.get("bomFormat") != "CycloneDX" or document.get("specVersion") not in ("1.5", "1.6"):
        return f"is not a CycloneDX 1.5 or 1.6 BOM (specVersion {str(document.get('specVersion'))[:20]!r})"
    components = document.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return "has a 'components' that is not a list of objects"
    for c in components:
        hashes = c.get("hashes", [])
        if not all(isinstance(c.get(k, ""), str) for k in ("purl", "name", "version")) or not isinstance(hashes, list) \
                or not all(isinstance(h, dict) for h in hashes):
            return f"has a component that is not well-formed ({str(c.get('bom-ref'))[:60]})"
    return None


def _sha256(component: dict) -> str:
    hashes = [h.get("content", "") for h in component.get("hashes") or [] if h.get("alg") == "SHA-256"]
    return hashes[0] if hashes else ""


def sbom_packages(document: dict, twice: list[str] | None = None) -> dict[tuple[str, str], tuple[str, str]]:
    """(manager, name) -> (version, sha256) of every pip and conda component, by its purl type;
    packages listed more than once are added to ``twice``."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for component in document.get("components") or []:
        purl = str(component.get("purl") or "")
        kind = purl.removeprefix("pkg:").partition("/")[0] if purl.startswith("pkg:") else ""
        if kind in MANAGERS:
            if (MANAGERS[kind], str(component.get("name"))) in found and twice is not None:
                twice.append(f"{MANAGERS[kind]} {str(component.get('name'))[:60]} is in the SBOM more than once")
            found[(MANAGERS[kind], str(component.get("name")))] = (str(component.get("version")), _sha256(component))
    return found


def compare(sbom: bytes, lock: Lock) -> SbomCheck:
    """Compare the SBOM's bytes with the lock; every difference is one short phrase."""
    digest = f"sha256:{hashlib.sha256(sbom).hexdigest()}"
    try:
        text = sbom.decode("utf-8")
    except UnicodeDecodeError:
        return SbomCheck(digest, 0, ("the SBOM is not UTF-8",))
    try:
        document = json.loads(text)
    except ValueError as exc:
        return SbomCheck(digest, 0, (f"the SBOM is not JSON ({str(exc)[:80]})",))
    problem = _shape_problem(document)
    if problem:
        return SbomCheck(digest, 0, (f"the SBOM {problem}",))
    problems: list[str] = []
    listed = sbom_packages(document, problems)
    locked = {(p.manager, p.name): (p.version, p.sha256) for p in lock.packages}
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
