"""What the installers say while the environment is assembled: notes in the run's log, not raw warnings.

pypa's ``installer`` warns with ``warnings.warn`` (a RuntimeWarning for a wheel that ships a
``__pycache__`` folder, which it skips) and py-rattler logs through Python's ``logging``; left alone,
both print multi-line raw text (file, line, source) to the user's terminal. ``caught_notes`` turns each
into one line (kept in order, once each) that the caller sends to the log, and ``summary`` bounds how
many such lines a build shows."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

NOTE_LIMIT = 5  # lines per build step; the rest are counted
TEXT_LIMIT = 300


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 3] + "..."


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.name} ({record.levelname.lower()}): {_one_line(record.getMessage())}")


@contextmanager
def caught_notes(sink: list[str]) -> Iterator[None]:
    """Warnings and log records (WARNING and above) raised in the block become lines in ``sink``
    instead of text on stderr."""
    handler = _Collect(sink)
    root = logging.getLogger()
    root.addHandler(handler)  # with a handler on the root, logging's last-resort stderr printer stays silent
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield
            finally:
                sink.extend(f"{w.category.__name__}: {_one_line(str(w.message))}" for w in caught)
    finally:
        root.removeHandler(handler)


def summary(notes: list[str], source: str) -> list[str]:
    """The lines to log for ``notes`` said by ``source``: each once, at most NOTE_LIMIT, then a count."""
    unique = list(dict.fromkeys(notes))
    lines = [f"note from {source}: {note}" for note in unique[:NOTE_LIMIT]]
    if len(unique) > NOTE_LIMIT:
        lines.append(f"note from {source}: {len(unique) - NOTE_LIMIT} more notes like these")
    return lines
