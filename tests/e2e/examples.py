"""Helpers for the server-type e2e tests: private copies of the bundled examples, built through the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import joblib
import numpy

from tests.conftest import ROOT, run_pkgc

EXAMPLES = ROOT / "examples"
TARGET_PREFIX = "pkgc-hc-"  # every image these tests build is pkgc/pkgc-hc-...
MODEL_FILE = EXAMPLES / "sklearn-regression" / "model" / "sklearn_regression_model.pkl"


def copy_example(name: str, root: Path) -> Path:
    """A copy of ``examples/NAME`` whose package specs build ``pkgc/pkgc-hc-...`` images."""
    target = root / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("*.conda-lock.yml", "__pycache__"))
    for spec in target.glob("package*.yml"):
        spec.write_text(re.sub(r"(?m)^target_environment: ", f"target_environment: {TARGET_PREFIX}", spec.read_text()))
    return target


def register_environment(env_file: Path, session_env: dict) -> None:
    proc = run_pkgc("-q", "environment", "create", "--file", str(env_file), env=session_env)
    assert proc.returncode == 0, proc.stderr


def build(spec: Path, model: str, session_env: dict, *extra: str) -> dict:
    proc = run_pkgc("build", str(spec), "--model", model, "--json", *extra, env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def host_predict(rows) -> list[float]:
    """What the example regression model predicts on the host (same scikit-learn as the images)."""
    return joblib.load(MODEL_FILE).predict(numpy.asarray(rows, dtype=float)).tolist()
