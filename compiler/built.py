"""What a back end built, the same for both: the image, its ids and tags, and how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BuiltImage:
    """``build(plan, backend)``'s result. The image is content-addressed: ``content_tag`` names it by
    its content (the OCI manifest digest, or the hash of the Docker build context and base)."""

    builder: Literal["oci", "docker"]
    image: str  # the plan's tag
    image_id: str  # the engine's id, or the config digest when no engine holds it
    content_tag: str
    content_hash: str
    reused: bool  # nothing was built: the engine already held this exact image
    size: int
    seconds: float
    manifest_digest: str | None = None  # the OCI back end's image in pkgc's store
    loaded: bool = True  # the engine holds it (the OCI back end with no engine: False)
    layers: tuple[dict, ...] = ()  # the OCI back end's layers on the base: kind, why, digest, size
    platforms: tuple[dict, ...] = ()  # an image index: each platform's manifest digest and layers
