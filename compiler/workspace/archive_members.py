"""What a model archive may hold, decided from its member headers alone (no I/O).

``MemberTable`` records everything the archive has made so far (folders, files, links) and is the
only truth about the tree being unpacked: pkgc never asks the filesystem where a name leads.

- A member whose name passes through a link or a file of the archive is refused: pkgc never
  follows a link the archive made (the CVE-2025-4517 class: names and link targets that are inside
  the tree lexically but not once the links are followed).
- A symbolic link is kept only when its target, resolved against the table the way the kernel would
  resolve it (each link followed, ``..`` taken after it), ends at a file or folder of the archive,
  inside the tree, that is not a folder holding the link itself.
- A hard link only to a regular file made before it; a member name only once (folders may repeat).

What the links add up to (loops through several folder links, content repeated) is ``archive_links``.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass, field
from enum import Enum

from compiler.errors import excerpt
from compiler.spec.values import CONTROL

MAX_NAME_BYTES = 4096
MAX_PART_BYTES = 255  # one name component, as Linux file systems allow
MAX_LINK_HOPS = 40  # links followed while resolving one target (Linux's own limit)
MAX_RESOLVE_STEPS = 2_000_000  # name steps taken resolving all the links of one archive


class MemberProblem(Exception):
    """Why one member is refused; the caller names the archive and the member."""


class Kind(Enum):
    DIR = "folder"
    FILE = "file"
    LINK = "link"


@dataclass(frozen=True)
class Planned:
    """One checked member: where it goes, what it is, and for a hard link the file it repeats."""

    path: str  # normalised, relative, '' for the archive's root folder
    kind: Kind
    new_folders: tuple[str, ...] = ()  # folders to make first, outermost first (the member's own when a new folder)
    hard_source: str | None = None


def _check_text(text: str, what: str) -> None:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise MemberProblem(f"has a {what} that is not valid UTF-8") from None
    if len(raw) > MAX_NAME_BYTES:
        raise MemberProblem(f"has a {what} longer than {MAX_NAME_BYTES} bytes")
    if CONTROL.search(text):
        raise MemberProblem(f"has control characters in its {what}")


def member_path(name: str, what: str = "name") -> str:
    """``name`` normalised ('./a//b/' -> 'a/b'); relative, no '..', no control characters."""
    _check_text(name, what)
    if name.startswith("/"):
        raise MemberProblem(f"has an absolute {what}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise MemberProblem("leaves the archive's tree ('..')" if what == "name" else f"has '..' in its {what}")
    if any(len(part) * 4 > MAX_PART_BYTES and len(part.encode()) > MAX_PART_BYTES for part in parts):
        raise MemberProblem(f"has a {what} with a part longer than {MAX_PART_BYTES} bytes")
    return "/".join(parts)


def member_kind(member: tarfile.TarInfo) -> Kind:
    """Folders, regular files and links; devices, FIFOs, sparse and unknown types are refused."""
    if member.isdir():
        return Kind.DIR
    if member.issym() or member.islnk():
        return Kind.LINK
    if member.isfile() and not member.issparse():
        return Kind.FILE
    what = "a sparse file" if member.issparse() else "a device, FIFO or other special file"
    raise MemberProblem(f"is {what} (only files, folders and links inside the tree)")


def _outside(target: str) -> MemberProblem:
    return MemberProblem(f"is a link to '{excerpt(target, 60)}', outside the archive's tree")


@dataclass
class MemberTable:
    """Every path the archive has made, with its kind; symbolic links with their targets."""

    kinds: dict[str, Kind] = field(default_factory=lambda: {"": Kind.DIR})
    links: dict[str, str] = field(default_factory=dict)  # symbolic link path -> target as written
    sizes: dict[str, int] = field(default_factory=dict)  # file path (hard links too) -> bytes
    steps: int = 0  # resolution steps taken so far (MAX_RESOLVE_STEPS)
    name_bytes: int = 0  # the characters of every path and link target held

    def add(self, member: tarfile.TarInfo) -> Planned:
        """Check ``member`` against what came before it and record it; raise MemberProblem."""
        path = member_path(member.name)
        kind = member_kind(member)
        if not path and kind is not Kind.DIR:
            raise MemberProblem("names the archive's root folder, not a file")
        missing = self._parents(path)
        existing = self.kinds.get(path)
        if existing is not None and not (existing is Kind.DIR and kind is Kind.DIR):
            raise MemberProblem(f"appears twice in the archive (as a {existing.value} before)")
        hard_source = None
        if member.islnk():
            hard_source = self._hard_source(member.linkname)
            kind = Kind.FILE
        elif member.issym():
            self._check_symlink_text(path, member.linkname)
            self.links[path] = member.linkname
        if kind is Kind.DIR and existing is None:
            missing.append(path)
        for folder in missing:
            self.kinds[folder] = Kind.DIR
            self.name_bytes += len(folder)
        if existing is None:
            self.name_bytes += len(path) + len(self.links.get(path, ""))
        self.kinds[path] = kind
        if kind is Kind.FILE:
            self.sizes[path] = self.sizes[hard_source] if hard_source else max(member.size, 0)
        return Planned(path, kind, tuple(missing), hard_source)

    def _parents(self, path: str) -> list[str]:
        """The folders above ``path`` the archive has not made yet, outermost first; refuse a parent that
        is a link or a file. Upwards to the first known folder: every folder's own parents are known."""
        missing = []
        parent = path.rpartition("/")[0]
        while parent:
            kind = self.kinds.get(parent)
            if kind is Kind.DIR:
                break
            if kind is Kind.LINK:
                raise MemberProblem(
                    f"lies under '{excerpt(parent, 60)}', a link in the archive (pkgc follows no link while unpacking)"
                )
            if kind is Kind.FILE:
                raise MemberProblem(f"lies under '{excerpt(parent, 60)}', a file in the archive")
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        missing.reverse()
        return missing

    def _hard_source(self, target: str) -> str:
        if not target or target.startswith("/"):
            raise _outside(target)
        try:
            source = member_path(target, "link target")
        except MemberProblem as exc:
            raise _outside(target) if "'..'" in str(exc) else exc from None
        if self.kinds.get(source) is not Kind.FILE:
            raise MemberProblem(f"is a hard link to '{excerpt(target, 60)}', which is not a file unpacked before it")
        return source

    @staticmethod
    def _check_symlink_text(path: str, target: str) -> None:
        if not target:
            raise MemberProblem("is a link with no target")
        _check_text(target, "link target")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise _outside(target)

    def resolve(self, path: str) -> str:
        """Where the link ``path`` leads, following the archive's links; refused when outside, dangling or a loop."""
        parent = path.rpartition("/")[0]
        target = self.links[path]
        end = self._follow(parent, target, target, [0])
        if self.kinds.get(end) is Kind.DIR and (end == "" or parent == end or parent.startswith(end + "/")):
            raise MemberProblem(f"is a link to '{excerpt(target, 60)}', a folder that holds it (a loop)")
        return end

    def _follow(self, here: str, target: str, shown: str, hops: list[int]) -> str:
        """``target`` read from the folder ``here``, as the kernel would: each link followed, '..' after it."""
        if target.startswith("/"):
            raise _outside(shown)
        steps = [step for step in target.split("/") if step not in ("", ".")]
        for i, step in enumerate(steps):
            self.steps += 1
            if self.steps > MAX_RESOLVE_STEPS:
                raise MemberProblem(f"is a link too many to resolve (over {MAX_RESOLVE_STEPS} steps for all links)")
            if step == "..":
                if not here:
                    raise _outside(shown)
                here = here.rpartition("/")[0]
                continue
            here = f"{here}/{step}" if here else step
            kind = self.kinds.get(here)
            if kind is Kind.LINK:
                hops[0] += 1
                if hops[0] > MAX_LINK_HOPS:
                    raise MemberProblem(f"is a link to '{excerpt(shown, 60)}', a loop of links")
                here = self._follow(here.rpartition("/")[0], self.links[here], shown, hops)
            elif kind is None or (kind is Kind.FILE and i < len(steps) - 1):
                raise MemberProblem(f"is a link to '{excerpt(shown, 60)}', which is not in the archive (dangling)")
        if self.kinds.get(here) is Kind.FILE and (target.endswith("/") or target.rsplit("/", 1)[-1] in (".", "..")):
            raise MemberProblem(f"is a link to '{excerpt(shown, 60)}', which is not in the archive (dangling)")
        return here

    def top_folder(self) -> str | None:
        """The archive's one top folder, when every other path lies in it."""
        tops = {path.split("/", 1)[0] for path in self.kinds if path}
        if len(tops) != 1:
            return None
        top = tops.pop()
        return top if self.kinds[top] is Kind.DIR else None


class LinkRefused(Exception):
    """A symbolic link refused once the whole archive is known: its path and why."""

    def __init__(self, path: str, problem: MemberProblem):
        super().__init__(path, str(problem))
        self.path, self.problem = path, problem
