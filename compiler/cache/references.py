"""Which blobs of pkgc's OCI store something still names: the images and referrers its
``index.json`` names (every manifest, index, config and layer they reach), and its records (a cached
environment layer, a model image). Everything else in ``oci/blobs/sha256`` is garbage.

Every read is bounded; a manifest that is named but cannot be read makes the whole answer unknown
(``UnreadableStore``): nothing is removed on a guess."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

MAX_INDEX = 64 << 20  # index.json: one entry per tag
MAX_MANIFEST = 4 << 20
MAX_RECORD = 1 << 20
DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
RECORD_FOLDERS = {"layers": "digest", "model-images": "manifest"}  # record folder -> its key naming a blob


class UnreadableStore(Exception):
    """The store names something pkgc cannot read; the message says what."""


def read_json(path: Path, limit: int) -> object:
    """``path``'s JSON, read with no-follow from a regular file of at most ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not (info.st_mode & 0o170000 == 0o100000) or info.st_size > limit:
            raise ValueError(f"is not a regular file of at most {limit} bytes")
        return json.loads(fh.read(limit + 1))


def hex_digest(digest: object) -> str | None:
    match = DIGEST.match(digest) if isinstance(digest, str) else None
    return match.group(1) if match else None


def roots(store: Path) -> tuple[set[str], set[str]]:
    """(manifests to follow, other blobs) that the index and the records name, as hex digests."""
    manifests: set[str] = set()
    blobs: set[str] = set()
    index_path = store / "index.json"
    if index_path.exists():
        try:
            index = read_json(index_path, MAX_INDEX)
        except (OSError, ValueError) as exc:
            raise UnreadableStore(f"{index_path}: {exc}") from None
        for entry in index.get("manifests", []) if isinstance(index, dict) else []:
            if isinstance(entry, dict) and (hexdigest := hex_digest(entry.get("digest"))):
                manifests.add(hexdigest)
    for folder, key in RECORD_FOLDERS.items():
        try:
            names = [e.name for e in os.scandir(store / folder) if e.name.endswith(".json") and not e.name.startswith(".")]
        except OSError:
            continue
        for name in names:
            try:
                record = read_json(store / folder / name, MAX_RECORD)
            except (OSError, ValueError):
                continue  # a broken record reuses nothing (it is checked on use): it keeps nothing
            hexdigest = hex_digest(record.get(key)) if isinstance(record, dict) else None
            if hexdigest:
                (manifests if key == "manifest" else blobs).add(hexdigest)
    return manifests, blobs


def referenced_blobs(store: Path) -> set[str]:
    """Hex digests of every blob of ``store`` that the index or a record reaches."""
    pending, kept = roots(store)
    kept |= pending
    folder = store / "blobs" / "sha256"
    seen: set[str] = set()
    while pending:
        hexdigest = pending.pop()
        seen.add(hexdigest)
        path = folder / hexdigest
        if not path.exists():
            continue  # named but gone: nothing below it to keep
        try:
            document = read_json(path, MAX_MANIFEST)
        except (OSError, ValueError) as exc:
            raise UnreadableStore(f"{path}: named as a manifest but {exc}") from None
        if not isinstance(document, dict):
            raise UnreadableStore(f"{path}: named as a manifest but not a JSON object")
        for child in _children(document):
            kept.add(child)
        for child in _manifests(document):
            if child not in seen:
                pending.add(child)
    return kept


def _children(document: dict) -> set[str]:
    found = set()
    for key in ("config", "subject"):
        if isinstance(document.get(key), dict) and (hexdigest := hex_digest(document[key].get("digest"))):
            found.add(hexdigest)
    for key in ("layers", "manifests", "blobs"):
        for entry in document.get(key) or []:
            if isinstance(entry, dict) and (hexdigest := hex_digest(entry.get("digest"))):
                found.add(hexdigest)
    return found


def _manifests(document: dict) -> set[str]:
    """What ``document`` names that is itself a manifest or an index (followed further)."""
    found = set()
    for entry in document.get("manifests") or []:
        if isinstance(entry, dict) and (hexdigest := hex_digest(entry.get("digest"))):
            found.add(hexdigest)
    subject = document.get("subject")
    if isinstance(subject, dict) and (hexdigest := hex_digest(subject.get("digest"))):
        found.add(hexdigest)
    return found


def unnamed_bytes(store: Path) -> int | None:
    """The bytes of the store's blobs that nothing names (what ``pkgc cache prune`` frees there);
    None when the store names something it cannot read."""
    folder = store / "blobs" / "sha256"
    if not folder.is_dir():
        return 0
    try:
        kept = referenced_blobs(store)
    except UnreadableStore:
        return None
    total = 0
    for entry in os.scandir(folder):
        if DIGEST.match(f"sha256:{entry.name}") and entry.name not in kept and entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total
