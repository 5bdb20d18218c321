"""``--progress plain``: one line per event, no ANSI; engine output shown as it comes (``  | ``)."""

from __future__ import annotations

import sys
from typing import TextIO

from compiler.progress.events import Event, Failure, MessageEvent, StageEvent, describe_bytes
from compiler.progress.throttle import Throttle


def plain_line(event: Event) -> str:
    """The text of one event (also the text the tty renderer prints above its live lines)."""
    if isinstance(event, MessageEvent):
        return {
            "step": f"pkgc {event.text}",
            "detail": f"     {event.text}",
            "output": f"  | {event.text}",
            "warn": f"pkgc warning: {event.text}",
            "error": f"pkgc: error: {event.text}",
        }[event.level]
    amount = describe_bytes(event)
    if event.status == "start":
        return f"pkgc [{event.stage}] started"
    if event.status == "progress":
        return f"pkgc [{event.stage}] {amount or 'working'}, {event.elapsed:.1f} s"
    verb = "done in" if event.status == "done" else "failed after"
    return f"pkgc [{event.stage}] {verb} {event.elapsed:.1f} s" + (f" ({amount})" if amount else "")


class PlainRenderer:
    """Every event a line on ``stream``; progress at most every ``interval`` seconds per stage."""

    def __init__(self, stream: TextIO | None = None, interval: float = 2.0):
        self._stream, self.throttle = stream, Throttle(interval)

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr  # None: whatever stderr is when writing

    def handle(self, event: Event) -> None:
        if isinstance(event, StageEvent) and not self.throttle.passes(event):
            return
        if isinstance(event, MessageEvent) and event.level == "output" and not event.text.strip():
            return
        self.stream.write(plain_line(event) + "\n")
        self.stream.flush()

    def close(self, failure: Failure | None) -> None:
        # every line was shown as it came: on failure only say where the whole log is
        if failure is not None and failure.log_path:
            self.stream.write(f"pkgc full log: {failure.log_path}\n")
            self.stream.flush()
