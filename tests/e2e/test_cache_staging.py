"""A build killed while it assembles the environment (SIGKILL to its process group, as a CI runner's
cancel does) leaves its staging folder; ``pkgc cache du`` shows it, the next build removes it and
succeeds, ``pkgc cache prune --max-size`` bounds the cache. Real engine, real example, a private cache."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.conftest import ROOT, run_pkgc

pytestmark = pytest.mark.engine

TARGET = "cache-staging-pkg"


def _staging(cache: Path) -> list[Path]:
    return sorted((cache / "oci").glob("pkgc-env-*")) + sorted((cache / "oci" / "blobs" / "sha256").glob(".partial-*"))


def _files(folder: Path) -> int:
    return sum(len(files) for _root, _dirs, files in os.walk(folder))


def test_a_killed_build_leaves_staging_that_the_next_build_removes(registered, session_env, example_copy, tmp_path):
    cache = tmp_path / "cache"
    shared = Path(os.environ.get("PKGC_CACHE_DIR") or Path.home() / ".cache" / "pkgc") / "files"
    if shared.is_dir():  # the example's wheels, already fetched by the session: no download needed
        shutil.copytree(shared, cache / "files")
    env = dict(session_env, PKGC_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    spec = example_copy / "package-moe.yml"
    command = [sys.executable, "-m", "compiler.cli", "-q", "build", str(spec), "--model", registered["model"],
               "--target-environment", TARGET, "--no-cache"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            staged = sorted((cache / "oci").glob("pkgc-env-*"))
            if staged and _files(staged[0]) > 500:  # well into assembling the venv
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    left = _staging(cache)
    assert left and any(p.name.startswith(f"pkgc-env-{proc.pid}.") for p in left)

    du = run_pkgc("cache", "du", "--json", env=env)
    assert du.returncode == 0, du.stderr
    assert json.loads(du.stdout)["parts"]["staging"]["files"] > 500

    again = run_pkgc("-q", "build", str(spec), "--model", registered["model"], "--target-environment", TARGET, "--json", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _staging(cache) == []  # the killed build's folder and half-written blobs are gone

    before = json.loads(run_pkgc("cache", "du", "--json", env=env).stdout)["total"]
    pruned = run_pkgc("cache", "prune", "--max-size", "100M", "--json", env=env)
    assert pruned.returncode == 0, pruned.stderr
    result = json.loads(pruned.stdout)
    assert result["busy"] is False and result["before"] == before and result["after"] <= before
    assert result["removed"].get("fetched_files", {}).get("files", 0) > 0  # the least recently used went first
    assert result["over"] == max(0, result["after"] - 100 * 1024 * 1024)
    client = docker.from_env()
    for image in client.images.list(name=f"pkgc/{TARGET}"):
        client.images.remove(image.id, force=True)
