"""Progress for people, on stderr (results go to stdout): stages with their bytes and times, the
messages said along the way, streamed engine output; every line also kept in the run's log file.

Stages call ``step``/``detail``/``build_output``/``warn`` as before, and wrap their work in
``with reporter.stage("fetch") as s: s.advance(bytes=n, total=t)``. The renderer
(compiler/progress/) decides what the screen shows: ``tty`` live lines, ``plain`` one line per
event, ``json`` one object per line; ``quiet`` keeps only warnings and errors."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rich.console import Console

from compiler.progress.events import Event, Failure, Level, MessageEvent, Renderer, StageEvent
from compiler.progress.logfile import RunLog


def stderr_console() -> Console:
    # emoji=False: a reference such as 'azureml:m:1' must print as written, not as ':m:' -> an emoji
    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def choose_mode(mode: str, console: Console) -> str:
    """``auto``: ``tty`` when stderr is a terminal, else ``plain``."""
    if mode != "auto":
        return mode
    return "tty" if console.is_terminal and not console.is_dumb_terminal else "plain"


def make_renderer(mode: str, console: Console) -> Renderer:
    if mode == "tty":
        from compiler.progress.tty import TtyRenderer

        return TtyRenderer(console)
    if mode == "json":
        from compiler.progress.json import JsonRenderer

        return JsonRenderer(None if console.stderr else console.file)
    from compiler.progress.plain import PlainRenderer

    return PlainRenderer(None if console.stderr else console.file)


class Stage:
    """A running stage: bytes moved (``advance``/``update``) and a ``note`` of what it came to."""

    def __init__(self, reporter: "Reporter", name: str, total: int | None = None):
        self.reporter, self.name = reporter, name
        self.started = time.monotonic()
        self.bytes: int | None = None
        self.total = total
        self.summary: str | None = None

    def event(self, status) -> StageEvent:
        return StageEvent(self.name, status, time.monotonic() - self.started, self.bytes, self.total, self.summary)

    def advance(self, bytes: int = 0, total: int | None = None) -> None:
        """``bytes`` more moved (``total``, when given, is the whole)."""
        self.update((self.bytes or 0) + bytes, total)

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` bytes moved so far (of ``total``, when given)."""
        self.bytes = done
        if total is not None:
            self.total = total
        self.reporter.emit(self.event("progress"))

    def note(self, summary: str) -> None:
        self.summary = summary


@dataclass
class Reporter:
    """Passed to the stages that talk; ``quiet`` keeps only warnings and errors."""

    quiet: bool = False
    console: Console = field(default_factory=stderr_console)
    mode: str = "plain"  # auto|tty|plain|json
    log: RunLog = field(default_factory=RunLog)

    def __post_init__(self) -> None:
        self.mode = choose_mode(self.mode, self.console)
        self.renderer: Renderer = make_renderer(self.mode, self.console)
        self._stages: list[Stage] = []
        self._lock = threading.RLock()
        self._closed = False

    def emit(self, event: Event) -> None:
        """Log every event; show it unless ``quiet`` hides it."""
        with self._lock:
            if not (isinstance(event, StageEvent) and event.status == "progress"):
                self.log.write(event)
            if not self.quiet or (isinstance(event, MessageEvent) and event.level in ("warn", "error")):
                self.renderer.handle(event)

    def _say(self, level: Level, message: str) -> None:
        self.emit(MessageEvent(level, message, self._stages[-1].name if self._stages else None))

    def step(self, message: str) -> None:
        self._say("step", message)

    def detail(self, message: str) -> None:
        self._say("detail", message)

    def build_output(self, text: str) -> None:
        """Engine output: into the log; on screen only in plain mode (json: as events)."""
        for line in text.splitlines():
            if line.strip():
                self._say("output", line)

    def warn(self, message: str) -> None:
        self._say("warn", message)

    def error(self, message: str) -> None:
        self._say("error", message)

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Stage]:
        """One line of the live view: started, moved, done (with its time) or failed."""
        stage = Stage(self, name, total)
        with self._lock:
            self._stages.append(stage)
        self.emit(stage.event("start"))
        try:
            yield stage
        except BaseException:
            self.emit(stage.event("failed"))
            raise
        else:
            self.emit(stage.event("done"))
        finally:
            with self._lock:
                self._stages.remove(stage)

    def keep_log(self, folder: Path, name: str) -> Path | None:
        """Keep the whole log in ``folder`` from now on (what was said before included)."""
        return self.log.open(folder, name)

    def close(self, failed: bool = False, errors: tuple[str, ...] | list[str] = ()) -> None:
        """End the view; a failed run shows the log's tail and its path, then its ``errors`` (last,
        where the eye lands; into the log too)."""
        if self._closed:
            return
        self._closed = True
        path = str(self.log.path) if self.log.path else None
        failure = Failure(path, () if self.quiet else self.log.tail()) if failed else None
        with self._lock:
            self.renderer.close(failure)
        for line in errors:
            self.error(line)
        self.log.close()
