"""An MLflow pyfunc with a params schema (saved by the real mlflow, as a model from code), packaged
with no base environment and no scoring script, verified with the model's own
serving_input_example.json, run, and scored with params: every answer equals the host's own
``mlflow.pyfunc.load_model(...).predict(..., params=...)``; a param of the wrong type is a 400."""

from __future__ import annotations

import re

import json
from pathlib import Path

import mlflow.pyfunc
import pandas
import pytest
from mlflow.models import infer_signature

from compiler.runtime.http import request
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.engine

MODEL_CODE = '''
import mlflow.pyfunc
from mlflow.models import set_model

DEFAULTS = {"scale": 1.0, "shift": 0, "tag": "a"}


class Scaled(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        p = {**DEFAULTS, **(params or {})}
        return [f"{p['tag']}:{x * p['scale'] + p['shift']}" for x in model_input["x"]]


set_model(Scaled())
'''
FRAME = pandas.DataFrame({"x": [1.0, 2.5, -4.0]})
REQUIREMENTS = ["mlflow==3.17.2", "pandas==3.1.1", "numpy==2.4.6"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("mlflow-params")
    (root / "scaled.py").write_text(MODEL_CODE)
    signature = infer_signature(FRAME, ["a:1.0"], params={"scale": 1.0, "shift": 0, "tag": "a"})
    mlflow.pyfunc.save_model(str(root / "model"), python_model=str(root / "scaled.py"), signature=signature,
                             input_example=(FRAME.head(2), {"scale": 2.0, "tag": "ex"}),
                             pip_requirements=REQUIREMENTS)  # fmt: skip
    return root / "model", mlflow.pyfunc.load_model(str(root / "model"))


@pytest.fixture(scope="module")
def built(saved, tmp_path_factory, session_env) -> dict:
    """Built and verified with no --request-file: the model's serving_input_example.json is sent."""
    model, _ = saved
    spec = tmp_path_factory.mktemp("spec") / "params.yml"
    spec.write_text(f"target_environment: mlflow-params-e2e\nmodel: {{path: {model}}}\n"
                    "inferencing_server: {type: azureml_online}\nmodel_configuration: {mode: copy}\n")  # fmt: skip
    proc = run_pkgc("build", str(spec), "--verify", "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_verify_sends_the_models_serving_input_example(built, saved):
    _, host = saved
    example = json.loads((saved[0] / "serving_input_example.json").read_text())
    expected = host.predict(FRAME.head(2), params=example["params"])
    assert built["verify"]["scored"] is True and built["verify"]["status"] == 200
    assert built["verify"]["response"] == {"predictions": expected} and expected == ["ex:2.0", "ex:5.0"]


def test_pkgc_verify_sends_it_too(built, saved, session_env):
    proc = run_pkgc("verify", built["image"], "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    verified = json.loads(proc.stdout)
    assert verified["scored"] is True and verified["response"] == built["verify"]["response"]


@pytest.fixture(scope="module")
def port(built, session_env, engine):
    chosen = free_port()
    started = run_pkgc("run", built["image"], "--port", str(chosen), "--detach", "--json", env=session_env)
    assert started.returncode == 0, started.stderr
    container = json.loads(started.stdout)["container"]
    try:
        yield chosen
    finally:
        engine.stop(container)


def post(port: int, payload: dict) -> tuple[int, object]:
    response = request(f"http://127.0.0.1:{port}/score", data=json.dumps(payload).encode(), timeout=60)
    return response.status, response.json()


@pytest.mark.parametrize("params", [{"scale": 3.0}, {"shift": 5, "tag": "t"}, {"scale": 0.5, "shift": -1, "tag": "z"}, None])
def test_params_answers_equal_the_hosts(port, saved, params):
    _, host = saved
    expected = host.predict(FRAME, params=params)
    split = {"columns": ["x"], "data": FRAME.values.tolist()}
    extra = {"params": params} if params is not None else {}
    assert post(port, {"dataframe_split": split, **extra}) == (200, {"predictions": expected})
    assert post(port, {"inputs": {"x": FRAME["x"].tolist()}, **extra}) == (200, {"predictions": expected})
    assert post(port, {"input_data": split, **extra}) == (200, expected)


def test_a_string_for_a_double_param_is_a_400_naming_it(port):
    status, body = post(port, {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}, "params": {"scale": "abc"}})
    assert status == 400 and "'scale'" in body["error"] and "double" in body["error"]


def test_a_flavor_version_the_lock_does_not_install_is_said_at_lock_time(tmp_path, session_env):
    """A spec with its own environment and scoring script (Azure then ignores the model's conda.yaml):
    its scikit-learn 1.8.0 is not the 1.9.1 the pickle was saved with; pkgc says so before any image."""
    import mlflow.sklearn
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    mlflow.sklearn.save_model(Ridge().fit(X, y), str(tmp_path / "model"), pip_requirements=["mlflow==3.17.2", "scikit-learn==1.9.1"])
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - scikit-learn==1.8.0\n")
    (tmp_path / "env.yml").write_text("name: own-sklearn\nimage: pkgc/base-debian-bookworm:latest\nconda_file: conda.yaml\n")
    assert run_pkgc("environment", "create", "--file", str(tmp_path / "env.yml"), env=session_env).returncode == 0
    (tmp_path / "pkg.yml").write_text(
        "target_environment: own-sklearn\nmodel: {path: model}\n"
        "base_environment_source: {type: environment_asset, resource_id: azureml:own-sklearn@latest}\n"
        "inferencing_server: {type: azureml_online, code_configuration: {code: src, scoring_script: score.py}}\n"
    )
    proc = run_pkgc("lock", str(tmp_path / "pkg.yml"), env=session_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [line for line in proc.stderr.splitlines() if "flavor sklearn" in line]
    assert re.match(r"pkgc warning: MLflow model model:\d+: flavor sklearn recorded scikit-learn 1\.9\.1 \(sklearn_version\), ", line), line
    assert "the lock installs 1.8.0" in line  # the inline model's version: whatever this session's workspace gave it
