"""Output into a pipe whose reader went away (``pkgc schema | head -1``): a normal end, not an error.

Python ignores SIGPIPE, so a write after the reader closed raises BrokenPipeError, and the interpreter
would complain again when it flushes stdout at exit. The CLI asks ``reader_gone`` whether that is
what happened (a BrokenPipeError from a subprocess's pipe or a socket is a real error) and then
``stop_writing`` points stdout and stderr at /dev/null so nothing more is said."""

from __future__ import annotations

import os
import select
import sys
from typing import TextIO

# the exit status of a command whose reader went away: 0, as for `git log | head` with SIGPIPE
# ignored; the reader chose to stop, the work itself succeeded
EXIT_READER_GONE = 0


def reader_gone(stream: TextIO) -> bool:
    """Whether ``stream`` is a pipe (or socket) whose reading end is closed."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return False
    try:
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def stop_writing() -> int:
    """Send whatever is still buffered for stdout and stderr to /dev/null; the exit status to use."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            if reader_gone(stream):
                os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass
    os.close(devnull)
    return EXIT_READER_GONE
