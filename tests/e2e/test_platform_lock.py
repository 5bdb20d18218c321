"""The bundled sklearn example locked for linux/amd64 and linux/arm64 in one conda-lock file on this x86
host, its arm64 wheels fetched through the shared cache and its arm64 venv assembled: every ELF file in
it is AArch64, and the amd64 side of the file is what a lock made without a platform holds."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from compiler.commands import connect_engine
from compiler.envbuild.elf import elf_machine
from compiler.envbuild.libraries import scan_elf
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.lock.locker import load_or_lock
from compiler.lock.lockfile import read_lock, read_locks
from compiler.options import load_options
from compiler.pipeline import BuildRequest, load_spec, resolve
from compiler.platform import AMD64, ARM64
from compiler.reporter import Reporter
from tests.conftest import EXAMPLE, run_pkgc

pytestmark = pytest.mark.engine


def _side(path: Path, subdir: str) -> tuple[str, list[dict]]:
    data = yaml.safe_load(path.read_text())
    return data["metadata"]["content_hash"][subdir], [p for p in data["package"] if p["platform"] == subdir]


def test_sklearn_locked_for_amd64_and_arm64_in_one_file(tmp_path, registered, session_env):
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("*.conda-lock.yml", "__pycache__"))
    spec = example / "package-moe.yml"
    started = time.monotonic()
    proc = run_pkgc("lock", str(spec), "--model", registered["model"], "--json", env=session_env)  # no platform: the host's
    assert proc.returncode == 0, proc.stderr
    host_only = Path(json.loads(proc.stdout)["lock_file"])

    options = load_options(environ=session_env)
    request = BuildRequest(spec_path=spec, model=registered["model"])
    reporter = Reporter(quiet=True)
    strategy = resolve(load_spec(request, reporter), request, options, connect_engine, reporter).strategy
    both = tmp_path / "both.conda-lock.yml"
    locked = load_or_lock(strategy, both, relock=False, sources=[spec.name], cache_root=options.cache_dir,
                          platforms=(AMD64, ARM64))  # fmt: skip
    print(f"locked for two platforms in {time.monotonic() - started:.1f} s")
    assert locked.status == "created" and list(locked.locks) == [AMD64, ARM64]
    assert yaml.safe_load(both.read_text())["metadata"]["platforms"] == ["linux-64", "linux-aarch64"]
    assert _side(both, "linux-64") == _side(host_only, "linux-64")  # the amd64 side: the same entries, the same hash
    assert read_locks(both)[AMD64] == read_lock(host_only)
    arm = locked.locks[ARM64]
    assert {p.name for p in arm.packages} == {p.name for p in locked.lock.packages}
    assert any(p.filename.endswith("_aarch64.whl") for p in arm.packages)
    assert not any("x86_64" in p.filename for p in arm.packages)
    # the current command line (the host's platform) accepts the two-platform lock
    check = run_pkgc("lock", str(spec), "--model", registered["model"], "--check", "--lock-file", str(both), env=session_env)
    assert check.returncode == 0, check.stderr

    started = time.monotonic()
    fetched = fetch_lock(arm, PackageCache(options.cache_dir))
    print(f"fetched the arm64 wheels in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    target = VenvTarget("/opt/pkgc/venv", strategy.python, "/usr/bin")
    root = assemble_venv([fetched.path_of(p) for p in arm.packages], target, tmp_path / "staging", workers=2)
    print(f"assembled the arm64 venv in {time.monotonic() - started:.1f} s")
    machines: dict[int, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and (machine := elf_machine(path)) is not None:
            machines.setdefault(machine, []).append(path.relative_to(root).as_posix())
    assert list(machines) == [ARM64.elf_machine], {m: files[:3] for m, files in machines.items()}
    assert len(machines[ARM64.elf_machine]) > 50  # numpy, scipy and scikit-learn's extensions and bundled libraries
    assert scan_elf(root, target.prefix, ARM64).wanted  # the library check reads them for the arm64 image
