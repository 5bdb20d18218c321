"""Start-up of the generated MLflow scoring script: a skops-saved scikit-learn model has skops.io
imported before mlflow (skops scans every loaded module when imported), other models do not. That
the model then loads and scores is test_mlflow_scoring's (in-process) and the e2e tests' (served)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from compiler.mlflow.mlmodel import read_mlflow_model
from compiler.mlflow.scoring import generated_files
from tests.unit.test_mlflow_scoring import server_on_path  # noqa: F401 - the real server wheel on sys.path

X, Y = load_diabetes(return_X_y=True, as_frame=True)
REQS = ["mlflow==3.17.2", "scikit-learn==1.9.1", "skops==0.16.0"]

FRESH_WORKER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("score", sys.argv[1])
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
names = list(sys.modules)
print(json.dumps(names.index("skops.io") < names.index("mlflow")))
"""


def save(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / fmt / "model"
    mlflow.sklearn.save_model(Ridge().fit(X, Y), str(path), serialization_format=fmt, pip_requirements=REQS)
    return path


def settings(model_dir: Path) -> dict:
    return json.loads(generated_files(read_mlflow_model(model_dir), model_dir.name)["pkgc_mlflow.json"])


@pytest.mark.parametrize(("fmt", "first"), [("skops", ["skops.io"]), ("cloudpickle", [])])
def test_only_a_skops_sklearn_model_imports_skops_first(tmp_path, fmt, first):
    model_dir = save(tmp_path, fmt)
    assert read_mlflow_model(model_dir).sklearn_format == fmt
    assert settings(model_dir) == {"model_subdir": "model", "import_first": first}


def test_a_fresh_worker_imports_skops_before_mlflow(tmp_path, server_on_path):  # noqa: F811
    model_dir = save(tmp_path, "skops")
    folder = tmp_path / "scoring"
    folder.mkdir()
    for name, data in generated_files(read_mlflow_model(model_dir), model_dir.name).items():
        (folder / name).write_bytes(data)
    wheel = next(p for p in sys.path if "azureml_inference_server_http" in p)
    env = dict(os.environ, AZUREML_MODEL_DIR=str(model_dir.parent), PYTHONPATH=os.pathsep.join([wheel, *sys.path]))
    proc = subprocess.run([sys.executable, "-c", FRESH_WORKER, str(folder / "score.py")],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) is True
