"""The workspace on disk: versioned JSON records, content-addressed trees and blobs, atomic writes.

Layout::

    <root>/models/<name>/<version>.json        ModelRecord
    <root>/environments/<name>/<version>.json  EnvironmentRecord (base environments and packages)
    <root>/trees/<sha256>/<root name>           model files, read-only: hard links to
    <root>/files/<sha256>[.x]                   each file content once, whatever trees hold it
    <root>/blobs/<sha256>                       conda files, lock files
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import re
from pathlib import Path
from typing import Iterator, TypeVar

from pydantic import BaseModel

from compiler.errors import ResolveError, excerpt
from compiler.spec.values import ASSET_NAME
from compiler.workspace import reservations
from compiler.workspace.digest_cache import DigestCache
from compiler.workspace.records import EnvironmentRecord, ModelRecord
from compiler.workspace.trees import store_blob, store_tree, write_file_atomic

R = TypeVar("R", bound=BaseModel)
VERSION_PATTERN = ASSET_NAME  # one rule for names and versions, in specs and here
TREE_ID = re.compile(r"^[0-9a-f]{64}$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _version_key(version: str) -> tuple[int, int | str]:
    return (1, int(version)) if version.isdigit() else (0, version)


class Workspace:
    """A local stand-in for an Azure ML workspace, rooted at one folder."""

    def __init__(self, root: Path, digests: DigestCache | None = None):
        self.root = Path(root)
        self.digests = digests  # remembered file digests (pkgc's cache): an unchanged large file is read once

    @classmethod
    def with_digests(cls, root: Path, cache_dir: Path) -> Workspace:
        """The workspace at ``root``, remembering file digests in pkgc's cache ``cache_dir``."""
        return cls(root, DigestCache.in_cache(cache_dir))

    # -- low level --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write_record(self, path: Path, record: BaseModel) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(path, (record.model_dump_json(indent=2) + "\n").encode("utf-8"))

    def _versions(self, kind: str, name: str) -> list[str]:
        folder = self.root / kind / name
        if not folder.is_dir():
            return []
        return sorted((p.stem for p in folder.glob("*.json")), key=_version_key)

    def _next_version(self, kind: str, name: str) -> str:
        taken = self._versions(kind, name) + reservations.reserved_versions(self.root / kind / name)
        return str(max((int(v) for v in taken if v.isdigit()), default=0) + 1)

    def _read(self, kind: str, name: str, version: str, cls: type[R]) -> R | None:
        path = self.root / kind / name / f"{version}.json"
        if not path.is_file():
            return None
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def _resolve(self, kind: str, name: str, version: str | None, label: str | None, cls: type[R]) -> R:
        singular = kind[:-1]
        if label is not None and label != "latest":
            raise ResolveError(f"{singular} label '@{label}' is not supported: use @latest or :VERSION")
        if not VERSION_PATTERN.match(name) or (version is not None and not VERSION_PATTERN.match(version)):
            raise ResolveError(f"'{excerpt(name)}:{excerpt(version or '')}' is not a valid {singular} name and version")
        versions = self._versions(kind, name)
        if not versions:
            raise ResolveError(f"{singular} '{name}' is not registered in workspace {self.root}")
        wanted = versions[-1] if version is None else version
        record = self._read(kind, name, wanted, cls)
        if record is None:
            raise ResolveError(
                f"{singular} '{name}' has no version {wanted} in workspace {self.root} (has {', '.join(versions)})"
            )
        return record

    def _check_new(self, kind: str, name: str, version: str | None) -> None:
        if not VERSION_PATTERN.match(name):
            raise ResolveError(f"invalid {kind[:-1]} name '{excerpt(name)}'")
        if version is not None:
            if not VERSION_PATTERN.match(version):
                raise ResolveError(f"invalid version '{excerpt(version)}'")
            if (self.root / kind / name / f"{version}.json").exists():
                raise ResolveError(f"{kind[:-1]} {name}:{version} already exists; versions are immutable")

    # -- paths ------------------------------------------------------------------------------
    def tree_path(self, digest: str) -> Path:
        return self.root / "trees" / digest

    def stored_tree(self, digest: str) -> Path | None:
        """The stored tree ``digest`` (64 hex digits), or None: never a path outside ``trees/``."""
        if not TREE_ID.match(digest):
            return None
        path = self.tree_path(digest)
        return path if path.is_dir() and not path.is_symlink() else None

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest

    def store_tree(self, source: Path) -> str:
        return store_tree(source, self.root / "trees", self.digests)

    def store_blob(self, data: bytes) -> str:
        return store_blob(data, self.root / "blobs")

    # -- models -----------------------------------------------------------------------------
    def create_model(
        self, name: str, path: Path, type_: str = "custom_model", version: str | None = None, description: str = "",
        properties: dict[str, str] | None = None, source: Path | None = None,
    ) -> ModelRecord:
        """Register the file or folder ``path`` as a new version of model ``name`` (``source``: where it
        came from, when ``path`` is an unpacked archive)."""
        if not path.exists():
            raise ResolveError(f"model path {excerpt(str(path))} does not exist")
        self._check_new("models", name, version)
        digest = self.store_tree(path)
        with self._locked():
            self._check_new("models", name, version)
            record = ModelRecord(
                name=name,
                version=version or self._next_version("models", name),
                type=type_,
                tree=digest,
                root_name=path.name,
                description=description,
                source=str((source or path).resolve()),
                properties=dict(properties or {}),
                created=_now(),
            )
            self._write_record(self.root / "models" / name / f"{record.version}.json", record)
        return record

    def version_for_tree(self, name: str, digest: str, root_name: str, type_: str, source: Path) -> str:
        """The version of model ``name`` holding the stored tree ``digest``: the one that already does,
        else a new version registered now, as Azure ML registers a deployment's inline model (so two
        different trees never share a version)."""
        self._check_new("models", name, None)
        with self._locked():
            for version in self._versions("models", name):
                record = self._read("models", name, version, ModelRecord)
                if record is not None and record.tree == digest and record.root_name == root_name:
                    return version
            record = ModelRecord(
                name=name, version=self._next_version("models", name), type=type_, tree=digest, root_name=root_name,
                description="registered by pkgc from a spec's or deployment's inline model", source=str(source),
                properties={}, created=_now(),
            )  # fmt: skip
            self._write_record(self.root / "models" / name / f"{record.version}.json", record)
        return record.version

    def get_model(self, name: str, version: str | None = None, label: str | None = None) -> ModelRecord:
        return self._resolve("models", name, version, label, ModelRecord)

    def list_models(self) -> list[ModelRecord]:
        return [r for r in self._list("models", ModelRecord)]

    # -- environments ---------------------------------------------------------------------------
    def create_environment(self, record: EnvironmentRecord, explicit_version: bool) -> EnvironmentRecord:
        """Store ``record``; without an explicit version it gets the next one."""
        self._check_new("environments", record.name, record.version if explicit_version else None)
        with self._locked():
            version = record.version if explicit_version else self._next_version("environments", record.name)
            self._check_new("environments", record.name, version)
            folder = self.root / "environments" / record.name
            if version in reservations.reserved_versions(folder) and not reservations.held_here(folder, version):
                raise ResolveError(f"environment {record.name}:{version} is being built by another pkgc process")
            record = record.model_copy(update={"version": version, "created": _now()})
            self._write_record(folder / f"{version}.json", record)
            reservations.release(folder, version)
        return record

    def reserve_environment_version(self, name: str, version: str | None) -> str:
        """Take ``version`` (or the next free one) of environment ``name`` for a build in progress.

        One writer wins: a version another build holds or a recorded version is an error."""
        self._check_new("environments", name, version)
        folder = self.root / "environments" / name
        with self._locked():
            wanted = version or self._next_version("environments", name)
            self._check_new("environments", name, wanted)
            if wanted in reservations.reserved_versions(folder) or not reservations.reserve(folder, wanted):
                raise ResolveError(f"environment {name}:{wanted} is being built by another pkgc process")
        return wanted

    def release_environment_version(self, name: str, version: str) -> None:
        """Give back a reservation (the build failed, or its record now exists)."""
        reservations.release(self.root / "environments" / name, version)

    def get_environment(self, name: str, version: str | None = None, label: str | None = None) -> EnvironmentRecord:
        return self._resolve("environments", name, version, label, EnvironmentRecord)

    def list_environments(self) -> list[EnvironmentRecord]:
        return [r for r in self._list("environments", EnvironmentRecord)]

    def _list(self, kind: str, cls: type[R]) -> Iterator[R]:
        folder = self.root / kind
        if not folder.is_dir():
            return
        for name_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for version in self._versions(kind, name_dir.name):
                record = self._read(kind, name_dir.name, version, cls)
                if record is not None:
                    yield record
