"""Read what an ELF shared object needs from the dynamic loader: its ``DT_NEEDED`` libraries, its
``DT_SONAME`` and its ``DT_RUNPATH``/``DT_RPATH``, and a program's loader (``PT_INTERP``) — with the
standard library, every read bounded.

Files that are not 64- or 32-bit little- or big-endian ELF, or whose headers point outside the
file, give ``None``: a broken or foreign file is not pkgc's to judge here."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"\x7fELF"
PT_DYNAMIC, PT_INTERP = 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29
MAX_HEADERS = 4096  # program headers read at most
MAX_DYNAMIC = 1 << 16  # dynamic entries read at most
MAX_STRING = 4096  # bytes of one name or path list


@dataclass(frozen=True)
class ElfLinks:
    """The dynamic-linking facts of one ELF file."""

    machine: int  # e_machine: 62 x86-64, 183 AArch64
    needed: tuple[str, ...]
    soname: str | None
    runpath: tuple[str, ...]  # RUNPATH, else RPATH, split on ':'
    interpreter: str | None = None  # PT_INTERP: a program's dynamic loader (/lib64/ld-linux-x86-64.so.2)


def is_elf(path: Path) -> bool:
    """True for a regular file that starts with the ELF magic (a link or a folder is not)."""
    try:
        with open(path, "rb", opener=_no_follow) as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def elf_machine(path: Path) -> int | None:
    """The ``e_machine`` of a regular ELF file (62 x86-64, 183 AArch64), None for anything else (a link,
    a folder, a file too short or not ELF)."""
    try:
        with open(path, "rb", opener=_no_follow) as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != MAGIC or head[5] not in (1, 2):
        return None
    return struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0]


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def read_links(path: Path) -> ElfLinks | None:
    """The file's dynamic-linking facts; ``None`` for a static or malformed ELF file."""
    try:
        with open(path, "rb", opener=_no_follow) as fh:
            return _parse(fh, os.fstat(fh.fileno()).st_size)
    except (OSError, struct.error, ValueError):
        return None


def _parse(fh, size: int) -> ElfLinks | None:
    ident = fh.read(16)
    if len(ident) < 16 or ident[:4] != MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    header = fh.read(48 if wide else 36)
    fields = struct.unpack(order + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"), header)
    machine, phoff, phentsize, phnum = fields[1], fields[4], fields[8], fields[9]
    if phnum > MAX_HEADERS or phentsize < (56 if wide else 32) or phoff + phnum * phentsize > size:
        return None
    segments = []
    for index in range(phnum):
        fh.seek(phoff + index * phentsize)
        raw = fh.read(phentsize)
        if wide:
            p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack(order + "IIQQQQ", raw[:40])
        else:
            p_type, offset, vaddr, _paddr, filesz = struct.unpack(order + "IIIII", raw[:20])
        segments.append((p_type, offset, vaddr, filesz))
    dynamic = next((s for s in segments if s[0] == PT_DYNAMIC), None)
    if dynamic is None:
        return None
    entries = _dynamic_entries(fh, size, dynamic, wide, order)
    strtab = next((value for tag, value in entries if tag == DT_STRTAB), None)
    if strtab is None:
        return None
    strtab_offset = _file_offset(strtab, segments)
    if strtab_offset is None:
        return None

    def text(offset: int) -> str:
        return _string(fh, size, strtab_offset + offset)

    needed = tuple(text(value) for tag, value in entries if tag == DT_NEEDED)
    soname = next((text(value) for tag, value in entries if tag == DT_SONAME), None)
    paths = [text(value) for tag, value in entries if tag == DT_RUNPATH] or [
        text(value) for tag, value in entries if tag == DT_RPATH
    ]
    runpath = tuple(part for joined in paths for part in joined.split(":") if part)
    interp = next((s for s in segments if s[0] == PT_INTERP), None)
    return ElfLinks(machine, needed, soname, runpath, _string(fh, size, interp[1]) if interp else None)


def _dynamic_entries(fh, size: int, segment, wide: bool, order: str) -> list[tuple[int, int]]:
    _type, offset, _vaddr, filesz = segment
    width = 16 if wide else 8
    count = min(filesz // width, MAX_DYNAMIC)
    if offset + count * width > size:
        raise ValueError("dynamic section beyond the file")
    fh.seek(offset)
    raw = fh.read(count * width)
    entries = []
    for index in range(count):
        tag, value = struct.unpack_from(order + ("qQ" if wide else "iI"), raw, index * width)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    return entries


def _file_offset(address: int, segments) -> int | None:
    """The file offset of a virtual address, through the PT_LOAD segment that maps it."""
    for p_type, offset, vaddr, filesz in segments:
        if p_type == 1 and vaddr <= address < vaddr + filesz:
            return offset + (address - vaddr)
    return None


def _string(fh, size: int, offset: int) -> str:
    if offset >= size:
        raise ValueError("string beyond the file")
    fh.seek(offset)
    raw = fh.read(MAX_STRING)
    end = raw.find(b"\0")
    if end < 0:
        raise ValueError("unterminated string")
    return raw[:end].decode("utf-8", "replace")
