"""Let a foreign program start other foreign programs under qemu-user without binfmt_misc.

qemu-user runs one program; when that program executes another (a shell running ``ls``, pkgc's
entrypoint script running ``exec python``), the kernel is handed an ELF file it cannot run. The one
handler every kernel has besides ELF is ``#!``. So in the unpacked root filesystem (pkgc's private
copy) every executable program of the platform is renamed ``.pkgc-qemu.NAME`` beside itself (its
``$ORIGIN`` rpaths still hold) and ``NAME`` becomes a two-line script run by the host's static
busybox::

    #!/.pkgc-qemu/busybox sh
    exec /.pkgc-qemu/qemu-aarch64-static -0 "$0" /usr/bin/.pkgc-qemu.dash "$@"

A program is an ELF file of the platform with an execute bit that is an executable (``ET_EXEC``) or a
position-independent one (``ET_DYN`` with a ``PT_INTERP`` header and no ``.so`` in its name): shared
libraries are never wrapped. No link is followed while walking (``os.walk``), and every header read is
bounded (64 bytes and at most ``MAX_HEADERS`` program headers)."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from compiler.platform import Platform

LAUNCHER_DIR = ".pkgc-qemu"  # at the root: the host's static busybox and the qemu binary
WRAPPED = ".pkgc-qemu."  # the prefix of a wrapped program's new name
ET_EXEC, ET_DYN, PT_INTERP = 2, 3, 3
MAX_HEADERS = 256
SKIPPED = {"proc", "dev", "sys", LAUNCHER_DIR}


def is_program(fd: int, platform: Platform, name: str) -> bool:
    """Whether the open file ``fd`` is an executable (not a library) ELF64 little-endian file of ``platform``."""
    head = os.pread(fd, 64, 0)
    if len(head) < 64 or not head.startswith(b"\x7fELF") or head[4:6] != b"\x02\x01":
        return False
    e_type, machine = int.from_bytes(head[16:18], "little"), int.from_bytes(head[18:20], "little")
    if machine != platform.elf_machine:
        return False
    if e_type == ET_EXEC:
        return True
    if e_type != ET_DYN or ".so" in name:
        return False
    return has_interpreter(fd, head)


def has_interpreter(fd: int, head: bytes) -> bool:
    """Whether the ELF64 little-endian file ``fd`` (``head``: its first 64 bytes) has a PT_INTERP header."""
    offset = int.from_bytes(head[32:40], "little")
    size, count = int.from_bytes(head[54:56], "little"), int.from_bytes(head[56:58], "little")
    if size < 4 or not 0 < count <= MAX_HEADERS:
        return False
    table = os.pread(fd, size * count, offset)
    return any(int.from_bytes(table[i : i + 4], "little") == PT_INTERP for i in range(0, len(table) - 3, size))


def launcher_dir(root: Path) -> Path:
    return root / LAUNCHER_DIR


def wrapper(real: str, qemu: str) -> bytes:
    """The script that takes a wrapped program's place (``real``, ``qemu``: absolute paths in the root)."""
    return (f"#!/{LAUNCHER_DIR}/busybox sh\n"
            f'exec /{LAUNCHER_DIR}/{qemu} -0 "$0" {shlex.quote(real)} "$@"\n').encode()  # fmt: skip


def wrap_programs(root: Path, platform: Platform) -> int:
    """Wrap every program of ``platform`` below ``root`` (see the module); returns how many."""
    qemu, count = platform.qemu, 0
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in SKIPPED]
        for name in files:
            if name.startswith(WRAPPED):
                continue
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                program = is_program(fd, platform, name)
            finally:
                os.close(fd)
            if not program:
                continue
            real = os.path.join(folder, WRAPPED + name)
            os.rename(path, real)
            inside = "/" + os.path.relpath(real, root)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o700)
            try:
                os.write(fd, wrapper(inside, qemu))
                os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o1777)
                if os.geteuid() == 0:
                    os.fchown(fd, info.st_uid, info.st_gid)
            finally:
                os.close(fd)
            count += 1
    return count
