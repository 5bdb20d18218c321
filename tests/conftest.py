"""Shared fixtures: a fresh workspace per test, the bundled example, and the real Docker engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sklearn-regression"


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "workspace"
    monkeypatch.setenv("PKGC_WORKSPACE", str(root))
    return root


@pytest.fixture
def example(tmp_path) -> Path:
    """A private copy of the bundled example (tests may write lock files next to the spec)."""
    target = tmp_path / "example"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
    return target


def package_spec(target: str, environment: str, mode: str = "copy", code: str = "src") -> str:
    """A package.yml for an azureml_online package of ``environment@latest`` (the seed's key names)."""
    return (
        "$schema: http://azureml/sdk-2-0/ModelVersionPackage.json\n"
        "base_environment_source:\n"
        "    type: environment_asset\n"
        f"    resource_id: azureml:{environment}@latest\n"
        f"target_environment_name: {target}\n"
        "inferencing_server:\n"
        "    type: azureml_online\n"
        "    code_configuration:\n"
        f"        code: {code}\n"
        "        entry_script: score.py\n"
        "model_configuration:\n"
        f"    mode: {mode}\n"
    )


def run_pkgc(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real ``pkgc`` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from the current output")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")
