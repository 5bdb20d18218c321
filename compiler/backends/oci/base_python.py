"""Which interpreter compiles the environment's byte-code: the base image's own ``python3.X``.

A pyc's bytes depend on the compiling interpreter's build (CPython patch releases of one X.Y, and
even distribution patch levels of one release, compile some files differently), so byte-code made
by whatever Python runs pkgc would differ from runner to runner. The base's own Python makes them the
same everywhere, and the same the image's interpreter would make:

- when the Python running pkgc is the base's (same executable, ``libpython`` and standard library
  digests: pkgc in its own builder image on the offline base), it compiles in a fresh process of it;
- else, as root, the base is unpacked once under ``<cache>/bases`` and its Python compiles in a chroot
  (private mount, PID and network namespaces, no capability, ``compiler.runtime.qemu``: under
  qemu-user for another platform), the environment's site-packages bound at its place in the image;
- else the host's Python compiles, when its X.Y is the image's (the digests then depend on the host),
  and the note says so.

``identity`` is what keys the pyc cache and the environment's layers: the base Python's build digest
(from the base scan) and the base's manifest digest in the first two cases, the host's build
otherwise."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from compiler.backends.oci.host_python import remembered_build
from compiler.backends.oci.scan import BaseScan
from compiler.envbuild.bytecode import DRIVER, ENV, FLAGS, TIMEOUT, Compiler, ProcessCompiler, Source, compile_in_shares
from compiler.oci.base import BaseImage
from compiler.oci.store import OciStore
from compiler.platform import Platform
from compiler.runtime.rootfs import make_folder

LIST_IN_IMAGE = "/.pkgc-compile-{}.json"


def base_identity(build: str, base_digest: str) -> bytes:
    """The identity of the base's Python: its build and the base itself. The base's manifest digest
    is part of it because the chroot also runs the base's shared libraries (libc, libz, ...), which
    the build digest does not cover: another base cannot fill the pyc cache or the environment's
    layer keys under this one's name."""
    return f"base-python {build} {base_digest}".encode()


def host_build(python_files: list[str] | None = None) -> str:
    """The build digest of the Python running pkgc, computed as the base scan computes a base's: its
    executable's and ``libpython``'s paths and digests (``python_files``: default, what this process runs)."""
    lines = []
    for path in sorted(python_files if python_files is not None else _running_python_files()):
        if os.path.islink(path):  # as a layer holds it: the link, not what it points to
            lines.append(f"{path}=link:{os.readlink(path)}")
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        lines.append(f"{path}={digest.hexdigest()}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _may_be_the_base_s(home: str) -> bool:
    """Whether the Python running pkgc can be the base's, before hashing it (0.4 s of every build): its
    executable must be in the folder of the base's (the build digest names the paths). Otherwise the
    chroot's compile gives the same bytes, so a Python that fails this check only costs time."""
    return os.path.dirname(os.path.realpath(sys.executable)) == home.rstrip("/")


def _running_build(cache_dir: Path | None) -> str:
    """``host_build()`` of this process's Python, remembered in the cache while its files stay as they are."""
    return remembered_build(_running_python_files(), host_build, cache_dir)


def _running_python_files() -> list[str]:
    """This interpreter's executable, its ``libpython`` and its own library (what the base scan hashes)."""
    files = {os.path.realpath(sys.executable)}
    library = os.path.realpath(os.path.dirname(os.__file__))
    for folder, dirs, names in os.walk(library):
        if folder == library:
            dirs[:] = [d for d in dirs if d not in ("site-packages", "dist-packages")]
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        files.update(os.path.join(folder, name) for name in [*names, *links]
                     if os.path.islink(os.path.join(folder, name)) or os.path.isfile(os.path.join(folder, name)))  # fmt: skip
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if "/libpython3" in path and path.startswith("/"):
                    files.add(path)
    except OSError:
        pass
    return sorted(files)


class SandboxCompiler(Compiler):
    """The base's Python in a chroot of the base (unpacked into the cache on the first ``compile``
    unless kept there before: ``compiler.runtime.kept_root``), the site-packages folder bound
    read-write at ``in_image``. Other runs may use the same root at once: each binds its own folders
    in its own mount namespace."""

    def __init__(self, identity: bytes, store: OciStore, base: BaseImage, platform: Platform, executable: str,
                 cache_dir: Path, folder: Path, in_image: str):  # fmt: skip
        self.identity = identity
        self._store, self._base, self._platform, self._executable = store, base, platform, executable
        self._cache_dir, self._folder, self._in_image = cache_dir, folder, in_image
        self._stack = ExitStack()
        self._box = None

    def compile(self, sources: list[Source], workers: int) -> list[bool]:
        if not sources:
            return []
        box = self._open()
        make_folder(box.root, self._in_image)  # once, before the runs that bind it start at once

        with tempfile.TemporaryDirectory(prefix="pkgc-compile-") as lists:  # this run's own, not in the shared root

            def run(index: int, share: list[Source]) -> subprocess.CompletedProcess:
                listing, target = Path(lists) / f"{index}.json", LIST_IN_IMAGE.format(index)
                listing.write_text(json.dumps([[s.in_image, s.in_image] for s in share]))
                mounts = [self._mount(self._folder, self._in_image, False), self._mount(listing, target, True)]
                return box.run([self._executable, *FLAGS, "-c", DRIVER, target], env=dict(ENV), timeout=TIMEOUT, mounts=mounts,
                               user="0")  # fmt: skip

            return compile_in_shares(sources, workers, run)

    def _open(self):
        if self._box is None:
            from compiler.runtime.qemu import QemuContainer

            self._box = self._stack.enter_context(QemuContainer(self._store, self._base.manifest_digest, self._platform,
                                                                self._cache_dir, network=False, kept=True))  # fmt: skip
        return self._box

    @staticmethod
    def _mount(source: Path, target: str, read_only: bool):
        from compiler.runtime.qemu import Mount

        return Mount(source, target, read_only)

    def close(self) -> None:
        self._stack.close()
        self._box = None


@dataclass(frozen=True)
class CompilerChoice:
    """Who compiles, known before the environment is assembled (its ``identity`` keys the layers)."""

    identity: bytes | None  # None: the host's Python, when its X.Y is the image's
    sandbox: bool  # the base's Python in a chroot (else this process)
    executable: str  # the base's python3.X, in the image
    why: str


def plan_compiler(scan: BaseScan, python: str, platform: Platform, cache_dir: Path | None, base: BaseImage | None) -> CompilerChoice:
    """Who compiles for ``base`` (None: no base to run, the host's Python)."""
    build, home = scan.python_builds.get(python), scan.python_home(python)
    if base is None or build is None or home is None:
        return CompilerChoice(None, False, "", f"the host's Python: the base has no python{python} of its own")
    executable = f"{home}/python{python}"
    if platform == Platform.host() and _may_be_the_base_s(home) and _running_build(cache_dir) == build:
        return CompilerChoice(base_identity(build, base.manifest_digest), False, executable, "the base's own Python, the one running pkgc")
    why = _sandbox_missing(platform) if cache_dir is not None else "no cache folder to unpack the base in"
    if why is None:
        return CompilerChoice(base_identity(build, base.manifest_digest), True, executable, "the base's Python, in a chroot")
    return CompilerChoice(None, False, executable, f"the host's Python: {why}, so the digests depend on this host")


def make_compiler(choice: CompilerChoice, store: OciStore, base: BaseImage, platform: Platform, cache_dir: Path | None,
                  folder: Path, in_image: str) -> Compiler | None:  # fmt: skip
    """The compiler ``choice`` names for the site-packages ``folder`` (at ``in_image``); None: the host's."""
    if choice.identity is None:
        return None
    if choice.sandbox and cache_dir is not None:
        return SandboxCompiler(choice.identity, store, base, platform, choice.executable, cache_dir, folder, in_image)
    return ProcessCompiler(os.path.realpath(sys.executable), choice.identity)  # the same build: the same bytes


def _sandbox_missing(platform: Platform) -> str | None:
    """Why the base's Python cannot run in a chroot here (None: it can)."""
    if os.geteuid() != 0:
        return "a chroot needs root"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare and mount (util-linux) are missing"
    if platform != Platform.host():
        from compiler.runtime.qemu import BUSYBOX, QEMU_DIR

        if not (QEMU_DIR / platform.qemu).is_file() or not BUSYBOX.is_file():
            return f"{platform.qemu} or a static busybox is missing"
    return None
