"""Azure's own deployment YAMLs (tests/samples/azureml-examples), unchanged, built and run for real:

- the heart classifier's batch deployment (``modelBatchDeployment``, an MLflow model, no scoring
  script): the model is a small MLflow model made here with the mlflow library (the sample's pickle
  needs scikit-learn 1.1.2 and Python 3.8), registered under the sample's name; the job's settings
  come from the YAML (mini_batch_size 2, retries 3, error_threshold -1); predictions.csv equals the
  host's own pyfunc predictions; a file the generated driver cannot read is retried, left out, named;
- TF Serving's half-plus-two custom container (``inference_config`` routes, no scoring script, its
  ``{{MODEL_VERSION}}`` placeholders filled with ``--set``): ``docker.io/tensorflow/serving`` is not
  reachable here, so ``--base-image`` names a stand-in built by the test, whose own CMD serves TF
  Serving's REST API for the model folder ``$MODEL_BASE_PATH/$MODEL_NAME`` the YAML's variables name.
  The package must keep that CMD (bring your own container) and answer the sample's request.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import docker
import mlflow.pyfunc
import mlflow.sklearn
import pandas
import pytest
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "azureml-examples" / "cli" / "endpoints"
HEART = SAMPLES / "batch" / "deploy-models" / "heart-classifier-mlflow"
TFSERVING = SAMPLES / "online" / "custom-container" / "tfserving" / "half-plus-two"
REQUIREMENTS = ["mlflow==3.17.2", "scikit-learn==1.9.1", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1", "skops==0.16.0"]
STANDIN = "deploy-e2e-tfserving-standin:1"


def heart_model(folder: Path) -> Path:
    """A classifier over the sample's columns (label: an age/cholesterol rule), saved by mlflow with its signature."""
    data = pandas.concat([pandas.read_csv(p) for p in sorted((HEART / "data").glob("*.csv"))], ignore_index=True)
    label = ((data["age"] > 55) & (data["chol"] > 240)).astype(int)
    encode = ColumnTransformer([("thal", OneHotEncoder(handle_unknown="ignore"), ["thal"])], remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression(max_iter=2000)).fit(data, label)
    mlflow.sklearn.save_model(model, str(folder), signature=infer_signature(data, model.predict(data)), pip_requirements=REQUIREMENTS)
    return folder


def host_rows(model: Path, data: Path) -> list[tuple[str, str, str]]:
    """The host's own answer in Azure's predictions.csv layout: row, prediction, file."""
    pyfunc = mlflow.pyfunc.load_model(str(model))
    rows = []
    for path in sorted(data.glob("*.csv")):
        predictions = pyfunc.predict(pandas.read_csv(path))
        rows += [(str(i), str(int(p)), path.name) for i, p in enumerate(predictions)]
    return rows


@pytest.fixture(scope="module")
def heart(base_image, session_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("heart")
    deployment = root / "deployment-simple" / "deployment.yml"
    deployment.parent.mkdir()
    shutil.copy(HEART / "deployment-simple" / "deployment.yml", deployment)  # unchanged
    model = heart_model(root / "model")
    created = run_pkgc("-q", "model", "create", "-n", "heart-classifier-mlflow", "--type", "mlflow_model", "-p", str(model), env=session_env)
    assert created.returncode == 0, created.stderr
    proc = run_pkgc("build", str(deployment), "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = json.loads(proc.stdout)
    yield {"root": root, "model": model, "build": built}
    remove_images(built)


def remove_images(built: dict) -> None:
    """The package's tags (its version and content tag) leave the engine with the test."""
    client = docker.from_env()
    for tag in {built["image"], built.get("content_tag")} - {None}:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def test_mlflow_batch_deployment_runs_as_azure_runs_it(heart, session_env, tmp_path):
    built = heart["build"]
    assert built["target_environment"].startswith("heart-classifier-batch-classifier-xgboost-mlflow-pkg:")
    data = tmp_path / "data"
    shutil.copytree(HEART / "data", data)
    (data / "notes.txt").write_text("not a table\n")  # the generated driver reads .csv and .parquet only
    out = tmp_path / "out"
    proc = run_pkgc("run", "--batch", built["image"], "--input", str(data), "--output", str(out), env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the YAML's settings: 2 files per mini-batch, 3 retries, error_threshold -1 (the failed file is tolerated)
    reason = "run() of mini-batch 2/2 raised ValueError: notes.txt: an MLflow batch deployment reads .csv and .parquet files"
    assert f"{reason} (attempt 3); retrying" in proc.stderr
    assert f"{reason} (attempt 4, the last); its files are left out: notes.txt" in proc.stderr
    with open(out / "predictions.csv", newline="") as fh:
        actual = [tuple(row) for row in csv.reader(fh)]
    assert actual == host_rows(heart["model"], HEART / "data") and len(actual) > 20
    # the job's flags win over the image's settings: no failure tolerated
    strict = run_pkgc("run", "--batch", built["image"], "--input", str(data), "--output", str(tmp_path / "strict"),
                      "--error-threshold", "0", "--max-retries", "0", env=session_env)  # fmt: skip
    assert strict.returncode == 4 and "error_threshold 0 passed (1 failed files)" in strict.stderr
    assert not (tmp_path / "strict" / "predictions.csv").exists()


STANDIN_SERVER = '''
"""A stand-in for TF Serving's REST API (GET /v1/models/NAME, POST /v1/models/NAME:predict) serving
the model folder $MODEL_BASE_PATH/$MODEL_NAME/<version>/params.json: y = a * x + b."""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

name = os.environ["MODEL_NAME"]
folder = os.path.join(os.environ["MODEL_BASE_PATH"], name)
version = max(os.listdir(folder), key=int)
params = json.load(open(os.path.join(folder, version, "params.json")))


class Handler(BaseHTTPRequestHandler):
    def _answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == f"/v1/models/{name}":
            return self._answer(200, {"model_version_status": [{"version": version, "state": "AVAILABLE"}]})
        self._answer(404, {"error": "no such model"})

    def do_POST(self):
        if self.path != f"/v1/models/{name}:predict":
            return self._answer(404, {"error": "no such route"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer(200, {"predictions": [params["a"] * x + params["b"] for x in body["instances"]]})


ThreadingHTTPServer(("0.0.0.0", 8501), Handler).serve_forever()
'''


@pytest.fixture(scope="module")
def standin(base_image, tmp_path_factory):
    context = tmp_path_factory.mktemp("standin")
    (context / "tf_serving_standin.py").write_text(STANDIN_SERVER)
    (context / "Dockerfile").write_text(f"FROM {base_image}\nCOPY tf_serving_standin.py /opt/standin/server.py\n"
                                        'ENTRYPOINT ["python3", "/opt/standin/server.py"]\nEXPOSE 8501\n')  # fmt: skip
    client = docker.from_env()
    client.images.build(path=str(context), tag=STANDIN, rm=True)
    yield STANDIN
    client.images.remove(STANDIN, force=True)


def test_custom_container_keeps_the_images_own_server(standin, session_env, tmp_path):
    shutil.copy(TFSERVING / "tfserving-deployment.yml", tmp_path / "tfserving-deployment.yml")  # unchanged
    version = tmp_path / "half_plus_two" / "00000123"
    version.mkdir(parents=True)
    (version / "params.json").write_text('{"a": 0.5, "b": 2.0}')
    unfilled = run_pkgc("build", str(tmp_path / "tfserving-deployment.yml"), env=session_env)
    assert unfilled.returncode == 2 and "placeholder '{{MODEL_VERSION}}' is not filled" in unfilled.stderr
    proc = run_pkgc("build", str(tmp_path / "tfserving-deployment.yml"), "--set", "MODEL_VERSION=1", "--base-image", standin,
                    "--json", env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = json.loads(proc.stdout)["image"]
    config = docker.from_env().images.get(image).attrs["Config"]
    assert config["Entrypoint"] == ["python3", "/opt/standin/server.py"]  # the base's own command, not pkgc's
    request = TFSERVING / "sample_request.json"
    expected = tmp_path / "expected.json"
    instances = json.loads(request.read_text())["instances"]
    expected.write_text(json.dumps({"predictions": [0.5 * x + 2.0 for x in instances]}))  # half plus two, on the host
    verified = run_pkgc("verify", image, "--request-file", str(request), "--expect", str(expected), "--json", env=session_env)
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert json.loads(verified.stdout)["passed"] is True
    remove_images(json.loads(proc.stdout))
