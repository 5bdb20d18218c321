"""``--progress json``: one JSON object per line on stderr, for pipelines (stdout keeps the result).

``{"type": "stage", "stage": "fetch", "status": "progress", "elapsed": 1.2, "bytes": 4096, "total": 8192}``,
``{"type": "message", "level": "step", "text": "...", "stage": "lock"}``, and on failure
``{"type": "log", "path": "...", "tail": [...]}``."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from compiler.progress.events import Event, Failure, StageEvent
from compiler.progress.throttle import Throttle


class JsonRenderer:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.25):
        self._stream, self.throttle = stream, Throttle(interval)

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr  # None: whatever stderr is when writing

    def _write(self, data: dict) -> None:
        self.stream.write(json.dumps(data, ensure_ascii=False) + "\n")
        self.stream.flush()

    def handle(self, event: Event) -> None:
        if isinstance(event, StageEvent) and not self.throttle.passes(event):
            return
        self._write(event.to_json())

    def close(self, failure: Failure | None) -> None:
        if failure is not None:
            self._write({"type": "log", "path": failure.log_path, "tail": list(failure.tail)})
