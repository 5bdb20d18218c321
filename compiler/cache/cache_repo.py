"""``--cache REGISTRY/REPO`` (and ``cache = "..."`` in pkgc.toml): the shared build cache's repository,
parsed without importing the registry client (the options read it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from compiler.errors import SpecError, SpecProblem, excerpt

MODES = ("read", "readwrite")  # read: never writes to the cache (an untrusted build); readwrite: the default
USAGE = "expected REGISTRY/REPO, e.g. myregistry.azurecr.io/pkgc-cache or localhost:5000/cache"
HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")
COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class CacheRepo:
    registry: str
    repository: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


def cache_problem(text: str) -> str | None:
    """Why ``text`` is not a ``REGISTRY/REPO`` (no tag, no digest), or None."""
    value = text.removeprefix("docker://")
    registry, sep, repository = value.partition("/")
    if not sep or not repository or "@" in value or ":" in repository:
        return USAGE
    if not (("." in registry or ":" in registry or registry == "localhost") and HOST_RE.match(registry)):
        return f"'{excerpt(registry)}' is not a registry host; {USAGE}"
    if len(value) > 255 or not all(COMPONENT_RE.match(part) for part in repository.split("/")):
        return f"'{excerpt(repository)}' is not a valid repository (lower case, digits, '.', '_', '-', '/')"
    return None


def parse_cache(text: str, where: str = "--cache") -> CacheRepo:
    problem = cache_problem(text)
    if problem is not None:
        raise SpecError(SpecProblem(where, "", f"'{excerpt(text)}': {problem}"))
    registry, _, repository = text.removeprefix("docker://").partition("/")
    return CacheRepo(registry, repository)
