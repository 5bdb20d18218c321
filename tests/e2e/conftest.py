"""End-to-end fixtures: the real Docker engine, the offline base image, and the example built once
per session in both modes (through the real ``pkgc`` command line)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from compiler.engines import DockerEngine
from tests.conftest import EXAMPLE, ROOT, run_pkgc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def engine() -> DockerEngine:
    """The real engine; its absence is a failure (scripts/setup.sh starts one), never a skip."""
    return DockerEngine.connect()


@pytest.fixture(scope="session")
def base_image(engine) -> str:
    from compiler.baseimages.build import build_base_image

    return build_base_image("debian-bookworm", engine, lambda _line: None).image


@pytest.fixture(scope="session")
def session_env(tmp_path_factory) -> dict:
    """Environment for pkgc subprocesses: a session workspace, the shared host package cache."""
    env = dict(os.environ)
    env["PKGC_WORKSPACE"] = str(tmp_path_factory.mktemp("e2e") / "workspace")
    return env


@pytest.fixture(scope="session")
def example_copy(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("example") / "sklearn-regression"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.conda-lock.yml", "__pycache__"))
    return target


@pytest.fixture(scope="session")
def registered(base_image, session_env, example_copy) -> dict:
    """The example's model and base environment registered in the session workspace."""
    model = run_pkgc("-q", "model", "create", "--name", "sklearn-regression", "--path", str(example_copy / "model"), env=session_env)
    assert model.returncode == 0, model.stderr
    env_file = example_copy / "environment" / "sklearn-regression-env.yml"
    environment = run_pkgc("-q", "environment", "create", "--file", str(env_file), env=session_env)
    assert environment.returncode == 0, environment.stderr
    return {"model": model.stdout.strip(), "environment": environment.stdout.strip()}


def _build(spec: Path, registered: dict, session_env: dict) -> dict:
    proc = run_pkgc("build", str(spec), "--model", registered["model"], "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def readonly_package(registered, session_env, example_copy) -> dict:
    return _build(example_copy / "package-moe.yml", registered, session_env)


@pytest.fixture(scope="session")
def copy_package(registered, session_env, example_copy) -> dict:
    return _build(example_copy / "package-azure-app.yml", registered, session_env)


@pytest.fixture
def containers(engine):
    """Containers a test starts; always removed."""
    started: list[str] = []
    yield started
    for container_id in started:
        engine.stop(container_id)


@pytest.fixture(scope="module")
def podman() -> str:
    """podman's path, installed by the project's own script when missing (skipped when it cannot be)."""
    if shutil.which("podman") is None:
        installed = subprocess.run(["bash", str(ROOT / "scripts" / "ensure-podman.sh")], capture_output=True, text=True)
        if installed.returncode != 0 or shutil.which("podman") is None:
            pytest.skip(f"podman cannot be installed here (scripts/ensure-podman.sh: {installed.stderr.strip()[-300:]})")
    return shutil.which("podman")


@pytest.fixture(scope="module")
def podman_service(podman, tmp_path_factory):
    """podman's Docker-compatible API on a socket of its own; stopped after the module."""
    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen([podman, "system", "service", "--time=0", f"unix://{socket}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), "podman system service did not open its socket"
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(timeout=30)
