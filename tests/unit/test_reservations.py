"""Package versions are reserved atomically: concurrent builds never share one; a dead build's
reservation does not block anyone; a reservation is never listed as a finished version."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest

from compiler.errors import ResolveError
from compiler.workspace import EnvironmentRecord, Workspace


def _reserve(root: str, queue, done) -> None:
    queue.put(Workspace(root).reserve_environment_version("pkg", None))
    done.wait(30)  # hold the reservation, as a build does, until every worker has one


def test_concurrent_reservations_take_distinct_versions(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue, done = ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_reserve, args=(str(tmp_path), queue, done)) for _ in range(8)]
    for w in workers:
        w.start()
    versions = sorted(int(queue.get(timeout=30)) for _ in workers)
    done.set()
    for w in workers:
        w.join(30)
    assert versions == list(range(1, 9))
    assert Workspace(tmp_path).reserve_environment_version("pkg", None) == "1"  # all eight are gone: stale


def test_explicit_version_held_by_a_live_build_is_refused(tmp_path):
    ws = Workspace(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from compiler.workspace import Workspace; "
         "Workspace(sys.argv[1]).reserve_environment_version('pkg', '7'); print('held', flush=True); time.sleep(30)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ResolveError, match="being built by another pkgc process"):
            ws.reserve_environment_version("pkg", "7")
        assert ws.reserve_environment_version("pkg", None) == "8"  # the next free one
        record = EnvironmentRecord(name="pkg", version="7", image="i")
        with pytest.raises(ResolveError, match="being built"):
            ws.create_environment(record, explicit_version=True)
    finally:
        holder.kill()
        holder.wait()
    assert ws.reserve_environment_version("pkg", "7") == "7"  # the killed holder's reservation was stale


def test_reservation_is_not_a_version_and_the_record_replaces_it(tmp_path):
    ws = Workspace(tmp_path)
    version = ws.reserve_environment_version("pkg", None)
    assert version == "1" and ws.list_environments() == []
    with pytest.raises(ResolveError):
        ws.get_environment("pkg")
    ws.create_environment(EnvironmentRecord(name="pkg", version=version, image="i"), explicit_version=True)
    assert [r.version for r in ws.list_environments()] == ["1"]
    assert not list((tmp_path / "environments" / "pkg").glob("*.reserved"))
    with pytest.raises(ResolveError, match="already exists"):
        ws.reserve_environment_version("pkg", "1")
