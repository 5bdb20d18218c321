"""Locked, reproducible, cache-friendly builds: lock files, stale locks, the hash-checked cache,
content-addressed reuse, and which layers a model change touches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conda_lock.lockfile import parse_conda_lock_file

from tests.conftest import EXAMPLE, run_pkgc

pytestmark = pytest.mark.engine


@pytest.fixture
def private_example(tmp_path) -> Path:
    target = tmp_path / "example"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.conda-lock.yml", "__pycache__"))
    return target


def test_lock_file_is_conda_lock_format_with_hashes(private_example, registered, session_env):
    spec = private_example / "package-moe.yml"
    proc = run_pkgc("lock", str(spec), "--model", registered["model"], "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    lock_path = Path(json.loads(proc.stdout)["lock_file"])
    assert lock_path == private_example / "package-moe.conda-lock.yml"
    lockfile = parse_conda_lock_file(lock_path)  # conda-lock's own reader
    packages = {p.name.lower(): p for p in lockfile.package}
    assert packages["azureml-inference-server-http"].version == "1.5.1"
    assert packages["scikit-learn"].version == "1.9.1"
    assert all(p.manager == "pip" and len(p.hash.sha256) == 64 for p in lockfile.package)
    check = run_pkgc("lock", str(spec), "--model", registered["model"], "--check", env=session_env)
    assert check.returncode == 0, check.stderr


def test_stale_lock_is_detected_and_relock_fixes_it(private_example, registered, session_env):
    # its own environment name: the session's sklearn-regression-env@latest must stay as it is
    spec = private_example / "package-moe.yml"
    spec.write_text(spec.read_text().replace("sklearn-regression-env@latest", "stale-lock-env@latest"))
    env_file = private_example / "environment" / "sklearn-regression-env.yml"
    env_file.write_text(env_file.read_text().replace("name: sklearn-regression-env", "name: stale-lock-env"))
    assert run_pkgc("environment", "create", "--file", str(env_file), env=session_env).returncode == 0
    assert run_pkgc("lock", str(spec), "--model", registered["model"], env=session_env).returncode == 0
    conda = private_example / "environment" / "conda.yaml"
    conda.write_text(conda.read_text().replace("joblib==1.6.0", "joblib==1.6.0\n      - six==1.17.0"))
    assert run_pkgc("environment", "create", "--file", str(env_file), env=session_env).returncode == 0
    proc = run_pkgc("build", str(spec), "--model", registered["model"], "--emit", "plan", env=session_env)
    assert proc.returncode == 2
    assert "the lock no longer matches the spec" in proc.stderr and "--relock" in proc.stderr
    assert run_pkgc("lock", str(spec), "--model", registered["model"], "--check", env=session_env).returncode == 2
    relocked = run_pkgc("build", str(spec), "--model", registered["model"], "--relock", "--emit", "plan", env=session_env)
    assert relocked.returncode == 0, relocked.stderr
    assert "six" in (private_example / "package-moe.conda-lock.yml").read_text()


def test_tampered_package_in_the_cache_is_refused(private_example, registered, session_env, copy_package, tmp_path):
    shared = Path(os.environ.get("PKGC_CACHE_DIR", Path.home() / ".cache" / "pkgc"))
    cache = tmp_path / "cache"
    # hard links: the shared cache stays intact; links copied as links, and no root filesystem another
    # process has unpacked for qemu (its /var/run -> /run would lead to the host's)
    shutil.copytree(shared, cache, copy_function=os.link, symlinks=True, ignore=shutil.ignore_patterns("rootfs"))
    wheel = next((cache / "files").rglob("joblib-1.6.0-*.whl"))
    wheel.unlink()
    wheel.write_bytes(b"not the wheel the lock pinned")
    env = dict(session_env, PKGC_CACHE_DIR=str(cache))
    proc = run_pkgc("build", str(private_example / "package-azure-app.yml"), "--model", registered["model"], env=env)
    assert proc.returncode == 3
    assert "is corrupt or tampered" in proc.stderr and "joblib-1.6.0" in proc.stderr


def test_same_inputs_give_the_same_context_hash_and_image(private_example, registered, session_env, copy_package):
    proc = run_pkgc("build", str(private_example / "package-azure-app.yml"), "--model", registered["model"], "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(proc.stdout)
    assert again["content_hash"] == copy_package["content_hash"]  # another folder, same bytes
    assert again["reused"] is True and again["image_id"] == copy_package["image_id"]


def test_model_change_touches_only_the_model_layer_and_later(private_example, registered, session_env, engine):
    spec = private_example / "package-azure-app.yml"  # its own name: no other test tags or loads this image
    spec.write_text(spec.read_text().replace("sklearn-regression-docker-pkg", "layer-order-pkg"))

    def build(model_ref: str) -> tuple[str, ...]:
        proc = run_pkgc("build", str(spec), "--model", model_ref, "--json", env=session_env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return engine.image_info(json.loads(proc.stdout)["image_id"]).layers

    before = build(registered["model"])
    model = private_example / "model" / "sklearn_regression_model.pkl"
    model.write_bytes(model.read_bytes() + b"\0")  # one byte more; pickle ignores it
    created = run_pkgc("-q", "model", "create", "--name", "sklearn-regression", "--path", str(model.parent), env=session_env)
    assert created.returncode == 0, created.stderr
    after = build(created.stdout.strip())
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    model_layer = len(before) - 3  # ... environment, entrypoint, lock, model, code, sbom
    # The model layer changes and nothing before it; so does the SBOM (it names the model's digest); the
    # Docker back end also changes the code layer (its parent folder's build-time mtime), the OCI back
    # end keeps it (fixed times).
    assert changed[:1] == [model_layer] and set(changed) <= set(range(model_layer, len(after)))
