"""Registry references pkgc pushes to: ``REGISTRY/REPO[:TAG]`` parsed and checked (``--push``,
``--model-push``, ``pkgc attestations verify``), and what a push reports. Loopback registries
(``localhost``, ``127.0.0.0/8``, ``[::1]``) may speak plain HTTP; every other is TLS-verified."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from compiler.errors import TargetSyntaxError

TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
USAGE = "expected REGISTRY/REPO[:TAG], e.g. myregistry.azurecr.io/models/sklearn:1 or localhost:5000/sklearn"
HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")
COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def is_loopback(registry: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``[::1]`` (with or without a port): may speak plain HTTP."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PushTarget:
    """A registry repository to push to; ``tag`` defaults to the image's tag."""

    registry: str
    repository: str
    tag: str | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.registry)

    def reference(self, tag: str) -> str:
        return f"{self.registry}/{self.repository}:{tag}"


@dataclass(frozen=True)
class PushResult:
    """A pushed image: the tag reference and the manifest digest the registry now serves."""

    reference: str
    digest: str
    tls_verify: bool
    seconds: float

    @property
    def repository(self) -> str:
        """``REGISTRY/REPO``, without the tag."""
        return self.reference.rpartition(":")[0]

    @property
    def pinned(self) -> str:
        """``REGISTRY/REPO@sha256:...``: the reference that never moves."""
        return f"{self.reference.rpartition(':')[0]}@{self.digest}"

    def as_dict(self) -> dict:
        return {"reference": self.reference, "digest": self.digest, "pinned": self.pinned,
                "tls_verify": self.tls_verify, "seconds": round(self.seconds, 2)}  # fmt: skip


def parse_push(text: str) -> PushTarget:
    """Parse ``--push``; the first component must name a registry (it has a '.', a ':' or is localhost)."""
    value = text.removeprefix("docker://")
    if "@" in value:
        raise TargetSyntaxError(f"--push '{text}': push to a tag, not a digest; {USAGE}")
    registry, sep, rest = value.partition("/")
    if not sep or not rest:
        raise TargetSyntaxError(f"--push '{text}': needs both a registry and a repository; {USAGE}")
    if not (("." in registry or ":" in registry or registry == "localhost") and HOST_RE.match(registry)):
        raise TargetSyntaxError(f"--push '{text}': '{registry}' is not a registry host; {USAGE}")
    repository, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = rest.rpartition(":")
        if not TAG_RE.match(tag):
            raise TargetSyntaxError(f"--push '{text}': '{tag}' is not a valid tag; {USAGE}")
    if not all(COMPONENT_RE.match(part) for part in repository.split("/")):
        raise TargetSyntaxError(f"--push '{text}': '{repository}' is not a valid repository (lower case, digits, '.', '_', '-', '/')")
    return PushTarget(registry, repository, tag)
