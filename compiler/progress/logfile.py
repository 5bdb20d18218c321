"""The full log of a run, kept in a file (every event, engine output included, with the time since
the start), whatever the screen shows; its tail is what a failed run prints."""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from compiler.progress.events import Event, MessageEvent
from compiler.progress.plain import plain_line

KEEP_LOGS = 20  # older logs in the folder are removed when a new one opens
TAIL_LINES = 20


class RunLog:
    """Lines of the log in memory (the tail) and, once ``open`` succeeded, in ``path``."""

    def __init__(self, clock=time.monotonic, tail_lines: int = 200):
        self.clock, self.started = clock, clock()
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._tail: deque[str] = deque(maxlen=tail_lines)

    def open(self, folder: Path, name: str) -> Path | None:
        """Start writing to ``folder/<name>-<UTC time>-<pid>.log``; None when the folder cannot be
        written (the run goes on, its tail kept in memory)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = folder / f"{name}-{stamp}-{os.getpid()}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", encoding="utf-8", errors="replace")
        except OSError:
            return None
        self.path = path
        try:
            self._file.write("".join(line + "\n" for line in self._tail))  # what was said before it opened
            self._file.flush()
        except OSError:
            self._drop_file()
        _prune(folder, keep=KEEP_LOGS)
        return path

    def write(self, event: Event) -> None:
        stage = event.stage or "-"
        if isinstance(event, MessageEvent):
            texts = [f"{event.level}: {t.rstrip()}" for t in event.text.splitlines() if t.strip()] or [f"{event.level}:"]
        else:
            texts = [plain_line(event)]
        lines = [f"{self.clock() - self.started:8.2f}s {stage:<9} {text}".rstrip() for text in texts]
        self._tail.extend(lines)
        if self._file is not None:
            try:
                self._file.write("".join(line + "\n" for line in lines))
                self._file.flush()
            except OSError:  # the disk filled up: the run goes on, its tail kept in memory
                self._drop_file()

    def _drop_file(self) -> None:
        file, self._file = self._file, None
        try:
            file.close()
        except OSError:
            pass

    def tail(self, lines: int = TAIL_LINES) -> tuple[str, ...]:
        return tuple(list(self._tail)[-lines:])

    def close(self) -> None:
        if self._file is not None:
            self._drop_file()


def _prune(folder: Path, keep: int) -> None:
    """Keep the newest ``keep`` logs of the folder (best effort: another run may be pruning too)."""
    try:
        logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in logs[keep:]:
        try:
            old.unlink()
        except OSError:
            pass
