"""pkgc's conda installer: create a locked conda environment without a conda binary.

Runs inside the image's builder stage, with the network off, on py-rattler and the standard
library only. It reads the lock (conda-lock's format, written as JSON, which is YAML too), checks
every conda package file of the local channel against the lock's sha256, and links exactly those
packages into the prefix with ``rattler.install``: no solve, no download, no link scripts.

When the lock has no ``python`` package (its channels carry none), the environment is built on the
base image's Python: the prefix is first made a virtual environment of ``--base-python`` (whose X.Y
must be the lock's), and a stand-in ``python`` record, never installed, tells rattler where
noarch python packages go (``lib/pythonX.Y/site-packages``) and which interpreter their entry
points use (``bin/pythonX.Y``).

usage: install_conda_env.py LOCK CHANNEL PREFIX [--base-python python3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

PLATFORM = "linux-64"
SUBDIRS = (PLATFORM, "noarch")
CHUNK = 1 << 20


class InstallError(Exception):
    """A problem the build must stop on; its message is one line."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def read_lock(path: Path) -> tuple[str, list[dict]]:
    """The lock's Python (X.Y) and its linux-64 conda entries."""
    try:
        data = json.loads(path.read_text())
        python = str(data["metadata"].get("custom_metadata", {}).get("pkgc.python", ""))
        entries = [p for p in data["package"] if p["manager"] == "conda" and p["platform"] == PLATFORM]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InstallError(f"{path}: not a conda-lock file in JSON form ({exc})") from None
    return python, entries


def package_file(channel: Path, entry: dict) -> Path:
    """Where the entry's file sits in the local channel: ``<channel>/<subdir>/<file name>``."""
    name = PurePosixPath(unquote(urlparse(entry["url"]).path)).name
    found = [channel / subdir / name for subdir in SUBDIRS if (channel / subdir / name).is_file()]
    return found[0] if found else channel / PLATFORM / name


def verify(channel: Path, entries: list[dict]) -> dict[str, dict]:
    """file name -> lock entry, after checking each file's sha256 against the lock."""
    by_name = {}
    for entry in entries:
        path = package_file(channel, entry)
        expected = (entry.get("hash") or {}).get("sha256")
        if not expected:
            raise InstallError(f"the lock gives no sha256 for {entry['name']}; refusing to install an unhashed package")
        if not path.is_file():
            raise InstallError(f"{path} is missing from the local channel ({entry['name']} {entry['version']})")
        actual = sha256_of(path)
        if actual != expected:
            raise InstallError(f"{path.name}: sha256 is {actual}, the lock says {expected}; refusing to install")
        by_name[path.name] = entry
    return by_name


def channel_records(channel: Path, wanted: dict[str, dict]) -> list:
    """The local channel's repodata records of exactly the locked files."""
    from rattler import Channel, RepoData

    records = []
    for subdir in SUBDIRS:
        repodata = channel / subdir / "repodata.json"
        if repodata.is_file():
            records += RepoData.from_path(repodata).into_repo_data(Channel(channel.resolve().as_uri()))
    chosen = {r.file_name: r for r in records if r.file_name in wanted}
    missing = sorted(set(wanted) - set(chosen))
    if missing:
        raise InstallError(f"the local channel's repodata has no record of {', '.join(missing)}")
    for name, record in chosen.items():
        if record.sha256 is None or record.sha256.hex() != wanted[name]["hash"]["sha256"]:
            raise InstallError(f"the local channel's record of {name} does not match the lock's sha256")
    return [chosen[name] for name in sorted(chosen)]


def base_python_version(base_python: str) -> str:
    code = "import sys; print('.'.join(map(str, sys.version_info[:3])))"
    proc = subprocess.run([base_python, "-c", code], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"cannot run the base image's Python '{base_python}': {proc.stderr.strip()[-200:]}")
    return proc.stdout.strip()


def base_python_record(base_python: str, lock_python: str, prefix: Path):
    """Make ``prefix`` a virtual environment of the base image's Python; a stand-in record for it."""
    from rattler import BuildString, PackageRecord, RepoDataRecord

    version = base_python_version(base_python)
    if lock_python and not (version + ".").startswith(lock_python + "."):
        raise InstallError(
            f"the lock has no conda python package, so the environment uses the base image's Python, "
            f"but {base_python} is {version} and the lock is for Python {lock_python}"
        )
    proc = subprocess.run([base_python, "-m", "venv", str(prefix)], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"cannot create a virtual environment at {prefix}: {proc.stderr.strip()[-300:]}")
    record = PackageRecord(
        name="python", version=version, build=BuildString("base_image"), build_number=0, subdir=PLATFORM
    )
    name = f"python-{version}-base_image.tar.bz2"
    return RepoDataRecord(record, name, f"file:///nonexistent/base-image/{name}", "file:///nonexistent/base-image/")


async def link(records: list, prefix: Path, ignored: set[str]) -> None:
    import rattler
    from rattler import Client, Config

    remote = [r.url for r in records if not r.url.startswith("file://") and r.name.normalized not in ignored]
    if remote:
        raise InstallError(f"refusing to download {remote[0]}: only the local channel is used")
    # No request can leave the builder (file:// URLs only, checked above, and the network is off),
    # but rattler builds an HTTP client anyway, which fails when no CA store exists, as in base
    # images without CA certificates: build it without loading one.
    client = Client.from_config(Config.from_toml("tls-no-verify = true"))
    with tempfile.TemporaryDirectory(prefix="pkgc-rattler-cache-") as cache:
        await rattler.install(
            records, prefix, cache_dir=Path(cache), ignored_packages=ignored or None,
            execute_link_scripts=False, show_progress=False, client=client,
        )  # fmt: skip


def install(lock: Path, channel: Path, prefix: Path, base_python: str) -> str:
    python, entries = read_lock(lock)
    wanted = verify(channel, entries)
    records = channel_records(channel, wanted)
    ignored: set[str] = set()
    origin = "conda"
    if not any(e["name"] == "python" for e in entries):
        records.append(base_python_record(base_python, python, prefix))
        ignored.add("python")
        origin = f"the base image ({base_python})"
    try:
        asyncio.run(link(records, prefix, ignored))
    except InstallError:
        raise
    except Exception as exc:  # noqa: BLE001 - rattler's errors: linking, clobbering, broken archives
        detail = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise InstallError(f"rattler could not link the packages into {prefix}: {detail[:500]}") from None
    return f"pkgc: installed {len(entries)} conda packages into {prefix}; Python from {origin}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="install a locked conda environment from a local channel")
    parser.add_argument("lock", type=Path)
    parser.add_argument("channel", type=Path)
    parser.add_argument("prefix", type=Path)
    parser.add_argument("--base-python", default="python3", help="the base image's Python, when the lock has none")
    args = parser.parse_args(argv)
    try:
        print(install(args.lock, args.channel, args.prefix, args.base_python), flush=True)
    except InstallError as exc:
        print(f"pkgc: conda environment not installed: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
