"""The linux/arm64 offline base for real, on this x86 host with no emulation while it is built:
``pkgc base-image build debian-bookworm --platform linux/arm64`` unpacks Debian's arm64 packages with
mmdebstrap and configures them on the host, into pkgc's OCI store (kept there like the amd64 base in
the engine: a second run is a no-op). Checked: every ELF file is AArch64, the labels and Python are
the amd64 base's, and its Python (with ssl and sqlite3) runs under qemu-user invoked explicitly in a
chroot of the unpacked rootfs (no binfmt registration). Set PKGC_E2E_COLD_BASE=1 to time a cold build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from compiler.baseimages import load_recipe
from compiler.oci.base import BaseImage, resolve_base
from compiler.oci.baseimage import build_base_image_in_store
from compiler.oci.store import OciStore
from compiler.options import load_options
from compiler.platform import ARM64, Platform
from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine  # with the other base-image builds: mmdebstrap as root, the Debian mirror

NAME = "debian-bookworm"
PROBE = "import sys, ssl, sqlite3, venv, ensurepip; print(sys.version)"


@pytest.fixture(scope="module")
def store() -> OciStore:
    return OciStore.in_cache(load_options().cache_dir)


@pytest.fixture(scope="module")
def arm64(store: OciStore) -> BaseImage:
    lines: list[str] = []
    started = time.monotonic()
    result = build_base_image_in_store(NAME, store, lines.append, platforms=(ARM64,), force=os.environ.get("PKGC_E2E_COLD_BASE") == "1")
    print(f"\n{NAME} for {ARM64}: built={result.built} in {time.monotonic() - started:.1f}s")
    return resolve_base(load_recipe(NAME).image_ref, store, None, lines.append, ARM64)


@pytest.fixture(scope="module")
def rootfs(arm64: BaseImage, store: OciStore, tmp_path_factory) -> Path:
    """The image's layers unpacked (device nodes left out: nothing here needs them)."""
    root = tmp_path_factory.mktemp("arm64-rootfs")
    for layer in arm64.layers:
        with tarfile.open(store.blobs.path(layer["digest"]), "r:*") as tar:
            members = [m for m in tar if not (m.ischr() or m.isblk() or m.isfifo())]
            tar.extractall(root, members=members, numeric_owner=True)  # noqa: S202 (pkgc's own image)
    return root


def elf_machines(root: Path) -> dict[str, int]:
    """Each regular ELF file under ``root`` (relative path) -> its e_machine."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as fh:
                head = fh.read(20)
            if head[:4] == b"\x7fELF" and len(head) == 20:
                found[str(path.relative_to(root))] = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return found


def test_every_elf_file_is_aarch64(rootfs: Path) -> None:
    machines = elf_machines(rootfs)
    assert len(machines) > 500, "the rootfs holds Debian's binaries and libraries"
    assert {path: m for path, m in machines.items() if m != ARM64.elf_machine} == {}


def test_config_and_labels_are_the_amd64_base_s(arm64: BaseImage, rootfs: Path) -> None:
    recipe = load_recipe(NAME)
    assert Platform.from_oci(arm64.config) == ARM64 and arm64.config.get("variant") == ARM64.variant
    assert arm64.labels["io.pkgc.base.python"] == recipe.python == "3.11"
    assert arm64.labels["io.pkgc.base.recipe-digest"] == recipe.digest and arm64.labels["io.pkgc.base.distro"] == recipe.distro
    assert "LANG=C.UTF-8" in arm64.config["config"]["Env"] and arm64.config["config"]["Cmd"] == ["python3"]
    assert os.readlink(rootfs / "usr/bin/python3") == f"python{recipe.python}"
    assert (rootfs / f"usr/lib/{ARM64.triplet}/libgomp.so.1").exists()  # the recipe's packages, the arm64 build
    assert (rootfs / "etc/passwd").read_text().startswith("root:x:0:0:")
    status = (rootfs / "var/lib/dpkg/status").read_text()
    assert "Package: python3.11-minimal\nStatus: install ok installed" in status and f"Architecture: {ARM64.debian_arch}" in status
    assert not (rootfs / "etc/ssl/certs/ca-certificates.crt").exists()  # no CA bundle, as amd64's


def test_its_python_runs_under_qemu_user_in_a_chroot(rootfs: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot into the unpacked rootfs needs root")
    qemu = shutil.which(ARM64.qemu)
    assert qemu, f"{ARM64.qemu} is missing: scripts/setup.sh installs Debian's qemu-user-static"
    shutil.copy2(qemu, rootfs / ARM64.qemu)
    try:
        proc = subprocess.run([shutil.which("chroot") or "/usr/sbin/chroot", str(rootfs), f"/{ARM64.qemu}", "/usr/bin/python3", "-c", PROBE],
                              capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # fmt: skip
    finally:
        (rootfs / ARM64.qemu).unlink()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(load_recipe(NAME).python + "."), proc.stdout


def test_a_second_build_is_a_no_op_through_the_command_line(arm64: BaseImage) -> None:
    started = time.monotonic()
    proc = run_pkgc("-q", "base-image", "build", NAME, "--platform", str(ARM64), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["built"] is False and str(ARM64) in result["platforms"]
    assert time.monotonic() - started < 30
