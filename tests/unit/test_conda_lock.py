"""The conda path without a conda binary: a real rattler solve against a local channel, the lock's
round trip through conda-lock's format, the host cache refusing tampered files, and the in-image
installer (run here on the host) linking exactly the locked, hash-checked packages."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import BuildError, LockError
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.fetch.conda_fetch import fetch_conda_package
from compiler.lock.conda_resolve import resolve_conda, to_conda_spec
from compiler.lock.lockfile import read_lock, write_lock
from compiler.lock.types import Lock, LockedPackage, inputs_hash
from compiler.fetch.conda_inputs import channel_files
from compiler.plan.conda import installer_lock
from compiler.plan.types import ContextFile
from compiler.resources import templates_dir
from tests.e2e.conda_channel import CondaPackage, build_channel, demo_packages

INSTALLER = templates_dir() / "runtime" / "install_conda_env.py"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    return build_channel(tmp_path_factory.mktemp("conda") / "channel", demo_packages())


def strategy_for(channels: tuple[str, ...], *conda: str, python: str = PYTHON) -> EnvironmentStrategy:
    specs = tuple(sorted(conda + (f"python=={python}.*", "pip")))
    return EnvironmentStrategy("conda", python, "test", pip=(), conda=specs, channels=channels)


@pytest.fixture(scope="module")
def locked(channel) -> Lock:
    strategy = strategy_for((channel.url,), "pkgc-demo==1.*")
    packages = tuple(resolve_conda(strategy))
    return Lock("conda", PYTHON, inputs_hash(strategy), packages, strategy.channels)


@pytest.mark.parametrize(
    ("line", "match_spec"),
    [
        ("numpy==1.2.*", "numpy 1.2.*"),
        ("python==3.11.*", "python 3.11.*"),
        ("pip", "pip"),
        ("scipy>=1.10,<2", "scipy >=1.10,<2"),
        ("libfoo==1.0.0_1", "libfoo ==1.0.0_1"),
        ("bar===2.0", "bar ==2.0"),
    ],
)
def test_pip_syntax_becomes_a_match_spec(line, match_spec):
    assert to_conda_spec(line).match_spec == match_spec


def test_solve_pins_the_locked_set_with_hashes(locked, channel):
    by_name = {p.name: p for p in locked.packages}
    assert set(by_name) == {"pkgc-demo", "pkgc-demo-data"}  # python and pip come from the base image
    assert by_name["pkgc-demo"].version == "1.2.0" and by_name["pkgc-demo"].build == "pyh0_0"
    for package in locked.packages:
        path = channel.files[package.filename]
        assert package.manager == "conda" and package.url == path.resolve().as_uri()
        assert package.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert package.md5 == hashlib.md5(path.read_bytes()).hexdigest()


def test_a_channel_python_is_locked_like_any_package(tmp_path):
    python = CondaPackage("python", f"{PYTHON}.9", {"bin/placeholder": b""}, build="h0_0_cpython", subdir="linux-64")
    pip = CondaPackage(
        "pip", "24.0", {"site-packages/pip/__init__.py": b""}, noarch="python", depends=("python >=3.8",)
    )
    local = build_channel(tmp_path / "channel", demo_packages() + [python, pip])
    names = {p.name: p.version for p in resolve_conda(strategy_for((local.url,), "pkgc-demo"))}
    assert names == {"pkgc-demo": "2.0.0", "pip": "24.0", "python": f"{PYTHON}.9"}


@pytest.mark.parametrize("name", ["conda-forge", "file:///nonexistent/pkgc-channel"])
def test_an_unreachable_channel_is_one_clear_line(name):
    with pytest.raises(LockError) as caught:
        resolve_conda(strategy_for((name,), "numpy"))
    message = str(caught.value)
    assert f"cannot fetch conda channel '{name}'" in message and "\n" not in message


def test_an_unsatisfiable_request_names_the_package(channel):
    with pytest.raises(LockError, match=r"pkgc-demo==3\.\*"):
        resolve_conda(strategy_for((channel.url,), "pkgc-demo==3.*"))


def test_no_channels_is_an_error():
    with pytest.raises(LockError, match="names no channels"):
        resolve_conda(strategy_for((), "pkgc-demo"))


def test_lock_round_trips_through_conda_lock_format(locked, tmp_path):
    path = tmp_path / "package.conda-lock.yml"
    write_lock(locked, path, ["package.yml"])
    assert read_lock(path) == locked


def test_installer_lock_is_conda_lock_json(locked, tmp_path):
    path = tmp_path / "installer.conda-lock.yml"
    path.write_bytes(installer_lock(locked))
    assert json.loads(path.read_text())["version"] == 1
    assert read_lock(path).packages == locked.packages  # conda-lock's own parser reads it


def test_fetch_brings_the_file_into_the_cache(locked, tmp_path):
    cache = PackageCache(tmp_path / "cache")
    package = locked.packages[0]
    path = fetch_conda_package(package, cache)
    assert path == cache.path_for(package) and path.read_bytes()
    assert fetch_lock(locked, cache).path_of(package) == path


def test_a_tampered_cache_file_is_refused(locked, tmp_path):
    cache = PackageCache(tmp_path / "cache")
    fetch_lock(locked, cache)
    victim = cache.path_for(locked.packages[0])
    victim.write_bytes(victim.read_bytes() + b"tampered")
    with pytest.raises(BuildError, match="corrupt or tampered"):
        fetch_lock(locked, cache)


def test_a_file_that_does_not_match_the_lock_never_enters_the_cache(locked, tmp_path):
    package = locked.packages[0]
    wrong = LockedPackage(
        package.name, package.version, "conda", package.url, package.filename, "0" * 64, None, package.build
    )
    cache = PackageCache(tmp_path / "cache")
    with pytest.raises(BuildError, match="sha256"):
        fetch_conda_package(wrong, cache)
    assert not cache.path_for(wrong).exists()


def write_context(files: list[ContextFile], root: Path) -> None:
    for item in files:
        target = root / item.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data if item.data is not None else item.source.read_bytes())


@pytest.fixture
def context(locked, tmp_path) -> Path:
    """The conda part of a build context: the local channel and the installer's lock."""
    fetched = fetch_lock(locked, PackageCache(tmp_path / "cache"))
    root = tmp_path / "context"
    write_context(channel_files(locked.packages, fetched), root)
    (root / "pkgc/conda-env.lock.json").write_bytes(installer_lock(locked))
    return root


def test_channel_repodata_covers_exactly_the_locked_packages(context, locked):
    noarch = json.loads((context / "pkgc/channel/noarch/repodata.json").read_text())
    assert sorted(noarch["packages"]) == sorted(p.filename for p in locked.packages)
    for package in locked.packages:
        assert noarch["packages"][package.filename]["sha256"] == package.sha256
        assert noarch["packages"][package.filename]["md5"] == package.md5
    assert json.loads((context / "pkgc/channel/linux-64/repodata.json").read_text())["packages"] == {}


def run_installer(context: Path, prefix: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(INSTALLER), str(context / "pkgc/conda-env.lock.json"), str(context / "pkgc/channel"),
               str(prefix), "--base-python", sys.executable]  # fmt: skip
    return subprocess.run(command, check=False, capture_output=True, text=True)


def test_installer_links_the_locked_packages_on_the_base_python(context, tmp_path):
    prefix = tmp_path / "env"
    proc = run_installer(context, prefix)
    assert proc.returncode == 0, proc.stderr
    assert "installed 2 conda packages" in proc.stdout
    assert (prefix / "conda-meta" / "pkgc-demo-1.2.0-pyh0_0.json").is_file()
    assert not list((prefix / "conda-meta").glob("python-*.json"))  # the stand-in python is never installed
    assert (prefix / "lib" / f"python{PYTHON}" / "site-packages" / "pkgc_demo" / "__init__.py").is_file()
    entry_point = subprocess.run([str(prefix / "bin" / "pkgc-demo")], check=False, capture_output=True, text=True)
    assert entry_point.stdout.strip() == "hello from a conda package"


def test_installer_refuses_a_tampered_package(context, locked, tmp_path):
    victim = context / "pkgc/channel/noarch" / locked.packages[0].filename
    victim.write_bytes(victim.read_bytes() + b"tampered")
    proc = run_installer(context, tmp_path / "env")
    assert proc.returncode == 3
    assert f"{victim.name}: sha256 is" in proc.stderr and "refusing to install" in proc.stderr
    assert not (tmp_path / "env").exists()


def test_installer_refuses_a_base_python_of_another_version(locked, tmp_path):
    other = Lock("conda", "3.6", locked.inputs_hash, locked.packages, locked.channels)
    fetched = fetch_lock(other, PackageCache(tmp_path / "cache"))
    root = tmp_path / "context"
    write_context(channel_files(other.packages, fetched), root)
    (root / "pkgc/conda-env.lock.json").write_bytes(installer_lock(other))
    proc = run_installer(root, tmp_path / "env")
    assert proc.returncode == 3
    assert "the lock is for Python 3.6" in proc.stderr


def test_fetched_files_are_what_the_plan_ships(locked, tmp_path):
    fetched = fetch_lock(locked, PackageCache(tmp_path / "cache"))
    shipped = {f.dest: f.source for f in channel_files(locked.packages, fetched) if f.source}
    assert shipped == {f"pkgc/channel/noarch/{p.filename}": fetched.path_of(p) for p in locked.packages}
