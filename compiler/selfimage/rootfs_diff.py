"""The layer that turns one Debian rootfs into another: what a second bootstrap (the base's recipe
plus a few packages) adds or changes on top of the base image's layers, as layer entries.

Both trees are read as tar streams. An entry is kept when it is new or differs in kind, mode, owner,
link target or content (mtimes are not compared: pkgc's layers carry one fixed mtime); a path of the
base the new tree lacks becomes an OCI whiteout (``.wh.NAME``). A hard link becomes a copy of its
target's content; devices, FIFOs and sockets are not carried (a container runtime makes ``/dev``)."""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from compiler.oci.layer import Entry

CHUNK = 1 << 20
KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
         tarfile.LNKTYPE: "file", tarfile.CONTTYPE: "file"}  # fmt: skip


@dataclass(frozen=True)
class Fact:
    """What is compared of one path: kind, permission bits, owner, link target, content digest."""

    kind: str
    mode: int
    uid: int
    gid: int
    target: str = ""
    sha256: str = ""


def clean(name: str) -> str:
    """A member's path as an image path: no ``./`` prefix, no trailing ``/``; "" for the root."""
    name = name[2:] if name.startswith("./") else name
    return name.strip("/")


def _members(tar: tarfile.TarFile) -> Iterator[tuple[str, tarfile.TarInfo]]:
    for member in tar:
        path = clean(member.name)
        if path and member.type in KINDS and ".." not in path.split("/"):
            yield path, member


def _digest(stream: IO[bytes] | None, sink: IO[bytes] | None = None) -> str:
    digest = hashlib.sha256()
    while stream is not None and (block := stream.read(CHUNK)):
        digest.update(block)
        if sink is not None:
            sink.write(block)
    return digest.hexdigest()


def tree_facts(stream: IO[bytes]) -> dict[str, Fact]:
    """Every path of the tar read from ``stream`` with its facts (hard links: their target's content)."""
    facts: dict[str, Fact] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
        for path, member in _members(tar):
            if member.type == tarfile.LNKTYPE:
                linked = facts.get(clean(member.linkname))
                facts[path] = Fact("file", member.mode & 0o7777, member.uid, member.gid, "", linked.sha256 if linked else "")
            else:
                facts[path] = _fact(member, _digest(tar.extractfile(member)) if KINDS[member.type] == "file" else "")
    return facts


def _fact(member: tarfile.TarInfo, sha256: str) -> Fact:
    kind = KINDS[member.type]
    return Fact(kind, member.mode & 0o7777, member.uid, member.gid, member.linkname if kind == "symlink" else "", sha256)


def diff_entries(base: dict[str, Fact], stream: IO[bytes], staging: Path) -> list[Entry]:
    """The entries that make the tree ``base`` into the tar read from ``stream``. File contents are
    written under ``staging`` (one file each: the layer writer reads them from there; the caller
    removes the folder after writing the layer)."""
    entries: list[Entry] = []
    files: dict[str, tuple[Path, str]] = {}  # path -> (its copy, its sha256): what hard links point at
    seen: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
        for path, member in _members(tar):
            seen.add(path)
            source = None
            if member.type == tarfile.LNKTYPE:
                if clean(member.linkname) not in files:
                    continue  # a link to nothing this tree holds: not carried
                source, sha256 = files[clean(member.linkname)]
                fact = Fact("file", member.mode & 0o7777, member.uid, member.gid, "", sha256)
            elif KINDS[member.type] == "file":
                source = staging / f"{len(files):06d}"
                with open(source, "wb") as sink:
                    sha256 = _digest(tar.extractfile(member), sink)
                files[path] = (source, sha256)
                fact = _fact(member, sha256)
            else:
                fact = _fact(member, "")
            if base.get(path) != fact:
                entries.append(_entry(path, fact, source))
    return entries + parents(entries, base) + whiteouts(base, seen)


def parents(entries: list[Entry], base: dict[str, Fact]) -> list[Entry]:
    """The unchanged folders above changed entries, as the base has them (mode and owner), so the
    layer's parent entries do not replace them with the layer writer's default (root, 0755)."""
    have = {e.path for e in entries}
    needed = {"/".join(e.path.split("/")[:i]) for e in entries for i in range(1, e.path.count("/") + 1)}
    return [_entry(p, base[p], None) for p in sorted(needed - have) if p in base and base[p].kind == "dir"]


def _entry(path: str, fact: Fact, source: Path | None) -> Entry:
    if fact.kind == "dir":
        return Entry(path, "dir", fact.mode, uid=fact.uid, gid=fact.gid)
    if fact.kind == "symlink":
        return Entry(path, "symlink", 0o777, target=fact.target, uid=fact.uid, gid=fact.gid)
    return Entry(path, "file", fact.mode, source=source, uid=fact.uid, gid=fact.gid)


def whiteouts(base: dict[str, Fact], kept: Iterable[str]) -> list[Entry]:
    """``.wh.NAME`` entries for the base's paths the new tree lacks (one for a gone folder, not its content)."""
    kept = set(kept)
    gone = sorted(p for p in base if p not in kept)
    top = [p for p in gone if not any(p.startswith(g + "/") for g in gone if g != p and base[g].kind == "dir")]
    return [Entry(f"{p.rpartition('/')[0]}/.wh.{p.rpartition('/')[2]}".lstrip("/"), "file", 0o644, data=b"") for p in top]
