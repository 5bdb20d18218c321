"""Model archives unpacked when a model is registered (Azure ML's ``azureml.unpack`` property).

Seed 000: models of more than ~1500 files are registered as a ``.tar.gz`` with ``azureml.unpack``
set; the package then sees the unpacked tree. An archive is untrusted input, so every member is
checked before anything is written, on top of tarfile's ``data`` filter:

- names: relative, no ``..``, no NUL or control characters, valid UTF-8, at most 4096 bytes;
- types: regular files and folders; a symbolic link or hard link only when its target stays
  inside the archive's tree (and a hard link only to a regular file already read); no devices,
  FIFOs or sockets;
- limits: at most ``max_files`` members and ``max_bytes`` of content in all, refused with the
  numbers before anything is extracted (a compressed bomb stops at the header that crosses them).

Where the tree lands: an archive holding one top folder is that folder (``models.tar.gz`` with
``models/...`` gives ``AZUREML_MODEL_DIR/models/...``); otherwise its members go into a folder named
after the archive (``m.tar.gz`` -> ``m/``).
"""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import ResolveError, excerpt
from compiler.spec.values import CONTROL

UNPACK_PROPERTY = "azureml.unpack"
TRUE_VALUES, FALSE_VALUES = ("true", "1", "yes"), ("false", "0", "no")
SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar")
MAX_NAME_BYTES = 4096


class ArchiveError(ResolveError):
    """An archive that cannot be unpacked safely."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 100_000
    max_bytes: int = 20 * 1024**3  # content, as the members' headers declare it


def wants_unpack(properties: Mapping[str, str]) -> bool:
    """True when ``azureml.unpack`` is set to a true value; any other value than true/false is refused."""
    value = properties.get(UNPACK_PROPERTY)
    if value is None:
        return False
    text = str(value).strip().lower()
    if text not in TRUE_VALUES + FALSE_VALUES:
        raise ArchiveError(f"property {UNPACK_PROPERTY}={excerpt(str(value), 40)!r} must be true or false")
    return text in TRUE_VALUES


def archive_stem(path: Path) -> str | None:
    """``m`` for ``m.tar.gz`` (and the other suffixes), None when ``path`` is not named like an archive."""
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _member_problem(member: tarfile.TarInfo, regular: set[str]) -> str | None:
    """Why ``member`` cannot be unpacked, or None; ``regular``: the regular files read so far."""
    name = member.name
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8"
    if len(raw) > MAX_NAME_BYTES:
        return f"has a name longer than {MAX_NAME_BYTES} bytes"
    if CONTROL.search(name):
        return "has control characters in its name"
    if name.startswith("/") or posixpath.isabs(name):
        return "has an absolute name"
    if ".." in name.split("/"):
        return "leaves the archive's tree ('..')"
    if member.isdev() or member.isfifo() or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "is a device, FIFO or other special file (only files, folders and links inside the tree)"
    if member.issym() or member.islnk():
        target = member.linkname
        if not target or target.startswith("/") or CONTROL.search(target):
            return f"is a link to '{excerpt(target, 60)}', outside the archive's tree"
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
            return f"is a link to '{excerpt(target, 60)}', outside the archive's tree"
        if member.islnk() and resolved not in regular:
            return f"is a hard link to '{excerpt(target, 60)}', which is not a file read before it in the archive"
    return None


def check_archive(archive: Path, limits: ArchiveLimits = ArchiveLimits()) -> list[tarfile.TarInfo]:
    """Read every member header of ``archive``; raise ArchiveError naming the first bad member."""
    shown = excerpt(str(archive))
    members: list[tarfile.TarInfo] = []
    regular: set[str] = set()
    files = size = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if problem := _member_problem(member, regular):
                    raise ArchiveError(f"archive '{shown}': member '{excerpt(member.name, 80)}' {problem}")
                files += 1
                size += max(member.size, 0) if member.isfile() else 0
                if files > limits.max_files:
                    raise ArchiveError(f"archive '{shown}' holds more than {limits.max_files} members (the limit)")
                if size > limits.max_bytes:
                    raise ArchiveError(
                        f"archive '{shown}' unpacks to more than {limits.max_bytes} bytes (the limit)"
                    )
                if member.isfile():
                    regular.add(posixpath.normpath(member.name))
                members.append(member)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # not a tar, truncated, bad compression
        raise ArchiveError(f"archive '{shown}' cannot be read: {excerpt(str(exc) or type(exc).__name__, 120)}") from None
    if not any(m.isfile() for m in members):
        raise ArchiveError(f"archive '{shown}' holds no files")
    return members


def _root_folder(members: list[tarfile.TarInfo]) -> str | None:
    """The archive's one top folder, when every member lies in it."""
    names = [posixpath.normpath(m.name) for m in members]
    tops = {name.split("/", 1)[0] for name in names if name != "."}  # 'tar -C dir .' writes './' first
    if len(tops) != 1:
        return None
    top = tops.pop()
    if top in (".", "") or any(name == top and not m.isdir() for name, m in zip(names, members)):
        return None
    return top


@contextmanager
def unpacked(archive: Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """Unpack ``archive`` into a temporary folder; yield the tree to store (removed afterwards)."""
    stem = archive_stem(archive)
    if stem is None:
        raise ArchiveError(
            f"'{excerpt(str(archive))}' is not an archive pkgc unpacks ({', '.join(SUFFIXES)}); "
            f"drop {UNPACK_PROPERTY} or give the archive"
        )
    if not archive.is_file():
        raise ArchiveError(f"archive '{excerpt(str(archive))}' is not a file")
    members = check_archive(archive, limits)
    top = _root_folder(members)
    with tempfile.TemporaryDirectory(prefix="pkgc-unpack-") as tmp:
        target = Path(tmp) if top else Path(tmp) / stem
        target.mkdir(exist_ok=True)
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(target, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:  # the data filter's own refusals, a full disk
            raise ArchiveError(f"archive '{excerpt(str(archive))}' cannot be unpacked: {excerpt(str(exc), 120)}") from None
        yield target / top if top else target


@contextmanager
def model_source(path: Path, properties: Mapping[str, str], limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Path]:
    """The file or folder to store for a model at ``path``: the unpacked tree when ``azureml.unpack`` says so."""
    if wants_unpack(properties):
        with unpacked(path, limits) as tree:
            yield tree
    else:
        yield path
