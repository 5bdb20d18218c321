"""sha256 of large files, remembered by what the kernel says about them, so a rebuild reads no byte
of a model that did not change.

A file's digest is kept under its (device, inode) with its size, mtime and ctime (nanoseconds) as
the proof that it is the same content: writing a file or changing its mode moves its ctime, which no
user can set back. Like git's racy-clean rule, a file whose ctime is less than ``RACY_S`` before it
was hashed is not remembered (it may still be changing within one clock tick). pkgc's own read-only
stored files are remembered without their ctime (``trusted``): hard-linking a stored file into another
tree moves its ctime, not its content. Only files of at least ``MIN_SIZE`` bytes are kept: smaller ones
cost less to hash than to look up.

The cache never changes what is built, only whether bytes are read again: an unreadable, locked or
corrupt database behaves as an empty one. It is one SQLite file in pkgc's cache, shared safely by
concurrent builds.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

MIN_SIZE = 1 << 20
RACY_S = 1.0
MAX_ROWS = 200_000  # beyond this the oldest rows go: a bounded file whatever is hashed
FILE_NAME = "file-digests.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS digests (dev INTEGER, ino INTEGER, size INTEGER, mtime INTEGER, ctime INTEGER,"
    " sha256 TEXT NOT NULL, seen REAL NOT NULL, PRIMARY KEY (dev, ino))"
)


def _facts(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def same_state(before: os.stat_result, after: os.stat_result) -> bool:
    """The same file in the same state: a file read between the two stats held still."""
    return (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
        after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns
    )  # fmt: skip


class DigestCache:
    """Digests of files by their stat facts, in one SQLite file (opened on first use)."""

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._broken = False

    @classmethod
    def in_cache(cls, cache_dir: Path) -> DigestCache:
        return cls(Path(cache_dir) / FILE_NAME)

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                db.execute(_SCHEMA)
                self._db = db
            except (OSError, sqlite3.Error):
                self._broken = True
        return self._db

    def lookup(self, st: os.stat_result) -> str | None:
        """The sha256 remembered for exactly this file state, or None."""
        if st.st_size < MIN_SIZE or (db := self._connect()) is None:
            return None
        dev, ino, size, mtime, ctime = _facts(st)
        try:
            row = db.execute(
                "SELECT sha256 FROM digests WHERE dev=? AND ino=? AND size=? AND mtime=? AND (ctime=? OR ctime=-1)",
                (dev, ino, size, mtime, ctime),
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row and isinstance(row[0], str) and len(row[0]) == 64 else None

    def remember(self, st: os.stat_result, sha256: str, hashed_at: float, trusted: bool = False) -> None:
        """Keep ``sha256`` for the file state ``st`` (the state before and after it was read)."""
        if st.st_size < MIN_SIZE or (not trusted and st.st_ctime_ns / 1e9 > hashed_at - RACY_S):
            return
        if (db := self._connect()) is None:
            return
        try:
            facts = _facts(st)[:4] + ((-1,) if trusted else _facts(st)[4:])
            db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)", (*facts, sha256, time.time()))
            if db.execute("SELECT COUNT(*) FROM digests").fetchone()[0] > MAX_ROWS:
                db.execute("DELETE FROM digests WHERE rowid IN (SELECT rowid FROM digests ORDER BY seen LIMIT ?)",
                           (MAX_ROWS // 10,))  # fmt: skip
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
