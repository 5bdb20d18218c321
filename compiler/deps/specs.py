"""Parsing single requirement strings: pip (PEP 508) and conda MatchSpec (translated to pip syntax)."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PepRequirement
from packaging.utils import canonicalize_name

from compiler.deps.types import Requirement, Source

_CONDA = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9_./:-]+)::)?(?P<name>[A-Za-z0-9_.-]+)\s*"
    r"(?P<spec>(?:[=<>!~].*|\s*[0-9*].*)?)$"
)


class RequirementSyntaxError(ValueError):
    """A requirement string that cannot be parsed."""


def normalize(name: str) -> str:
    return canonicalize_name(name)


def parse_pip(text: str, source: Source) -> Requirement:
    """A PEP 508 requirement line (no pip options)."""
    text = text.strip()
    if text.startswith("-"):
        raise RequirementSyntaxError(f"pip option '{text.split()[0]}' is not supported; list plain requirements")
    try:
        req = PepRequirement(text)
    except InvalidRequirement as exc:
        raise RequirementSyntaxError(f"invalid pip requirement '{text}': {exc}") from None
    if req.url:
        raise RequirementSyntaxError(f"direct URL requirement '{text}' is not supported; pin a version instead")
    return Requirement(
        name=normalize(req.name),
        manager="pip",
        specifier=str(req.specifier),
        raw=text,
        source=source,
        extras=tuple(sorted(req.extras)),
        marker=str(req.marker) if req.marker else None,
    )


def _fuzzy(version: str) -> str:
    return f"=={version.rstrip('*').rstrip('.')}.*"


def conda_to_pip_specifier(spec: str) -> str:
    """Translate a conda version spec to pip syntax: ``=1.2`` is fuzzy (``==1.2.*``), ``1.2`` exact."""
    out = []
    for part in (p.strip() for p in spec.strip().split(",")):
        if not part:
            continue
        if "|" in part:
            raise RequirementSyntaxError(f"conda 'or' specs ('{part}') are not supported")
        if part.startswith("=") and not part.startswith("=="):
            out.append(_fuzzy(part[1:].split("=")[0]))  # a build string (=1.2.3=py39_0) is dropped
        elif part[0].isdigit():
            version = part.split("=")[0].split(" ")[0]
            out.append(_fuzzy(version) if version.endswith("*") else f"=={version}")
        elif part.startswith("==") and part.endswith("*"):
            out.append(_fuzzy(part[2:]))
        else:
            out.append(part.replace(" ", ""))
    return ",".join(out)


def parse_conda(text: str, source: Source) -> Requirement:
    """A conda MatchSpec such as ``numpy=1.23.5``, ``conda-forge::scipy>=1.10``, ``python 3.11.*``."""
    text = str(text).strip()
    match = _CONDA.match(text)
    if not match:
        raise RequirementSyntaxError(f"invalid conda requirement '{text}'")
    spec = match["spec"].strip()
    if spec.startswith("=") and not spec.startswith("=="):
        pieces = spec[1:].split("=")
        spec = "=" + pieces[0]  # drop the build string
    specifier = conda_to_pip_specifier(spec)
    return Requirement(
        name=match["name"].lower(),  # conda names are not PEP 503 names: keep '_' (e.g. _libgcc_mutex)
        manager="conda",
        specifier=specifier,
        raw=text,
        source=source,
        channel=match["channel"],
    )
