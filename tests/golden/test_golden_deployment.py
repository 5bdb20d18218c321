"""Golden plans of a package a deployment YAML states run settings for, with ``inputs:`` in both modes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from compiler.environment.strategy import EnvironmentStrategy
from compiler.fetch.cache import FetchedFiles
from compiler.lock.types import Lock, LockedPackage
from compiler.plan import ContextFile, plan_image
from compiler.render import render_dockerfile
from compiler.resolve.types import ResolvedInput
from compiler.runsettings import Probe, RunSettings
from compiler.spec.model import ModelMode
from tests.golden.test_golden import check, make_package


def plan(tmp_path: Path, mode: ModelMode):
    run = RunSettings(5000, 2, 3, Probe(initial_delay=5), Probe(period=3), (("cpu", "500m"), ("memory", "1Gi")), ())
    inputs = (ResolvedInput("uri_file", "/var/azureml-app/inputs/labels.json", "cd" * 32, tmp_path / "t1", "labels.json"),
              ResolvedInput("uri_folder", "/var/azureml-app/inputs/tokenizer", "ef" * 32, tmp_path / "t2", "tokenizer"))  # fmt: skip
    pkg = replace(make_package(tmp_path, mode, {"SCORING_TIMEOUT_MS": "5000", "WORKER_COUNT": "2"}), run_settings=run, inputs=inputs)
    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://files/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    strategy = EnvironmentStrategy("venv", "3.11", "test", ("joblib==1.6.0",))
    return plan_image(pkg, strategy, Lock("venv", "3.11", "ef" * 32, (wheel,)), ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n"),
                      FetchedFiles({wheel.sha256: tmp_path / wheel.filename}), "pkgc/golden-pkg:1")  # fmt: skip


@pytest.mark.parametrize("mode", [ModelMode.READONLY_MOUNT, ModelMode.COPY])
def test_deployment_package_plan(tmp_path, mode, update_golden):
    image = plan(tmp_path, mode)
    check(f"deployment-{mode.value}.plan.txt", "\n".join(image.layer_summary()) + "\n", update_golden)
    if mode is ModelMode.COPY:
        check("deployment-copy.Dockerfile", render_dockerfile(image), update_golden)
