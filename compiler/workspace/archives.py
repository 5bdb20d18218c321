"""Model archives unpacked when a model is registered (Azure ML's ``azureml.unpack`` property).

Seed 000: models of more than ~1500 files are registered as a ``.tar.gz`` with ``azureml.unpack``
set; the package then sees the unpacked tree. An archive is untrusted input and pkgc unpacks it
itself, the same on every interpreter (tarfile's extraction and its filters are not used):

- the archive is read once, as a stream; each member is checked against everything before it
  (``archive_members``: names, types, links) and written below a staging folder with no link
  followed (``archive_writer``); symbolic links are made last, once the whole archive shows that
  each one ends inside the tree;
- at most ``max_files`` members, and as many files, folders and links (the folders a member's name
  implies count too: one member may not make 2 000 folders), whose names and link targets take at
  most ``max_name_bytes`` (the table of them is in memory);
- links count: a hard link, or a symbolic link to a file or folder, is stored as a copy of what it
  leads to, so that content counts against ``max_bytes`` again, and the files and folders a folder
  link repeats against the store's bound on one tree (``walk.MAX_ENTRIES``; ``archive_links``);
- every read is bounded (``archive_reader``: decompression by blocks, extended headers and sparse
  maps refused before tarfile reads them whole); at most ``max_bytes`` of content, as declared by
  each header before its data is read and as written;
- any refusal is one line naming the archive and the member, and the staging folder is removed
  (``unpack_staging``: also when a killed unpack left it, by the next unpack).

Where the tree lands: an archive holding one top folder is that folder (``models.tar.gz`` with
``models/...`` gives ``AZUREML_MODEL_DIR/models/...``); otherwise its members go into a folder named
after the archive (``m.tar.gz`` -> ``m/``), or ``model/`` when that name could not be a folder name
(``...tar.gz``, ``.tar.gz``). Either way the unpack target is a folder of pkgc's own in the staging
folder, never a name taken from the archive.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import ResolveError, excerpt
from compiler.spec.values import CONTROL
from compiler.workspace.archive_links import link_contents
from compiler.workspace.archive_reader import Oversized, Unreadable, members, tar_stream
from compiler.workspace.archive_members import MAX_PART_BYTES, Kind, LinkRefused, MemberProblem, MemberTable
from compiler.workspace.archive_writer import TreeWriter
from compiler.workspace.unpack_staging import staging_folder
from compiler.workspace.walk import MAX_ENTRIES

UNPACK_PROPERTY = "azureml.unpack"
TRUE_VALUES, FALSE_VALUES = ("true", "1", "yes"), ("false", "0", "no")
SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar")
FALLBACK_FOLDER = "model"  # the tree's name when the archive's own stem cannot be one ('...tar.gz')
STAGED = "tree"  # the folder every archive is unpacked into, inside pkgc's staging folder


class ArchiveError(ResolveError):
    """An archive that cannot be unpacked safely."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 100_000
    max_bytes: int = 20 * 1024**3  # content: declared by the headers, and counted as written
    max_name_bytes: int = 64 * 1024**2  # the names pkgc keeps in memory: paths made and link targets


def wants_unpack(properties: Mapping[str, str]) -> bool:
    """True when ``azureml.unpack`` is set to a true value; any other value than true/false is refused."""
    value = properties.get(UNPACK_PROPERTY)
    if value is None:
        return False
    text = str(value).strip().lower()
    if text not in TRUE_VALUES + FALSE_VALUES:
        raise ArchiveError(f"property {UNPACK_PROPERTY}={excerpt(str(value), 40)!r} must be true or false")
    return text in TRUE_VALUES


def archive_suffix(path: Path) -> str | None:
    """The archive suffix ``path``'s name ends with ('.tar.gz', ...), None when it is not named like an archive."""
    name = path.name.lower()
    return next((suffix for suffix in SUFFIXES if name.endswith(suffix)), None)


def tree_name(path: Path) -> str:
    """The folder name for an archive without one top folder: its stem when that is a plain name, else 'model'."""
    suffix = archive_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else ""
    plain = stem not in ("", ".", "..") and "/" not in stem and not CONTROL.search(stem)
    try:
        plain = plain and len(stem.encode("utf-8")) <= MAX_PART_BYTES
    except UnicodeEncodeError:
        plain = False
    return stem if plain else FALLBACK_FOLDER


class _Budget:
    """Members and bytes left before the limits; each overrun names the member that crossed it."""

    def __init__(self, limits: ArchiveLimits):
        self.limits, self.files, self.declared, self.written = limits, 0, 0, 0

    def member(self, member: tarfile.TarInfo) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise MemberProblem(f"is one more than {self.limits.max_files} members (the limit)")
        self.declared += max(member.size, 0) if member.isfile() else 0
        if self.declared > self.limits.max_bytes:
            raise MemberProblem(f"makes the archive unpack to more than {self.limits.max_bytes} bytes (the limit)")

    def entries(self, table: MemberTable) -> None:
        """Files, folders and links made so far (folders a name implies count too), and their names' bytes."""
        if len(table.kinds) - 1 > self.limits.max_files:
            raise MemberProblem(f"makes more than {self.limits.max_files} files, folders and links (the limit)")
        if table.name_bytes > self.limits.max_name_bytes:
            limit = self.limits.max_name_bytes
            raise MemberProblem(f"makes the archive's names and link targets more than {limit} bytes (the limit)")

    def write(self, size: int) -> None:
        self.written += size
        if self.written > self.limits.max_bytes:
            raise MemberProblem(f"makes the archive unpack to more than {self.limits.max_bytes} bytes (the limit)")


def _unpack_into(archive: Path, root: Path, limits: ArchiveLimits) -> MemberTable:
    """Unpack ``archive`` below the empty folder ``root``; raise ArchiveError naming the first bad member."""
    shown = excerpt(str(archive))
    table, budget = MemberTable(), _Budget(limits)
    name = last = None  # the member being unpacked; the last one unpacked (a bad header comes after it)
    try:
        with tar_stream(archive) as tar, TreeWriter(str(root)) as writer:
            for member in members(tar):
                name = member.name
                budget.member(member)
                planned = table.add(member)
                budget.entries(table)
                writer.folders(planned.new_folders)
                if planned.hard_source is not None:
                    budget.write(table.sizes[planned.path])  # stored as a second copy
                    writer.hard_link(planned.path, planned.hard_source)
                elif planned.kind is Kind.FILE:
                    source = tar.extractfile(member)
                    written = writer.file(planned.path, source, bool(member.mode & 0o100), budget.write)
                    if written != member.size:
                        raise MemberProblem(f"holds {written} bytes, not the {member.size} its header declares")
                name, last = None, member.name
            expanded = len(table.kinds) - 1
            for repeated in link_contents(table, max(limits.max_bytes, MAX_ENTRIES)):  # stored as what they lead to
                name = repeated.path
                budget.write(repeated.bytes)
                expanded += repeated.entries
                if expanded > MAX_ENTRIES:
                    raise MemberProblem(
                        f"makes the stored tree more than {MAX_ENTRIES} files and folders (links repeat folders)"
                    )
            for path, target in table.links.items():  # last: no member can be written through them
                name = path
                writer.symlink(path, target)
    except MemberProblem as exc:
        raise ArchiveError(f"archive '{shown}': member '{excerpt(name, 80)}' {exc}") from None
    except LinkRefused as exc:
        raise ArchiveError(f"archive '{shown}': member '{excerpt(exc.path, 80)}' {exc.problem}") from None
    except Oversized as exc:
        where = f"the member after '{excerpt(last, 80)}'" if last else "its first member"
        raise ArchiveError(f"archive '{shown}': {where} {exc}") from None
    except (Unreadable, tarfile.TarError) as exc:  # not a tar, truncated, bad compression
        where = f" at member '{excerpt(name, 80)}'" if name else f" after member '{excerpt(last, 80)}'" if last else ""
        why = excerpt(str(exc) or type(exc).__name__, 120)
        raise ArchiveError(f"archive '{shown}' cannot be read{where}: {why}") from None
    except OSError as exc:  # a full disk; a name the file system refuses
        where = f": member '{excerpt(name, 80)}'" if name else ""
        why = exc.strerror or str(exc)
        raise ArchiveError(f"archive '{shown}' cannot be unpacked{where}: {excerpt(why, 120)}") from None
    if not any(kind is Kind.FILE for kind in table.kinds.values()):
        raise ArchiveError(f"archive '{shown}' holds no files")
    return table


@contextmanager
def unpacked(archive: Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """Unpack ``archive`` into a staging folder; yield the tree to store (the staging folder is removed afterwards)."""
    if archive_suffix(archive) is None:
        raise ArchiveError(
            f"'{excerpt(str(archive))}' is not an archive pkgc unpacks ({', '.join(SUFFIXES)}); "
            f"drop {UNPACK_PROPERTY} or give the archive"
        )
    if not archive.is_file():
        raise ArchiveError(f"archive '{excerpt(str(archive))}' is not a file")
    with staging_folder() as staging:
        staged = staging / STAGED
        staged.mkdir()
        table = _unpack_into(archive, staged, limits)
        top = table.top_folder()
        if top is not None:
            yield staged / top
        else:
            named = staging / "named"
            named.mkdir()
            os.rename(staged, named / tree_name(archive))
            yield named / tree_name(archive)


@contextmanager
def model_source(path: Path, properties: Mapping[str, str], limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """The file or folder to store for a model at ``path``: the unpacked tree when ``azureml.unpack`` says so."""
    if wants_unpack(properties):
        with unpacked(path, limits) as tree:
            yield tree
    else:
        yield path
