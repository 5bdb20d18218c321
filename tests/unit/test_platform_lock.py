"""Locks, fetch and environments for a target platform other than the host's (linux/arm64 from x86):
conda-lock's multi-platform file, the resolvers asked for each target, wheels and ELF files checked
against the target, and a venv assembled for arm64 from real PyPI wheels."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conda_lock.lockfile import parse_conda_lock_file

from compiler.envbuild.conda import CondaTarget, assemble_conda_env, locked_packages
from compiler.envbuild.elf import elf_machine
from compiler.envbuild.libraries import scan_elf, standard_dirs
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import BuildError, LockError
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.fetch.conda_inputs import channel_files
from compiler.fetch.sdist import build_wheel
from compiler.lock.conda_resolve import resolve_conda
from compiler.lock.locker import load_or_lock
from compiler.lock.lockfile import read_lock, read_locks, write_lock
from compiler.lock.pip_resolve import platform_args, resolve_pip
from compiler.lock.types import Lock, LockedPackage, SourceDist, inputs_hash
from compiler.lock.uv_resolve import uv_platform
from compiler.lock.wheel_tags import runs_on
from compiler.plan.conda import installer_lock
from compiler.platform import AMD64, ARM64
from tests.e2e.conda_channel import CondaPackage, build_channel
from tests.unit.test_sdist import index  # noqa: F401 - a fixture: real local sdists

PYTHON = "3.11"
FILES = "https://files.pythonhosted.org/packages"
# Real MarkupSafe 2.1.5 wheels (a small C extension) for each platform, as PyPI publishes them.
MARKUPSAFE = {
    AMD64: LockedPackage("markupsafe", "2.1.5", "pip", f"{FILES}/97/18/c30da5e7a0e7f4603abfc6780574131221d9148f323752c2755d48abad30/"
                         "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                         "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                         "b91c037585eba9095565a3556f611e3cbfaa42ca1e865f7b8015fe5c7336d5a5"),
    ARM64: LockedPackage("markupsafe", "2.1.5", "pip", f"{FILES}/1c/cf/35fe557e53709e93feb65575c93927942087e9b97213eabc3fe9d5b25a55/"
                         "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                         "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                         "6ec585f69cec0aa07d945b20805be741395e28ac1627333b1c5b0105962ffced"),
}  # fmt: skip
STRATEGY = EnvironmentStrategy("venv", PYTHON, "test", pip=("markupsafe==2.1.5",))


def _lock(platform, *extra: LockedPackage, strategy=STRATEGY) -> Lock:
    return Lock("venv", PYTHON, inputs_hash(strategy, platform), (MARKUPSAFE[platform], *extra), platform=platform)


def _entries(path: Path, subdir: str) -> list[dict]:
    return [p for p in yaml.safe_load(path.read_text())["package"] if p["platform"] == subdir]


def test_one_file_holds_each_platform_in_conda_locks_own_format(tmp_path):
    both, amd64_only = tmp_path / "both.conda-lock.yml", tmp_path / "amd64.conda-lock.yml"
    write_lock([_lock(ARM64), _lock(AMD64)], both, ["package.yml"])
    write_lock(_lock(AMD64), amd64_only, ["package.yml"])
    meta = yaml.safe_load(both.read_text())["metadata"]
    assert meta["platforms"] == ["linux-64", "linux-aarch64"]
    assert set(meta["content_hash"]) == {"linux-64", "linux-aarch64"}
    assert meta["content_hash"]["linux-64"] != meta["content_hash"]["linux-aarch64"]
    assert {p.platform for p in parse_conda_lock_file(both).package} == {"linux-64", "linux-aarch64"}  # conda-lock reads it
    locks = read_locks(both)
    assert list(locks) == [AMD64, ARM64] and locks[ARM64] == _lock(ARM64) and locks[AMD64] == _lock(AMD64)
    assert read_lock(both, platform=ARM64) == _lock(ARM64) and read_lock(both) == _lock(AMD64)
    # the linux-64 side is what a linux-64-only lock holds, hash included
    single = yaml.safe_load(amd64_only.read_text())["metadata"]
    assert single["platforms"] == ["linux-64"] and single["content_hash"]["linux-64"] == meta["content_hash"]["linux-64"]
    assert _entries(both, "linux-64") == _entries(amd64_only, "linux-64")
    with pytest.raises(LockError, match=r"amd64\.conda-lock\.yml: metadata\.platforms: the lock has no linux-aarch64 \(linux/arm64\)"):
        read_lock(amd64_only, platform=ARM64)


def test_a_linux_64_lock_keeps_the_content_hash_it_was_written_with():
    """The payload every existing lock's hash was made from: a lock written before platforms is not stale."""
    payload = {"strategy": "venv", "python": PYTHON, "pip": ["markupsafe==2.1.5"], "conda": [], "channels": [], "platform": "linux-64"}
    assert inputs_hash(STRATEGY) == inputs_hash(STRATEGY, AMD64) == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def test_the_memo_keeps_every_platform(tmp_path):
    path, memo = tmp_path / "lock.yml", tmp_path / "memo"
    write_lock([_lock(AMD64), _lock(ARM64)], path, [])
    first = read_locks(path, memo)
    assert len(list(memo.glob("*.json"))) == 1
    assert read_locks(path, memo) == first == read_locks(path)  # from the memo: what conda-lock's reader gives
    assert read_lock(path, memo, ARM64).platform == ARM64


def test_a_lock_without_a_requested_platform_is_extended_or_stale_when_checked(tmp_path):
    """No pip requirement: nothing to ask an index, so this runs offline."""
    empty = EnvironmentStrategy("venv", PYTHON, "test", pip=())
    path = tmp_path / "pkg.conda-lock.yml"
    created = load_or_lock(empty, path, relock=False, sources=["p.yml"])
    assert created.status == "created" and list(created.locks) == [AMD64] and created.lock.platform == AMD64
    amd64_bytes = path.read_bytes()
    with pytest.raises(LockError, match=r"has no linux-aarch64 \(linux/arm64\), only linux-64; re-lock"):
        load_or_lock(empty, path, relock=False, sources=["p.yml"], platforms=(AMD64, ARM64), extend=False)
    assert path.read_bytes() == amd64_bytes  # pkgc lock --check writes nothing
    extended = load_or_lock(empty, path, relock=False, sources=["p.yml"], platforms=(ARM64, AMD64))
    assert extended.status == "extended" and list(extended.locks) == [ARM64, AMD64]
    assert extended.locks[AMD64] == created.lock and list(read_locks(path)) == [AMD64, ARM64]  # the linux-64 part kept
    relocked = load_or_lock(empty, path, relock=True, sources=["p.yml"], platforms=(ARM64, AMD64))
    assert relocked.status == "relocked" and list(relocked.locks) == [ARM64, AMD64] and relocked.lock.platform == ARM64
    reused = load_or_lock(empty, path, relock=False, sources=["p.yml"], platforms=(AMD64, ARM64))
    assert reused.status == "reused" and reused.locks == {AMD64: relocked.locks[AMD64], ARM64: relocked.locks[ARM64]}
    assert load_or_lock(empty, path, relock=False, sources=["p.yml"]).lock == relocked.locks[AMD64]


def test_a_wheel_the_target_cannot_run_is_refused_naming_the_package(tmp_path):
    wrong = Lock("venv", PYTHON, inputs_hash(STRATEGY, ARM64), (MARKUPSAFE[AMD64],), platform=ARM64)
    path = tmp_path / "wrong.conda-lock.yml"
    write_lock(wrong, path, [])
    with pytest.raises(LockError, match=r"wrong\.conda-lock\.yml: markupsafe 2\.1\.5: the locked wheel MarkupSafe-2\.1\.5-.*x86_64\.whl "
                                        r"is for manylinux2014_x86_64, manylinux_2_17_x86_64, which linux/arm64 cannot run"):
        read_locks(path)
    with pytest.raises(LockError, match="markupsafe 2.1.5"):  # before anything is downloaded
        fetch_lock(wrong, PackageCache(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()
    assert runs_on(MARKUPSAFE[ARM64], ARM64) and not runs_on(MARKUPSAFE[ARM64], AMD64)


def test_built_wheels_are_shared_by_platforms_unless_they_differ(tmp_path):
    sdist = SourceDist("https://example.invalid/p/pkgc-he-pure-1.0.tar.gz", "pkgc-he-pure-1.0.tar.gz", "a" * 64)
    built = LockedPackage("pkgc-he-pure", "1.0", "pip", sdist.url, "pkgc_he_pure-1.0-py3-none-any.whl", "b" * 64, sdist=sdist)
    other = replace(built, filename="pkgc_he_pure-1.0-py2.py3-none-any.whl", sha256="c" * 64)
    path = tmp_path / "lock.yml"
    write_lock([_lock(AMD64, built), _lock(ARM64, built)], path, [])
    custom = yaml.safe_load(path.read_text())["metadata"]["custom_metadata"]
    assert [k for k in custom if k.startswith("pkgc.built-wheel.")] == ["pkgc.built-wheel.pkgc-he-pure"]
    write_lock([_lock(AMD64, built), _lock(ARM64, other)], path, [])
    custom = yaml.safe_load(path.read_text())["metadata"]["custom_metadata"]
    assert custom["pkgc.built-wheel.linux-aarch64/pkgc-he-pure"] == f"{other.filename} sha256:{'c' * 64}"
    assert read_lock(path, platform=AMD64).packages[-1] == built and read_lock(path, platform=ARM64).packages[-1] == other


def test_the_resolvers_are_asked_for_the_target():
    assert uv_platform(28, ARM64) == "aarch64-manylinux_2_28" and uv_platform(28) == "x86_64-manylinux_2_28"
    arm = platform_args(PYTHON, "2.31", ARM64)
    tags = [arm[i + 1] for i, a in enumerate(arm) if a == "--platform"]
    assert tags[0] == "manylinux_2_31_aarch64" and tags[-1] == "manylinux2014_aarch64" and all(t.endswith("_aarch64") for t in tags)
    assert "--only-binary=:all:" in arm


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_uv_and_pip_lock_the_targets_wheel(resolver, monkeypatch):
    monkeypatch.setenv("PKGC_RESOLVER", resolver)
    (arm,) = resolve_pip(["markupsafe==2.1.5"], PYTHON, platform=ARM64)
    assert (arm.filename, arm.sha256) == (MARKUPSAFE[ARM64].filename, MARKUPSAFE[ARM64].sha256)


def _built(cache_root: Path, sdist: SourceDist, filename: str, module: str) -> Path:
    """A wheel as pkgc keeps one built from ``sdist`` (``<cache>/built/<sdist sha256>/``): the build is
    test_sdist.py's; here the lock's use of it for another platform."""
    folder = cache_root / "built" / sdist.sha256
    folder.mkdir(parents=True)
    name, version = filename.split("-")[:2]
    info = f"{name}-{version}.dist-info"
    tag = "-".join(filename.removesuffix(".whl").split("-")[2:])
    with zipfile.ZipFile(folder / filename, "w") as zf:
        zf.writestr(f"{module}.py", "ANSWER = 42\n")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        zf.writestr(f"{info}/RECORD", "")
    return folder / filename


def test_a_wheel_built_from_an_sdist_serves_an_arm64_lock_only_when_pure(index, tmp_path):  # noqa: F811
    """The resolve with pip around it is test_sdist.py's (about 25 s: pip prepares the sdists' metadata)."""
    wheel = _built(tmp_path, index["pure"], "pkgc_he_pure-1.0-py3-none-any.whl", "pkgc_he_pure")
    built = build_wheel("pkgc-he-pure", "1.0", index["pure"], PYTHON, tmp_path)
    assert built.path == wheel and runs_on(LockedPackage("pkgc-he-pure", "1.0", "pip", "", wheel.name, built.sha256), ARM64)
    _built(tmp_path, index["cext"], "pkgc_he_cext-1.0-cp311-cp311-linux_x86_64.whl", "pkgc_he_cext")
    with pytest.raises(LockError, match=r"^pkgc-he-cext 1\.0 is published only as a source distribution \(pkgc-he-cext-1\.0\.tar\.gz\) "
                                        r"and it builds a platform-specific wheel \(pkgc_he_cext-1\.0-cp311-cp311-linux_x86_64\.whl\)"):
        build_wheel("pkgc-he-cext", "1.0", index["cext"], PYTHON, tmp_path)


def _console_wheel(folder: Path) -> Path:
    path = folder / "pkgc_tool-1.0-py3-none-any.whl"
    info = "pkgc_tool-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkgc_tool.py", "def main():\n    return 0\n")
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: pkgc-tool\nVersion: 1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/entry_points.txt", "[console_scripts]\npkgc-tool = pkgc_tool:main\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_fetch_and_assemble_an_arm64_venv_from_real_wheels(tmp_path):
    six = LockedPackage("six", "1.16.0", "pip", f"{FILES}/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/"
                        "six-1.16.0-py2.py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl",
                        "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254")  # fmt: skip
    cache = PackageCache(tmp_path / "cache")
    arm = fetch_lock(_lock(ARM64, six), cache)
    amd = fetch_lock(Lock("venv", PYTHON, "", (six,), platform=AMD64), cache)  # nothing to download
    assert arm.path_of(six) == amd.path_of(six) and len(list(cache.root.glob("*/six-*.whl"))) == 1  # a pure wheel, stored once
    target = VenvTarget("/opt/pkgc/venv", PYTHON, "/usr/bin", f"{PYTHON}.2")
    root = assemble_venv([arm.path_of(MARKUPSAFE[ARM64]), arm.path_of(six), _console_wheel(tmp_path)], target, tmp_path / "arm")
    assert (root / "bin" / "pkgc-tool").read_text().startswith("#!/opt/pkgc/venv/bin/python\n")  # the image's interpreter
    assert "home = /usr/bin\n" in (root / "pyvenv.cfg").read_text() and str(Path(root / "bin" / "python").readlink()) == "/usr/bin/python3"
    elf = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and elf_machine(p) is not None]
    assert elf and {elf_machine(p) for p in elf} == {ARM64.elf_machine}
    assert any(rel.endswith("_speedups.cpython-311-aarch64-linux-gnu.so") for rel, _name in scan_elf(root, target.prefix, ARM64).provided)
    with pytest.raises(LockError, match=r"^MarkupSafe: /opt/pkgc/venv/lib/python3\.11/site-packages/markupsafe/_speedups\..*\.so "
                                        r"is code for linux/arm64, which the linux/amd64 image cannot run"):
        scan_elf(root, target.prefix, AMD64)


def test_library_folders_are_the_targets():
    assert "usr/lib/aarch64-linux-gnu" in standard_dirs(ARM64) and not any("x86_64" in d for d in standard_dirs(ARM64))
    assert "usr/lib/x86_64-linux-gnu" in standard_dirs(AMD64)


def test_conda_solves_and_lays_out_the_targets_subdir(tmp_path):
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    packages = [
        CondaPackage("pkgc-native", "1.0", {"lib/libnative.so": b"x86"}, build="h64_0", subdir="linux-64"),
        CondaPackage("pkgc-native", "1.0", {"lib/libnative.so": b"arm"}, build="haarch64_0", subdir="linux-aarch64"),
    ]
    channel = build_channel(tmp_path / "channel", packages)
    strategy = EnvironmentStrategy("conda", python, "test", pip=(), conda=("pkgc-native", f"python=={python}.*"), channels=(channel.url,))
    (arm,) = resolve_conda(strategy, platform=ARM64)
    (amd,) = resolve_conda(strategy)
    assert (arm.build, amd.build) == ("haarch64_0", "h64_0") and arm.url.endswith("/linux-aarch64/pkgc-native-1.0-haarch64_0.tar.bz2")
    cache = PackageCache(tmp_path / "cache")
    lock = Lock("conda", python, inputs_hash(strategy, ARM64), (arm,), strategy.channels, ARM64)
    fetched = fetch_lock(lock, cache)
    laid_out = {f.dest for f in channel_files(lock.of("conda"), fetched, ARM64)}
    assert "pkgc/channel/linux-aarch64/pkgc-native-1.0-haarch64_0.tar.bz2" in laid_out and "pkgc/channel/linux-aarch64/repodata.json" in laid_out
    with pytest.raises(BuildError, match=r"pkgc-native-1\.0-haarch64_0\.tar\.bz2 is for 'linux-aarch64', not linux-64 \(linux/amd64\)"):
        channel_files(lock.of("conda"), fetched, AMD64)
    # linked on the host for the arm64 image: the lock's linux-aarch64 entries, rattler told the target's subdir
    installer = installer_lock(lock)
    by_file = {p.filename: fetched.path_of(p) for p in lock.of("conda")}
    assert locked_packages(installer, by_file, AMD64)[2] == []
    _python, has_python, files = locked_packages(installer, by_file, ARM64)
    assert [f.file_name for f in files] == [arm.filename] and not has_python
    root = assemble_conda_env(files, [], CondaTarget("/opt/pkgc/env", python, "/usr/bin"), tmp_path / "staging", platform=ARM64)
    assert (root / "lib" / "libnative.so").read_bytes() == b"arm"
    assert json.loads(next((root / "conda-meta").glob("pkgc-native-*.json")).read_text())["subdir"] == "linux-aarch64"
