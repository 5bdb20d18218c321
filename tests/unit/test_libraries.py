"""The build-time check of shared libraries: real ELF files made by the host's C compiler, an
environment assembled by pkgc from a real wheel, and the error that names package, library and fix."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from compiler.envbuild.elf import is_elf, read_links
from compiler.envbuild.libraries import external_needs, missing_from_base
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.errors import MissingLibraries
from compiler.backends.oci.layers import check_libraries
from compiler.backends.oci.scan import BaseScan, _configured_dirs

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make real ELF files")


def _shared(folder: Path, name: str, needs: list[str], soname: str | None = None, rpath: str | None = None) -> Path:
    """A real shared object named ``name`` linked against stub libraries for ``needs``."""
    folder.mkdir(parents=True, exist_ok=True)
    stubs = folder / ".stubs"
    stubs.mkdir(exist_ok=True)
    flags = []
    for lib in needs:
        stub = stubs / lib
        (stubs / "s.c").write_text("int pkgc_stub(void) { return 1; }\n")
        subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{lib}", "-o", str(stub), str(stubs / "s.c")], check=True)
        flags.append(f"-l:{lib}")
    (folder / "m.c").write_text("int pkgc_module(void) { return 2; }\n")
    cmd = ["gcc", "-shared", "-fPIC", "-o", str(folder / name), str(folder / "m.c"), f"-L{stubs}", "-Wl,--no-as-needed", *flags]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if rpath:
        cmd.append(f"-Wl,-rpath,{rpath}")
    subprocess.run(cmd, check=True)
    (folder / "m.c").unlink()
    shutil.rmtree(stubs)
    return folder / name


def test_reads_needed_soname_and_runpath(tmp_path):
    lib = _shared(tmp_path, "libx.so", ["libgomp.so.1", "libpkgcmissing.so.3"], soname="libx.so.7", rpath="$ORIGIN/../libs")
    links = read_links(lib)
    assert links is not None and links.machine == 62
    assert {"libgomp.so.1", "libpkgcmissing.so.3"} <= set(links.needed)
    assert links.soname == "libx.so.7" and links.runpath == ("$ORIGIN/../libs",)
    assert is_elf(lib) and not is_elf(tmp_path)


def test_malformed_elf_files_are_not_read(tmp_path):
    lib = _shared(tmp_path, "liby.so", ["libz.so.1"])
    data = bytearray(lib.read_bytes())
    data[32:40] = (2**63).to_bytes(8, "little")  # program headers far beyond the file
    broken = tmp_path / "broken.so"
    broken.write_bytes(bytes(data))
    assert read_links(broken) is None
    (tmp_path / "short.so").write_bytes(b"\x7fELF\x02\x01")
    assert read_links(tmp_path / "short.so") is None
    (tmp_path / "link.so").symlink_to("/dev/zero")
    assert not is_elf(tmp_path / "link.so") and read_links(tmp_path / "link.so") is None


def _wheel(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    """A minimal real wheel holding ``files`` (pkgc's installer writes its RECORD into the env)."""
    path = tmp_path / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_environment_needs_name_the_package_and_resolve_runpath(tmp_path):
    built = tmp_path / "built"
    bundled = _shared(built / "libs", "libbundled-ab12.so.1", [], soname="libbundled-ab12.so.1")
    ext = _shared(built / "ext", "core.so", ["libbundled-ab12.so.1", "libgomp.so.1", "libc.so.6"], rpath="$ORIGIN/../fancy.libs")
    wheel = _wheel(tmp_path, "fancy", {"fancy/core.so": ext.read_bytes(), "fancy.libs/libbundled-ab12.so.1": bundled.read_bytes(),
                                       "fancy/__init__.py": b""})  # fmt: skip
    target = VenvTarget("/opt/pkgc/venv", "3.11", "/usr/bin")
    root = assemble_venv([wheel], target, tmp_path / "staging")
    needs = {n.soname: n for n in external_needs(root, target.prefix)}
    assert set(needs) == {"libgomp.so.1", "libc.so.6"}  # the bundled one is found through $ORIGIN
    assert needs["libgomp.so.1"].packages == ("fancy",)
    assert needs["libgomp.so.1"].example == "/opt/pkgc/venv/lib/python3.11/site-packages/fancy/core.so"
    base = frozenset({"libc.so.6", "libm.so.6"})
    assert [n.soname for n in missing_from_base(list(needs.values()), base)] == ["libgomp.so.1"]


class _Plan:
    class base:  # noqa: N801 - the attribute shape ImagePlan has
        reference = "pkgc/base-debian-bookworm:latest"


def test_check_names_package_library_and_fix(tmp_path):
    ext = _shared(tmp_path / "ext", "core.so", ["libgomp.so.1", "libcuda.so.1", "libc.so.6"])
    wheel = _wheel(tmp_path, "lightish", {"lightish/core.so": ext.read_bytes()})
    target = VenvTarget("/opt/pkgc/venv", "3.11", "/usr/bin")
    needs = external_needs(assemble_venv([wheel], target, tmp_path / "staging"), target.prefix)
    scan = BaseScan(libraries=("libc.so.6",))
    with pytest.raises(MissingLibraries) as caught:
        check_libraries(_Plan(), scan, needs, frozenset())  # type: ignore[arg-type]
    (line,) = caught.value.lines()  # libcuda.so.1 comes from the GPU driver at run time: not missing
    assert line.startswith("lightish needs libgomp.so.1 (/opt/pkgc/venv/lib/python3.11/site-packages/lightish/core.so)")
    assert "pkgc/base-debian-bookworm:latest" in line and "libgomp1" in line
    assert caught.value.exit_code == 2
    check_libraries(_Plan(), scan, needs, frozenset({"libgomp.so.1"}))  # type: ignore[arg-type]
    check_libraries(_Plan(), BaseScan(libraries=("libc.so.6", "libgomp.so.1")), needs, frozenset())  # type: ignore[arg-type]


def test_ld_so_conf_adds_folders():
    files = {"etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n", "etc/ld.so.conf.d/cuda.conf": "/usr/local/cuda/lib64 # cuda\n"}
    assert _configured_dirs(files) == {"usr/local/cuda/lib64"}


def test_another_pythons_libpython_is_not_a_need_of_this_image():
    """nvidia-pytriton ships backend stubs for Pythons 3.8-3.12; only the image's own loads."""
    from compiler.envbuild.libraries import Need

    needs = [Need("libpython3.10.so.1.0", ("nvidia-pytriton",), "/x/3.10/stub"), Need("libpython3.11.so.1.0", ("nvidia-pytriton",), "/x/3.11/stub")]
    assert [n.soname for n in missing_from_base(needs, frozenset(), "3.11")] == ["libpython3.11.so.1.0"]
    assert missing_from_base(needs, frozenset({"libpython3.11.so.1.0"}), "3.11") == []
