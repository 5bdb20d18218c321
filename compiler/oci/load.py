"""Load an OCI-built image into the Docker engine (``docker load`` of a docker-archive written from
the store's blobs); the engine's image id is then the config digest.

Layers whose chain the engine already holds (the base, an earlier build's environment) are named
in the archive but not sent, so a model-only rebuild sends only its small layers."""

from __future__ import annotations

import time
from typing import Callable

from compiler.engines.base import Engine
from compiler.errors import BuildError
from compiler.oci.archive_stream import StreamedArchive
from compiler.oci.outputs import StoredImage, write_docker_archive
from compiler.oci.store import NAMED_AT, REF_NAME, OciStore


def _held_prefix(diff_ids: list[str], candidates: list[tuple[str, ...]]) -> set[str]:
    """The longest prefix of ``diff_ids`` that one of the engine's images has as its own prefix."""
    best = 0
    for layers in candidates:
        n = 0
        while n < min(len(layers), len(diff_ids)) and layers[n] == diff_ids[n]:
            n += 1
        best = max(best, n)
    return set(diff_ids[:best])


def _engine_layers(engine: Engine, refs: list[str]) -> list[tuple[str, ...]]:
    """Layer lists of the engine's images named ``refs`` and of the other tags of their repositories."""
    found, seen = [], set()  # seen: image ids already inspected (a ref's own image is also in its repository)
    listing = getattr(engine, "image_ids", None)  # a Docker engine's
    for ref in refs:
        if ref.startswith(("oci:", "oci-archive:")):
            continue  # not an engine reference
        info = engine.image_info(ref)
        if info is not None:
            found.append(info.layers)
            seen.add(info.id)
        if listing is not None:
            repository = ref.rpartition(":")[0] or ref
            for image_id in listing(repository)[:8]:
                if image_id in seen:
                    continue
                seen.add(image_id)
                other = engine.image_info(image_id)
                if other is not None:
                    found.append(other.layers)
    return found


def _stored_configs(store: OciStore, repository: str, newest: int = 8) -> list[str]:
    """Config digests of the images pkgc's store last named in ``repository`` (newest first; an image
    index gives each of its images): earlier builds of the same package, which the engine may hold."""
    named = [m for m in store.entries() if ((m.get("annotations") or {}).get(REF_NAME) or "").startswith(f"{repository}:")]
    named.sort(key=_recency, reverse=True)
    configs, manifests = [], []
    for entry in named:
        if entry["digest"] not in manifests and len(manifests) < newest:
            manifests.append(entry["digest"])
    for digest in manifests:
        try:
            document = store.read_json(digest)
            children = [m["digest"] for m in document.get("manifests", [])] if "manifests" in document else [digest]
            for child in children:
                config = (store.read_json(child) if child != digest else document).get("config", {}).get("digest")
                if isinstance(config, str) and config not in configs:
                    configs.append(config)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, BuildError):
            continue  # a blob pruned or unreadable: not a candidate
    return configs


def _recency(entry: dict) -> tuple[int, int]:
    """When the store named it (seconds), then its version tag (``repo:7``): newest first when sorted down."""
    annotations = entry.get("annotations") or {}
    tag = str(annotations.get(REF_NAME) or "").rpartition(":")[2]
    try:
        named_at = int(annotations.get(NAMED_AT) or 0)
    except (TypeError, ValueError):
        named_at = 0
    return named_at, int(tag) if tag.isdigit() and len(tag) < 19 else -1


def _held(engine: Engine, store: OciStore, image: StoredImage, diff_ids: list[str], base_ref: str, tag: str) -> set[str]:
    """The longest prefix of ``diff_ids`` the engine holds. The base and the earlier builds pkgc's store
    named in the package's repository are asked first (one inspect each); only when none of those
    holds more than the base are the engine's images of both repositories listed (a list costs the
    engine 0.05-0.3 s with a few hundred images)."""
    repository = tag.rpartition(":")[0] or tag
    base = engine.image_info(base_ref) if not base_ref.startswith(("oci:", "oci-archive:")) else None
    base_prefix = _held_prefix(diff_ids, [base.layers] if base is not None else [])
    candidates = []
    for config in _stored_configs(store, repository):
        if config != image.config_digest and (info := engine.image_info(config)) is not None:
            candidates.append(info.layers)
    prefix = _held_prefix(diff_ids, candidates)
    if len(prefix) > len(base_prefix):
        return prefix
    return _held_prefix(diff_ids, _engine_layers(engine, [base_ref, tag]))


def load_into_engine(
    engine: Engine, store: OciStore, image: StoredImage, tags: list[str], base_ref: str, log=lambda _msg: None,
    progress: Callable[[int, int], None] = lambda _sent, _size: None,
) -> str:
    """Load ``image`` tagged ``tags``; return the engine's image id. The archive is streamed as it is
    written (``compiler.oci.archive_stream``); ``progress`` hears its bytes sent so far, and about its size."""
    existing = engine.image_info(image.config_digest)
    if existing is not None:
        log(f"the engine already holds {image.config_digest[:19]}: tagged only")
    else:
        started = time.monotonic()
        diff_ids = store.read_json(image.config_digest)["rootfs"]["diff_ids"]
        skip = _held(engine, store, image, diff_ids, base_ref, tags[0])
        load = getattr(engine, "load_archive", None)
        if load is None:
            raise BuildError(f"loading an OCI-built image needs a Docker engine, not {engine.name}")
        total = sum(store.blobs.path(d).stat().st_size for d, diff_id in zip(image.layer_digests, diff_ids) if diff_id not in skip)
        with StreamedArchive(lambda out: write_docker_archive(store, image, tags, out, skip), total, progress) as body:
            try:
                for message in load(body, None):
                    if "error" in message:
                        raise BuildError(f"the engine refused the image: {message['error']}")
            except BuildError:
                raise
            except Exception as exc:  # SDK APIError and friends: one line
                raise BuildError(f"the engine refused the image: {getattr(exc, 'explanation', None) or exc}") from None
        sent = len(image.layer_digests) - len(skip)
        log(f"loaded into the engine in {time.monotonic() - started:.1f} s ({sent} of {len(image.layer_digests)} layers sent)")
    for tag in tags:
        engine.tag(image.config_digest, tag)
    info = engine.image_info(image.config_digest)
    if info is None:
        raise BuildError(f"the engine reports no image {image.config_digest} after loading it")
    return info.id
