"""A docker-archive streamed to the engine as it is written: no copy of it on disk.

A thread writes the archive (``compiler.oci.outputs.write_docker_archive``) into a pipe; the load
reads the pipe block by block and sends it chunked, so the engine applies the first layers while the
last are still being read from the store, and a multi-GB image is not written once more to a
temporary file first (then read back) before the engine sees a byte of it."""

from __future__ import annotations

import fcntl
import os
import threading
from typing import BinaryIO, Callable, Iterator

from compiler.errors import BuildError

BLOCK = 1 << 20


class StreamedArchive:
    """``with StreamedArchive(write, total, progress) as body``: ``body`` yields the bytes ``write``
    puts in the file it is given; ``progress`` hears (sent, total) as they go (``total`` is an
    estimate: the stored blobs' sizes). A failed write raises BuildError from the iteration."""

    def __init__(self, write: Callable[[BinaryIO], None], total: int, progress: Callable[[int, int], None]):
        self._write, self.total, self._progress = write, total, progress
        self._error: BaseException | None = None
        self._reader: BinaryIO | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Iterator[bytes]:
        read_fd, write_fd = os.pipe()
        try:
            fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), BLOCK)  # 1 MiB reads, not 64 KiB
        except OSError:
            pass  # the system's limit is lower: the default size works too
        self._reader = os.fdopen(read_fd, "rb", buffering=0)
        writer = os.fdopen(write_fd, "wb", buffering=BLOCK)
        self._thread = threading.Thread(target=self._run, args=(writer,), name="pkgc-archive", daemon=True)
        self._thread.start()
        return self._blocks()

    def _run(self, writer: BinaryIO) -> None:
        try:
            with writer:
                self._write(writer)
        except BrokenPipeError:
            pass  # the load stopped reading (the engine refused, or an error here): it reports why
        except BaseException as exc:  # noqa: BLE001 - handed to the reading side, which raises it
            self._error = exc

    def _blocks(self) -> Iterator[bytes]:
        sent = 0
        while block := self._reader.read(BLOCK):
            sent += len(block)
            self._progress(sent, max(self.total, sent))
            yield block
        self._thread.join()
        if self._error is not None:
            raise BuildError(f"writing the image for the engine failed: {type(self._error).__name__}: {self._error}")

    def __exit__(self, *exc) -> None:
        self._reader.close()  # a writer still at work meets a broken pipe and ends
        self._thread.join(timeout=60)
