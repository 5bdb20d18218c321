"""The events a run emits: a stage starting, moving (bytes), finishing or failing, and the
messages (steps, details, engine output, warnings, errors) said along the way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union

Status = Literal["start", "progress", "done", "failed"]
Level = Literal["step", "detail", "output", "warn", "error"]
MODES = ("auto", "tty", "plain", "json")


@dataclass(frozen=True)
class StageEvent:
    """One stage's state: ``elapsed`` seconds since it started; ``bytes`` of ``total`` when known."""

    stage: str
    status: Status
    elapsed: float
    bytes: int | None = None
    total: int | None = None
    summary: str | None = None  # what the stage came to (its last step message, or a note)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "stage", "stage": self.stage, "status": self.status, "elapsed": round(self.elapsed, 3)}
        for key in ("bytes", "total", "summary"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class MessageEvent:
    """A line said during the run; ``stage`` is the innermost running stage, if any."""

    level: Level
    text: str
    stage: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "level": self.level, "text": self.text}
        if self.stage is not None:
            data["stage"] = self.stage
        return data


Event = Union[StageEvent, MessageEvent]


@dataclass(frozen=True)
class Failure:
    """How a failed run ends: the last lines of its log and where the whole log is (None: not kept)."""

    log_path: str | None
    tail: tuple[str, ...]


class Renderer(Protocol):
    """Shows events as they come; ``close`` ends the view (``failure``: the run failed)."""

    def handle(self, event: Event) -> None: ...

    def close(self, failure: Failure | None) -> None: ...


def human_bytes(n: int) -> str:
    """Sizes as a person reads them: 512 B, 12.3 kB, 4.5 MB, 1.2 GB (decimal units, as docker shows)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def describe_bytes(event: StageEvent) -> str:
    """``12.3 MB`` or ``12.3 MB / 40.0 MB``, with the rate so far while the stage runs
    (``12.3 MB / 40.0 MB at 6.1 MB/s``); empty when the stage counts no bytes."""
    if event.bytes is None:
        return human_bytes(event.total) if event.total is not None and event.status == "done" else ""
    text = human_bytes(event.bytes) + (f" / {human_bytes(event.total)}" if event.total is not None else "")
    if event.status == "progress" and event.elapsed >= 0.5:
        text += f" at {human_bytes(int(event.bytes / event.elapsed))}/s"
    return text
