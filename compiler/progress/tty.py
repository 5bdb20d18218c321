"""``--progress tty``: BuildKit-like live lines on a terminal. Running stages animate (spinner,
bytes, elapsed time, their latest line); a finished stage collapses into one line; steps outside
stages and warnings print above; on failure the log's tail and its path."""

from __future__ import annotations

import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from compiler.progress.events import Event, Failure, MessageEvent, StageEvent, describe_bytes

NOTE_WIDTH = 70


class _Running:
    def __init__(self, stage: str, started: float):
        self.stage, self.started = stage, started
        self.amount = ""
        self.note = ""  # the stage's latest line
        self.said = ""  # its last step or detail: what it shows once done


class TtyRenderer:
    def __init__(self, console: Console, clock=time.monotonic):
        self.console, self.clock = console, clock
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._spinner = Spinner("dots", style="cyan")
        self._live: Live | None = None

    def __rich__(self) -> Group:
        """The running stages, one line each (what the Live region draws)."""
        table = Table.grid(padding=(0, 1))
        with self._lock:
            running = list(self._running.values())
        for item in running:
            note = item.note if len(item.note) <= NOTE_WIDTH else item.note[: NOTE_WIDTH - 1] + "…"
            table.add_row(self._spinner, Text(item.stage, style="bold"), Text(item.amount),
                          Text(f"{self.clock() - item.started:.1f}s", style="cyan"), Text(note, style="dim"))  # fmt: skip
        return Group(table)

    def _start_live(self) -> None:
        if self._live is None:
            self._live = Live(self, console=self.console, refresh_per_second=8, transient=True, redirect_stderr=False, redirect_stdout=False)
            self._live.start()

    def handle(self, event: Event) -> None:
        if isinstance(event, StageEvent):
            self._stage(event)
        elif event.stage is not None and event.stage in self._running and event.level in ("step", "detail", "output"):
            running = self._running[event.stage]
            line = event.text.strip().splitlines()[-1] if event.text.strip() else ""
            if line:
                running.note = line
            if event.level in ("step", "detail"):
                running.said = event.text
        elif event.level == "output":
            return  # engine output outside a stage: in the log only
        else:
            self.console.print(_styled(event), highlight=False, soft_wrap=True)

    def _stage(self, event: StageEvent) -> None:
        if event.status == "start":
            with self._lock:
                self._running[event.stage] = _Running(event.stage, self.clock() - event.elapsed)
            self._start_live()
            return
        with self._lock:
            running = self._running.get(event.stage) or _Running(event.stage, self.clock() - event.elapsed)
            running.amount = describe_bytes(event)
            if event.status == "progress":
                return
            del self._running[event.stage]
            idle = not self._running
        if idle:
            self._stop_live()  # no stage running: no live region (not even an empty line) between stages
        mark, style = ("✔", "green") if event.status == "done" else ("✘", "red")
        summary = event.summary or (running.said if event.status == "done" else running.note)
        line = Text.assemble((f"{mark} ", style), (f"{event.stage:<9}", "bold"), f" {event.elapsed:6.1f}s",
                             (f"  {running.amount}" if running.amount else ""), (f"  {summary}", "dim") if summary else "")  # fmt: skip
        self.console.print(line, highlight=False, soft_wrap=True)

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def close(self, failure: Failure | None) -> None:
        self._stop_live()
        if failure is None:
            return
        if failure.tail:
            self.console.print(Text(f"--- the last {len(failure.tail)} lines of the log ---", style="dim"))
            for line in failure.tail:
                self.console.print(Text(line, style="dim"), highlight=False, soft_wrap=True)
        if failure.log_path:
            self.console.print(f"pkgc full log: {escape(failure.log_path)}", highlight=False, soft_wrap=True)


def _styled(event: MessageEvent) -> str:
    text = escape(event.text)
    return {
        "step": f"[bold cyan]pkgc[/] {text}",
        "detail": f"[dim]     {text}[/]",
        "output": f"[dim]  | {text}[/]",
        "warn": f"[bold yellow]pkgc warning:[/] {text}",
        "error": f"pkgc: error: {text}",
    }[event.level]
