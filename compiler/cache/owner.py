"""Staging that names its owner: temporary folders and files in the cache carry the pid and start
time of the process that made them (``<prefix><pid>.<start>-<random>``), so a later run can tell the
staging of a killed build (its process is gone, or the pid now belongs to another process) from the
staging of a build still running, as ``compiler/workspace/reservations.py`` does for versions."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_TAG = re.compile(r"(?:^|[-.])(?P<pid>\d+)\.(?P<start>\d+)-")  # tempfile's random part holds no '.' or '-'


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat``), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read(4096)
    except OSError:
        return None
    fields = stat.rpartition(b")")[2].split()
    try:
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3
    except (IndexError, ValueError):
        return None


def owner_tag() -> str:
    """This process's tag: ``<pid>.<start time>`` (start 0 where /proc is not readable)."""
    return f"{os.getpid()}.{_start_time(os.getpid()) or 0}"


def _alive(pid: int, start: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _start_time(pid)
    return start == 0 or now is None or now == start  # another start time: the pid was reused


def owner_alive(name: str, prefix: str) -> bool | None:
    """Whether the process that made the staging entry ``name`` (made with ``prefix``) still runs;
    None when the name carries no tag (made by an older pkgc: its owner is unknown)."""
    match = _TAG.search(name, len(prefix) - 1) if name.startswith(prefix) else None
    if match is None:
        return None
    return _alive(int(match["pid"]), int(match["start"]))


def staging_name(prefix: str) -> str:
    """The prefix of a new staging entry of this process (``tempfile`` adds the random part)."""
    return f"{prefix}{owner_tag()}-"


@contextmanager
def staging_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A temporary folder in ``parent`` named for this process, removed when the block ends; one a
    killed process leaves is removed by the next run (``compiler.cache.sweep``)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=staging_name(prefix), dir=parent))
    try:
        yield folder
    finally:
        remove_tree(folder)


def remove_tree(path: Path) -> None:
    """Remove a file or folder, best effort: entries that are not writable are made so first (a
    wheel may install read-only files), what cannot go stays."""

    def retry(function, name, _exc) -> None:
        try:
            os.chmod(os.path.dirname(name), 0o700)
            function(name)
        except OSError:
            pass

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=retry)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
