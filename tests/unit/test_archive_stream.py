"""The docker-archive streamed to the engine as it is written (``compiler.oci.archive_stream``): the
bytes the writer wrote, in order, with progress; a writer's failure is one BuildError at the reading
end; a load that stops reading early ends the writer instead of leaving it blocked on the pipe."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time

import pytest

from compiler.errors import BuildError
from compiler.oci.archive_stream import StreamedArchive


def test_the_blocks_are_the_written_archive_with_progress():
    payload = os.urandom(5 << 20) + b"tail"

    def write(out):
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("layer.tar")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

    expected = io.BytesIO()
    write(expected)
    heard = []
    with StreamedArchive(write, len(payload), lambda sent, total: heard.append((sent, total))) as body:
        received = b"".join(body)
    assert hashlib.sha256(received).digest() == hashlib.sha256(expected.getvalue()).digest()
    assert heard[-1] == (len(received), len(received)) and len(heard) > 1  # the estimate grows to what was sent
    assert [sent for sent, _ in heard] == sorted(sent for sent, _ in heard)


def test_a_failed_write_is_one_build_error_at_the_reading_end():
    def write(out):
        out.write(b"x" * 100_000)
        raise FileNotFoundError("blob sha256:abc is missing from the store")

    with pytest.raises(BuildError, match="writing the image for the engine failed: FileNotFoundError: blob sha256:abc"):
        with StreamedArchive(write, 0, lambda *_: None) as body:
            for _ in body:
                pass


def test_a_load_that_stops_reading_ends_the_writer():
    finished = threading.Event()

    def write(out):
        try:
            while True:  # far more than the pipe holds
                out.write(b"y" * (1 << 20))
        finally:
            finished.set()

    started = time.monotonic()
    with StreamedArchive(write, 0, lambda *_: None) as body:
        next(iter(body))  # the engine refused after the first block
    assert finished.wait(10) and time.monotonic() - started < 10
