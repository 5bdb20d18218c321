"""The ELF check (compiler.runtime.architecture) on real layers written into a real pkgc OCI store:
x86-64 programs are this host's own (/bin/true), AArch64 ones a minimal valid ELF64 header for
EM_AARCH64; whiteouts, opaque folders, hard links, indexes, and hostile layers (a tar bomb, absurd
sizes, link loops, too many members) that must be refused or ignored quickly."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from compiler.errors import ResolveError
from compiler.oci.layout_reader import LayoutError
from compiler.oci.store import MANIFEST, OciStore
from compiler.platform import AMD64, ARM64, Platform
from compiler.runtime.architecture import ElfHeader, check_architecture
from compiler.runtime.image_layers import LayerError, LayerLimits, open_image
from tests.oci_images import Entry, layer_tar, put_image, put_index

ROOT = Path(__file__).resolve().parents[2]
HOST_PROGRAM = Path("/bin/true").read_bytes()
QUICK = 5.0


def elf(machine: int, elf_class: int = 2, order: int = 1, body: bytes = b"\0" * 64) -> bytes:
    """A minimal ELF header: e_ident, e_type EXEC, e_machine, e_version (what ``file`` recognises)."""
    endian = "<" if order == 1 else ">"
    ident = b"\x7fELF" + bytes([elf_class, order, 1, 0]) + b"\0" * 8
    return ident + struct.pack(endian + "HHI", 2, machine, 1) + body


AARCH64 = elf(ARM64.elf_machine)


def test_headers_match_the_host_program_and_platform() -> None:
    host = ElfHeader.parse(HOST_PROGRAM[:20])
    assert host is not None and host.runs_on(Platform.host()) and host.describe() == "x86-64"
    arm = ElfHeader.parse(AARCH64[:20])
    assert arm is not None and arm.runs_on(ARM64) and not arm.runs_on(AMD64) and arm.describe() == "AArch64"
    assert ElfHeader.parse(b"#!/bin/sh\n") is None
    assert ElfHeader.parse(elf(ARM64.elf_machine, order=2)[:20]).describe() == "AArch64 (big-endian)"  # type: ignore[union-attr]
    assert ElfHeader.parse(elf(40, elf_class=1)[:20]).describe() == "ARM (32-bit)"  # type: ignore[union-attr]
    assert ElfHeader.parse(b"\x7fELF\x02").describe() == "truncated ELF header"  # type: ignore[union-attr]


def test_foreign_files_are_named_across_layers(tmp_path: Path) -> None:
    store = OciStore(tmp_path / "oci")
    bottom = layer_tar([Entry("bin", kind="dir"), Entry("bin/sh", AARCH64), Entry("bin/ls", HOST_PROGRAM),
                        Entry("etc/os-release", b"ID=debian\n"), Entry("bin/sh-link", kind="symlink", target="sh")])
    top = layer_tar([Entry("opt/env/bin/python3", HOST_PROGRAM), Entry("opt/env/lib/x.so", AARCH64),
                     Entry("opt/env/bin/py", kind="hardlink", target="opt/env/bin/python3")])
    manifest = put_image(store, [bottom, top], ARM64)
    report = check_architecture(store, manifest.digest, ARM64)
    assert (report.files, report.elf_files, report.passed) == (6, 5, False)
    assert [(f.path, f.machine, f.layer) for f in report.foreign] == [
        ("bin/ls", "x86-64", 1), ("opt/env/bin/py", "x86-64", 2), ("opt/env/bin/python3", "x86-64", 2)]
    assert "/bin/ls (x86-64)" in report.summary() and report.summary().startswith("3 of 5 ELF files are not linux/arm64")
    with pytest.raises(ResolveError, match="is linux/arm64, not linux/amd64"):  # its config says so
        check_architecture(store, manifest.digest, AMD64)


def test_whiteouts_and_replacements_hide_lower_files(tmp_path: Path) -> None:
    store = OciStore(tmp_path / "oci")
    bottom = layer_tar([Entry("usr/bin/a", HOST_PROGRAM), Entry("usr/lib/b", HOST_PROGRAM), Entry("usr/lib/c/d", HOST_PROGRAM),
                        Entry("opt/x", HOST_PROGRAM), Entry("opt/keep", AARCH64), Entry("srv/e", HOST_PROGRAM)])
    top = layer_tar([Entry("usr/bin/.wh.a", b""), Entry("usr/lib/.wh..wh..opq", b""), Entry("usr/lib/new", AARCH64),
                     Entry("opt/x", b"now a script"), Entry("srv", kind="symlink", target="opt")])
    manifest = put_image(store, [bottom, top], ARM64, compression="zstd")
    report = check_architecture(store, manifest.digest, ARM64)
    assert report.passed, report.summary()
    assert (report.files, report.elf_files) == (3, 2)  # opt/x, opt/keep, usr/lib/new


def test_an_index_is_resolved_to_the_platform(tmp_path: Path) -> None:
    store = OciStore(tmp_path / "oci")
    amd = put_image(store, [layer_tar([Entry("bin/true", HOST_PROGRAM)])], AMD64, compression="none")
    arm = put_image(store, [layer_tar([Entry("bin/true", AARCH64)])], ARM64)
    index = put_index(store, {AMD64: amd, ARM64: arm}, name="archcheck/multi:1")
    assert check_architecture(store, index.digest, ARM64).passed
    assert check_architecture(store, index.digest, AMD64).passed
    with open_image("archcheck/multi:1", store, ARM64) as image:
        assert image.digest == arm.digest
    only_amd = put_index(store, {AMD64: amd})
    with pytest.raises(LayoutError, match="no linux/arm64 manifest .it has: linux/amd64"):
        check_architecture(store, only_amd.digest, ARM64)
    with pytest.raises(ResolveError, match="not in pkgc's OCI store"):
        check_architecture(store, "sha256:" + "0" * 64, ARM64)


def _gzip_member_claiming(size: int, data: bytes) -> bytes:
    """A tar whose one member's header claims ``size`` bytes while ``data`` follows."""
    info = tarfile.TarInfo("big")
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT) + data


def test_a_tar_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    store = OciStore(tmp_path / "oci")
    zeros = io.BytesIO()
    with gzip.GzipFile(fileobj=zeros, mode="wb", compresslevel=1, mtime=0) as out:
        out.write(_gzip_member_claiming(64 << 20, AARCH64))
        for _ in range(16):
            out.write(b"\0" * (4 << 20))  # 64 MiB of zeros: a 300 KB layer
    assert len(zeros.getvalue()) < 1 << 20
    bomb = put_image(store, [(zeros.getvalue(), "application/vnd.oci.image.layer.v1.tar+gzip")], ARM64)
    started = time.monotonic()
    with pytest.raises(LayerError, match="more than 16777216 bytes of tar"):
        check_architecture(store, bomb.digest, ARM64, LayerLimits(max_inflated=16 << 20))
    assert time.monotonic() - started < QUICK


def test_absurd_sizes_and_link_loops_are_refused_or_ignored(tmp_path: Path) -> None:
    store = OciStore(tmp_path / "oci")
    absurd = put_image(store, [(_gzip_member_claiming(1 << 40, AARCH64), "application/vnd.oci.image.layer.v1.tar")], ARM64)
    started = time.monotonic()
    with pytest.raises(LayerError, match="layer 1"):
        check_architecture(store, absurd.digest, ARM64)
    loops = layer_tar([Entry("a", kind="symlink", target="b"), Entry("b", kind="symlink", target="a"),
                       Entry("c", kind="symlink", target="/c"), Entry("d/e", kind="symlink", target="../d"),
                       Entry("p", kind="fifo"), Entry("bin/x", AARCH64)])
    report = check_architecture(store, put_image(store, [loops], ARM64).digest, ARM64)
    assert (report.files, report.elf_files, report.passed) == (1, 1, True)
    many = layer_tar([Entry(f"f{i}", b"x") for i in range(50)])
    with pytest.raises(LayerError, match="more than 20 members"):
        check_architecture(store, put_image(store, [many], ARM64).digest, ARM64, LayerLimits(max_members=20))
    assert time.monotonic() - started < QUICK


def test_a_corrupt_layer_is_named(tmp_path: Path) -> None:
    store = OciStore(tmp_path / "oci")
    manifest = put_image(store, [layer_tar([Entry("bin/x", AARCH64)])], ARM64)
    layer = store.read_json(manifest.digest)["layers"][0]
    path = store.blobs.path(layer["digest"])
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises((LayerError, LayoutError)):
        check_architecture(store, manifest.digest, ARM64)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="runs pkgc as another user")
def test_verify_of_a_foreign_platform_without_root_is_one_line_exit_2() -> None:
    """The ELF check passes for anyone; running the arm64 image needs root: one line, exit 2."""
    shared = Path(tempfile.mkdtemp(prefix="archcheck-"))
    try:
        shared.chmod(0o755)
        store = OciStore.in_cache(shared / "cache")
        put_image(store, [layer_tar([Entry("bin/sh", AARCH64)])], ARM64, "archcheck/tiny:1", {"Cmd": ["/bin/sh"]})
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PKGC_CACHE_DIR": str(shared / "cache"),
               "PKGC_WORKSPACE": str(shared / "workspace"), "HOME": str(shared)}  # fmt: skip
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                               "compiler.cli", "verify", "archcheck/tiny:1", "--platform", "linux/arm64"],
                              capture_output=True, text=True, env=env, cwd=str(shared), timeout=60)  # fmt: skip
    finally:
        shutil.rmtree(shared)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("pkgc: error")]
    assert errors == ["pkgc: error: running a linux/arm64 image on this host needs root (chroot and mounts under "
                      "qemu-user); run pkgc as root, or verify on a linux/arm64 machine"]  # fmt: skip


def test_an_oci_layout_listing_one_manifest_per_platform(tmp_path: Path) -> None:
    """``oci:DIR`` whose index.json lists each platform's manifest (no nested index), tagged alike."""
    store = OciStore(tmp_path / "layout")
    amd = put_image(store, [layer_tar([Entry("bin/true", HOST_PROGRAM)])], AMD64)
    arm = put_image(store, [layer_tar([Entry("bin/true", AARCH64)])], ARM64)
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST, "digest": blob.digest, "size": blob.size, "platform": platform.oci(),
         "annotations": {"org.opencontainers.image.ref.name": "1"}} for platform, blob in ((AMD64, amd), (ARM64, arm))]}
    (store.root / "index.json").write_text(json.dumps(index))
    (store.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for reference in (f"oci:{store.root}", f"oci:{store.root}:1"):
        with open_image(reference, OciStore(tmp_path / "unused"), ARM64) as image:
            assert image.digest == arm.digest
        with open_image(reference, OciStore(tmp_path / "unused"), AMD64) as image:
            assert image.digest == amd.digest
