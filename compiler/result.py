"""The typed result of ``pkgc build``: what ``--json`` prints (and the human line names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any




@dataclass(frozen=True)
class BuildResult:
    """One build: the image, the package it holds, the lock it was built from, and how it went."""

    image: str
    image_id: str
    mode: str
    model: str
    model_dir: str
    environment_strategy: str
    environment_reason: str
    python: str
    lock_file: str
    lock_status: str
    target_environment: str
    port: int | None
    content_tag: str
    content_hash: str
    sbom_digest: str | None
    reused: bool
    size_bytes: int
    build_seconds: float
    builder: str
    slim: bool  # --slim: installers and packages' test folders left out
    bytecode: bool  # byte-code shipped
    base_digest: str | None
    manifest_digest: str | None = None  # the OCI back end's image in pkgc's store
    loaded: bool = True
    deployment: dict[str, Any] | None = None
    model_image: dict[str, Any] | None = None  # readonly_mount: the model image in pkgc's store (compiler.backends.oci.model_image)
    layers: tuple[dict[str, Any], ...] = ()  # the OCI back end's layers on the base (kind, why, digest, size)
    platforms: tuple[dict[str, Any], ...] = ()  # an image index: each platform's manifest digest and layers

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the OCI back end adds its manifest digest, whether the engine holds
        the image and its layers; a deployment input adds what it said; an image index (several
        platforms) lists each platform's image (``manifest_digest`` is then the index's)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("manifest_digest", "loaded", "layers"):
            if self.builder != "oci":
                del data[name]
        for name in ("deployment", "model_image"):
            if data[name] is None:
                del data[name]
        if not self.platforms:
            del data["platforms"]
        return data
