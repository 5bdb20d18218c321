"""The shared build cache on a real registry (Debian's ``docker-registry`` on loopback), through the real
command line, each runner with its own empty cache folder and workspace and no engine:

runner A builds the example with ``--cache`` and pushes it; runner B builds the same package with
``--cache`` and pushes it to another repository: the same manifest digest, no environment byte
uploaded or downloaded (its push mounts the cached blobs), in a fraction of A's time; a runner that
loads the image into its engine fetches the cached layers then; a read-only runner with changed code
writes nothing to the cache repository."""

from __future__ import annotations

import base64

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from compiler.options import load_options
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.registry import start_registry

pytestmark = pytest.mark.engine
NOWHERE = "unix:///nonexistent/docker.sock"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    started = start_registry(tmp_path_factory.mktemp("regcache-registry"), free_port())
    yield started
    started.stop()


@pytest.fixture(scope="module")
def base_layout(base_image, tmp_path_factory) -> str:
    layout = tmp_path_factory.mktemp("regcache-base") / "layout"
    subprocess.run(["skopeo", "copy", "--quiet", f"docker-daemon:{base_image}", f"oci:{layout}:base"], check=True, capture_output=True)
    return f"oci:{layout}:base"


def fresh_runner(root: Path, with_engine: bool = False) -> dict:
    """A runner's environment: its own workspace and cache folder (the package files and compiled
    files hard-linked from the warm shared cache, as a CI runner's package mirror), no engine."""
    shared = load_options().cache_dir
    cache = root / "cache"
    cache.mkdir(parents=True)
    for part in ("files", "pyc"):
        if (shared / part).is_dir():
            shutil.copytree(shared / part, cache / part, copy_function=os.link)
    env = {**os.environ, "PKGC_WORKSPACE": str(root / "workspace"), "PKGC_CACHE_DIR": str(cache)}
    return env if with_engine else {**env, "DOCKER_HOST": NOWHERE}


def build(root: Path, project: Path, base: str, *args: str, with_engine: bool = False, extra_env: dict | None = None,
          returncode: int = 0) -> tuple[dict, list[dict], float]:  # fmt: skip
    """One runner's build of ``project``'s copy-mode package: its result, what its registry client moved, its time
    (with another ``returncode``: its stderr as the result)."""
    env = {**fresh_runner(root, with_engine), **(extra_env or {})}
    model = run_pkgc("-q", "model", "create", "--name", "sklearn-regression", "--path", str(project / "model"), env=env)
    assert model.returncode == 0, model.stderr
    environment = run_pkgc("-q", "environment", "create", "--file", str(project / "environment" / "sklearn-regression-env.yml"), env=env)
    assert environment.returncode == 0, environment.stderr
    started = time.monotonic()
    proc = run_pkgc("build", str(project / "package-azure-app.yml"), "--model", model.stdout.strip(), "--base-image", base, "--json", *args, env=env)
    seconds = time.monotonic() - started
    assert proc.returncode == returncode, proc.stderr[-3000:]
    log = root / "cache" / "oci" / "transfers.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return json.loads(proc.stdout) if returncode == 0 else {"stderr": proc.stderr}, events, seconds


def tags(registry, repository: str) -> list[str]:
    status, body, _headers = registry.get(f"{repository}/tags/list", "application/json")
    return sorted(json.loads(body).get("tags") or []) if status == 200 else []


def moved(events: list[dict], op: str, digests: set[str], repository: str | None = None) -> int:
    return sum(e["bytes"] for e in events if e["op"] == op and e["digest"] in digests and repository in (None, e["repository"]))


def test_a_second_runner_reuses_and_mounts_what_the_first_built(registry, base_layout, example_copy, engine, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(example_copy, project, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
    if (example_copy / "package-azure-app.conda-lock.yml").exists():  # the session's lock; else runner A locks
        shutil.copy(example_copy / "package-azure-app.conda-lock.yml", project)
    cache = f"{registry.host}/regcache/cache"

    first, first_moved, first_seconds = build(tmp_path / "a", project, base_layout, "--cache", cache, "--push", f"{registry.host}/regcache/pkg-a")
    environment = {layer["digest"] for layer in first["layers"] if layer["kind"] == "environment"}
    env_bytes = sum(layer["size"] for layer in first["layers"] if layer["kind"] == "environment")
    assert moved(first_moved, "upload", environment, "regcache/cache") == env_bytes  # each once, into the cache
    assert moved(first_moved, "upload", environment, "regcache/pkg-a") == 0  # the push mounted them
    assert any(t.startswith("pkgc-") for t in tags(registry, "regcache/cache"))

    second, second_moved, second_seconds = build(tmp_path / "b", project, base_layout, "--cache", cache, "--push", f"{registry.host}/regcache/pkg-b")
    assert second["manifest_digest"] == first["manifest_digest"] == second["push"]["digest"]
    assert moved(second_moved, "upload", environment) == 0 and moved(second_moved, "download", environment) == 0
    assert {e["digest"] for e in second_moved if e["op"] == "mount"} >= environment
    status, body, _headers = registry.manifest("regcache/pkg-b", "1")
    assert status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == first["manifest_digest"]
    print(f"\nrunner A {first_seconds:.1f} s, runner B (empty cache, --cache) {second_seconds:.1f} s = "
          f"{second_seconds / first_seconds:.2f}x; B uploaded {sum(e['bytes'] for e in second_moved if e['op'] == 'upload')} bytes")
    # the target is 0.4x (0.08-0.24x here; bench/fleet.py measures it): a looser bound keeps a
    # loaded CI machine from failing on B's fixed costs (start-up, resolve, base import)
    assert second_seconds <= 0.6 * first_seconds

    # with no shared cache every runner builds the same digests too: tests/e2e/test_fleet_bench.py

    # a runner that loads the image into its engine fetches the cached layers then, each once
    loaded, loaded_moved, _seconds = build(tmp_path / "e", project, base_layout, "--cache", cache, "--cache-mode", "read",
                                           "--target-environment", "regcache-e2e-engine", with_engine=True)  # fmt: skip
    try:
        assert loaded["loaded"] is True and engine.image_info(loaded["image"]) is not None
        assert moved(loaded_moved, "download", environment) == env_bytes
        assert {l["digest"] for l in loaded["layers"] if l["kind"] == "environment"} == environment
    finally:
        engine.remove_image(loaded["image_id"])  # every tag of it (its version and content tags)

    before = tags(registry, "regcache/cache")
    (project / "src" / "score.py").write_text((project / "src" / "score.py").read_text() + "\n# a pull request's change\n")
    untrusted, untrusted_moved, _seconds = build(tmp_path / "d", project, base_layout, "--cache", cache, "--cache-mode", "read",
                                                 "--push", f"{registry.host}/regcache/pkg-pr")  # fmt: skip
    assert untrusted["manifest_digest"] != first["manifest_digest"]
    assert tags(registry, "regcache/cache") == before
    assert not [e for e in untrusted_moved if e["repository"] == "regcache/cache" and e["op"] in ("upload", "mount")]
    assert moved(untrusted_moved, "upload", environment) == 0  # still mounted from the cache it read


def test_a_runner_that_ran_docker_login_uses_that_login(base_layout, example_copy, tmp_path):
    """A registry that asks every client for a login (htpasswd, Basic), a runner whose only credentials
    are what ``docker login`` wrote (``$DOCKER_CONFIG/config.json``; no PKGC_REGISTRY_*): its cache and
    its push go through. A runner that did not log in stops in one line naming what to do, exit 2,
    with nothing uploaded; no password is ever in what pkgc prints."""
    password = "s3cret:pw-e2e"
    registry = start_registry(tmp_path / "registry", free_port(), users={"ci-runner": password})
    try:
        project = tmp_path / "project"
        shutil.copytree(example_copy, project, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
        if (example_copy / "package-azure-app.conda-lock.yml").exists():
            shutil.copy(example_copy / "package-azure-app.conda-lock.yml", project)
        login = base64.b64encode(f"ci-runner:{password}".encode()).decode()
        (tmp_path / "docker").mkdir()
        (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": login}}}))
        anonymous = {"PKGC_REGISTRY_USERNAME": "", "PKGC_REGISTRY_PASSWORD": "", "DOCKER_CONFIG": str(tmp_path / "nowhere")}
        cache, target = f"{registry.host}/auth/cache", f"{registry.host}/auth/pkg"

        refused, refused_moved, _ = build(tmp_path / "a", project, base_layout, "--cache", cache, "--push", target,
                                          extra_env=anonymous, returncode=2)  # fmt: skip
        lines = refused["stderr"].strip().splitlines()
        assert "asks for credentials: log in to it (docker login" in lines[-1] and password not in refused["stderr"]
        assert not [e for e in refused_moved if e["op"] == "upload"]

        result, moved_events, _ = build(tmp_path / "b", project, base_layout, "--cache", cache, "--push", target,
                                        extra_env={**anonymous, "DOCKER_CONFIG": str(tmp_path / "docker")})  # fmt: skip
        assert result["push"]["digest"] == result["manifest_digest"]
        environment = {layer["digest"] for layer in result["layers"] if layer["kind"] == "environment"}
        assert moved(moved_events, "upload", environment, "auth/cache") == sum(
            layer["size"] for layer in result["layers"] if layer["kind"] == "environment")
        assert registry.get("auth/pkg/manifests/1")[0] == 401  # the registry did ask: anonymous reads are refused
    finally:
        registry.stop()
