"""Which inference-server version a package gets: the supported range, the preferred pin, or the user's.

The server's requirements are a supported range (e.g. ``>=1.3,<2``) with a preferred pin (the version
pkgc tests). pip's resolver has no notion of "prefer", so the choice is made before the merge:

- no other source names the server package: the preferred pin is injected;
- a source names it (``azureml-inference-server-http==1.4.1``): the supported range is injected and
  merged with the user's constraint, so the user's pin wins inside the range and a pin outside it is
  a conflict whose message says which versions pkgc supports;
- a source names a package that brings the server (``azureml-defaults``): nothing is injected, that
  package's own pin on the server decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import Requirement as PepRequirement

from compiler.deps.specs import normalize, parse_pip
from compiler.deps.types import DepSet, MergedEnvironment, Requirement, Source
from compiler.servers.base import InferenceServer


@dataclass(frozen=True)
class ServerPackage:
    """One package the server needs: its supported range and the pin pkgc prefers."""

    name: str
    supported: str  # pip specifier, e.g. ">=1.3,<2"
    preferred: str | None  # an exact version, e.g. "1.5.1"


def server_packages(server: InferenceServer) -> list[ServerPackage]:
    preferred = {}
    for line in server.preferred:
        req = PepRequirement(line)
        preferred[normalize(req.name)] = next(iter(req.specifier)).version
    packages = []
    for line in server.requirements:
        req = PepRequirement(line)
        name = normalize(req.name)
        written = line.strip()[len(req.name) :].strip()  # as written: SpecifierSet would reorder it
        packages.append(ServerPackage(name, written, preferred.get(name)))
    return packages


def _supports(server: InferenceServer, package: ServerPackage) -> str:
    tested = f"; tested {package.preferred}" if package.preferred else ""
    return f"inference server '{server.type}' (pkgc supports {package.name}{package.supported}{tested})"


def _named(depsets: list[DepSet], names: set[str]) -> list[Requirement]:
    return [r for d in depsets for r in d.requirements if normalize(r.name) in names]


def server_depset(server: InferenceServer, others: list[DepSet]) -> DepSet:
    """The server's requirements, given every other source (see the module docstring)."""
    requirements: list[Requirement] = []
    brought = _named(others, {normalize(n) for n in server.brought_by})
    for package in server_packages(server):
        if _named(others, {package.name}):
            source = Source("server", _supports(server, package))
            requirements.append(parse_pip(f"{package.name}{package.supported}", source))
        elif brought:
            continue
        elif package.preferred:
            label = f"inference server '{server.type}' ({package.name}=={package.preferred}, the version pkgc tests)"
            requirements.append(parse_pip(f"{package.name}=={package.preferred}", Source("server", label)))
        else:
            requirements.append(parse_pip(f"{package.name}{package.supported}", Source("server", _supports(server, package))))
    label = f"inference server '{server.type}' ({', '.join(r.raw for r in requirements) or 'nothing injected'})"
    return DepSet(source=Source("server", label), requirements=tuple(requirements))


def describe_server(server: InferenceServer, merged: MergedEnvironment) -> str | None:
    """One line saying which server version the package gets and why (None: nothing is injected)."""
    lines = []
    for package in server_packages(server):
        dep = next((d for d in merged.pip + merged.conda if d.name == package.name), None)
        theirs = [r for r in dep.constraints if r.source.kind != "server"] if dep else []
        if theirs:
            asked = "; ".join(f"'{r.raw}' from {r.source}" for r in theirs)
            lines.append(
                f"{package.name}{dep.specifier}: your {asked} within the supported {package.supported}"
            )
        elif dep is None:
            brought = [d for d in merged.pip + merged.conda if d.name in {normalize(n) for n in server.brought_by}]
            if brought:
                by = ", ".join(f"{d.name}{d.specifier} ({'; '.join(d.sources)})" for d in brought)
                lines.append(
                    f"{package.name} as {by} pins it (pkgc supports {package.supported}; tested {package.preferred})"
                )
        else:
            lines.append(
                f"{package.name}{dep.specifier}, the version pkgc tests (a pin of your own within "
                f"{package.supported} wins)"
            )
    return "inference server: " + "; ".join(lines) if lines else None
