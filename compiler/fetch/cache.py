"""A host cache of package files keyed by sha256; pip downloads what is missing (with the lock's target
platform's options: an arm64 lock fetches arm64 wheels on an x86 host), nothing is trusted without its
hash. The cache is content-addressed, so a pure wheel shared by the locks of several platforms is
stored once. The image build later installs only from these files, with the network off."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compiler.cache.lru import last_use, mark_used
from compiler.cache.owner import staging_name
from compiler.errors import BuildError
from compiler.fetch.sdist import build_wheel
from compiler.lock.types import Lock, LockedPackage
from compiler.lock.wheel_tags import check_wheels
from compiler.platform import AMD64, Platform
from compiler.workspace.digest_cache import DigestCache, same_state
from compiler.workspace.trees import file_sha256


@dataclass(frozen=True)
class FetchedFiles:
    """Each locked package's verified file in the cache."""

    files: dict[str, Path]  # sha256 -> path

    def path_of(self, package: LockedPackage) -> Path:
        return self.files[package.sha256]


MARK_USED_EVERY_S = 3600.0  # a file already marked used this recently is not marked again (its mtime holds still)


class PackageCache:
    def __init__(self, root: Path):
        self.cache_root = root  # also holds built/<sdist sha256>/ (compiler/fetch/sdist.py)
        self.root = root / "files"
        self.digests = DigestCache.in_cache(root)  # <cache>/file-digests.sqlite, shared with the workspace's files

    def path_for(self, package: LockedPackage) -> Path:
        return self.root / package.sha256 / package.filename

    def verified(self, package: LockedPackage) -> Path | None:
        """The cached file, or None; a file whose content no longer matches its hash is refused. A
        file found is marked used (``pkgc cache prune --max-size`` evicts the least recently used)
        unless it was within the last hour.

        A large file's digest is remembered by its state (``compiler/workspace/digest_cache.py``, as
        pkgc's own stored files: inode, size and mtime), so a rebuild does not read the environment's
        wheels again; a file written since (its mtime moves) is read and checked again."""
        path = self.path_for(package)
        try:
            st = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        actual = self.digests.lookup(st)
        known = actual is not None
        if actual is None:
            actual = file_sha256(path)
        if actual != package.sha256:
            raise BuildError(
                f"cached file {path} is corrupt or tampered: its sha256 is {actual}, the lock says "
                f"{package.sha256}; delete it and build again"
            )
        if not known or time.time() - last_use(st) > MARK_USED_EVERY_S:
            held_still = known or same_state(st, path.stat())  # nothing wrote it while it was read
            mark_used(path)
            if held_still:
                self.digests.remember(path.stat(), actual, 0.0, trusted=True)  # its state as marked used
        return path

    def add(self, source: Path, package: LockedPackage) -> Path:
        actual = file_sha256(source)
        if actual != package.sha256:
            raise BuildError(f"downloaded {source.name} has sha256 {actual}, the lock says {package.sha256}")
        target = self.path_for(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=staging_name(".partial-"), dir=target.parent)  # a killed run's: swept by the next
        os.close(fd)
        try:
            shutil.copyfile(source, name)
            os.chmod(name, 0o644)  # as a plain copy gets it (mkstemp makes 0600)
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return target


Progress = Callable[[int], None]  # bytes of the lock's files at hand so far


def _folder_bytes(folder: Path) -> int:
    """The bytes pip has put in ``folder`` so far (its requirements file aside)."""
    total = 0
    for path in folder.iterdir():
        if path.name == "requirements.txt":
            continue
        try:
            total += path.stat().st_size
        except OSError:  # pip renames its partial files as it goes
            pass
    return total


def _pip_download(
    packages: list[LockedPackage], python: str, dest: Path, progress: Progress = lambda _n: None, platform: Platform = AMD64
) -> None:
    req = dest / "requirements.txt"
    req.write_text("".join(f"{p.pip_line}\n" for p in packages))
    from compiler.lock.pip_resolve import newest_manylinux, platform_args  # only when something is missing

    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet",
        "--disable-pip-version-check", "-d", str(dest),
        *platform_args(python, newest_manylinux([p.filename for p in packages]), platform), "-r", str(req),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:  # the bytes downloaded so far, twice a second, while pip runs
        try:
            _, stderr = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            progress(_folder_bytes(dest))
    progress(_folder_bytes(dest))
    if proc.returncode != 0:
        tail = " | ".join(l for l in stderr.strip().splitlines()[-4:] if "is ignored" not in l)
        raise BuildError(f"cannot fetch locked pip packages: {tail}")


def _rebuilt(package: LockedPackage, python: str, cache: PackageCache, log) -> Path:
    """A locked wheel pkgc built from a source distribution: built again (once, in the cache) when
    missing; the rebuild must give the very bytes the lock pinned."""
    wheel = build_wheel(package.name, package.version, package.sdist, python, cache.cache_root, log)
    if wheel.sha256 != package.sha256 or wheel.filename != package.filename:
        raise BuildError(
            f"the wheel built from {package.sdist.filename} is {wheel.filename} with sha256 {wheel.sha256}, "
            f"the lock pinned {package.filename} with sha256 {package.sha256}; re-lock with 'pkgc build --relock'"
        )
    return cache.add(wheel.path, package)


def fetch_lock(lock: Lock, cache: PackageCache, log=lambda _msg: None, progress: Progress = lambda _n: None) -> FetchedFiles:
    """Make sure every package of ``lock`` is in the cache with the right hash; ``progress`` hears
    the bytes at hand so far (cached files as they are checked, then downloads as they come). A wheel
    the lock's platform cannot run is refused before anything is fetched."""
    check_wheels(lock, f"the lock for {lock.platform}")
    files: dict[str, Path] = {}
    missing_pip: list[LockedPackage] = []
    at_hand, reported = 0, time.monotonic()
    for package in lock.packages:
        path = cache.verified(package)
        if path is not None:
            files[package.sha256] = path
            at_hand += path.stat().st_size
            if time.monotonic() - reported > 0.2:
                progress(at_hand)
                reported = time.monotonic()
        elif package.sdist is not None:
            files[package.sha256] = _rebuilt(package, lock.python, cache, log)
        elif package.manager == "pip":
            missing_pip.append(package)
        else:
            from compiler.fetch.conda_fetch import fetch_conda_package

            files[package.sha256] = fetch_conda_package(package, cache)
    if missing_pip:
        log(f"fetching {len(missing_pip)} pip packages on the host")
        with tempfile.TemporaryDirectory(prefix="pkgc-fetch-") as tmp:
            _pip_download(missing_pip, lock.python, Path(tmp), lambda n: progress(at_hand + n), lock.platform)
            for package in missing_pip:
                downloaded = Path(tmp) / package.filename
                if not downloaded.is_file():
                    raise BuildError(f"pip did not download {package.filename}")
                files[package.sha256] = cache.add(downloaded, package)
    progress(sum(path.stat().st_size for path in files.values()))
    return FetchedFiles(files)
