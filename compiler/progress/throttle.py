"""Progress events come as often as bytes move; a renderer shows at most one per interval per stage."""

from __future__ import annotations

import time
from typing import Callable

from compiler.progress.events import StageEvent


class Throttle:
    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval, self.clock = interval, clock
        self._last: dict[str, float] = {}

    def passes(self, event: StageEvent) -> bool:
        """Start, done and failed always pass; progress when ``interval`` has gone by for its stage."""
        now = self.clock()
        if event.status != "progress":
            self._last[event.stage] = now if event.status == "start" else float("-inf")
            return True
        if now - self._last.get(event.stage, float("-inf")) < self.interval:
            return False
        self._last[event.stage] = now
        return True
