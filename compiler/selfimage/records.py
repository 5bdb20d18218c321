"""Layers of pkgc's own image remembered by the key of their inputs: ``<store>/layers/<name>.json``
holds the layer's blob descriptor (the store's environment layers keep theirs the same way)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from compiler.oci.layer import LayerBlob
from compiler.oci.store import OciStore

LIMIT = 1 << 16


def _path(store: OciStore, name: str) -> Path:
    return store.root / "layers" / f"{name}.json"


def read_record(store: OciStore, name: str) -> LayerBlob | None:
    """The remembered layer, or None when there is none, it is unreadable or its blob is gone."""
    try:
        with open(_path(store, name), "rb") as fh:
            data = fh.read(LIMIT + 1)
        blob = LayerBlob(**json.loads(data)) if len(data) <= LIMIT else None
    except (OSError, ValueError, TypeError):
        return None
    return blob if blob is not None and store.blobs.has(blob.digest) else None


def write_record(store: OciStore, name: str, blob: LayerBlob) -> None:
    path = _path(store, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(asdict(blob)))
    tmp.replace(path)
