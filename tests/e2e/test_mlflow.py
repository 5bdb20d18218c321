"""MLflow models saved by the real mlflow package, registered in a real sqlite-backed registry,
packaged with no base environment and no scoring script, run, and scored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import docker
import mlflow
import mlflow.sklearn
import pandas
import pytest
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from compiler.runtime.http import request
from tests.conftest import ROOT, run_pkgc
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.engine

REQUIREMENTS = ["mlflow==3.17.2", "scikit-learn==1.9.1", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1", "skops==0.16.0"]
X, Y = load_diabetes(return_X_y=True, as_frame=True)
ROWS = X.head(3)


@pytest.fixture(scope="session")
def registry(tmp_path_factory, session_env) -> dict:
    """Two models in a sqlite-backed MLflow registry: one with a signature, one without and with an
    extra pip requirement (six), the latter with the alias 'champion'."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("pkgc", artifact_location=str(root / "artifacts"))
    models = {}
    for name, alpha, signature, reqs in (
        ("diabetes-sig", 0.5, True, REQUIREMENTS),
        ("diabetes-extra", 2.0, False, REQUIREMENTS + ["six==1.17.0"]),
    ):
        model = Ridge(alpha=alpha).fit(X, Y)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                model, name="model", signature=infer_signature(X, model.predict(X)) if signature else None,
                pip_requirements=reqs, registered_model_name=name,
            )  # fmt: skip
        models[name] = mlflow.pyfunc.load_model(info.model_uri)
    client.set_registered_model_alias("diabetes-extra", "champion", "1")
    env = dict(session_env, MLFLOW_TRACKING_URI=uri)
    return {"uri": uri, "env": env, "models": models}


def spec(tmp_path: Path, mode: str, extra: str = "") -> Path:
    path = tmp_path / f"mlflow-{mode}.yml"
    path.write_text(f"target_environment: mlflow-{mode}\ninferencing_server:\n  type: azureml_online\n"
                    f"model_configuration:\n  mode: {mode}\n{extra}")  # fmt: skip
    return path


@pytest.fixture(scope="session")
def copy_build(registry, tmp_path_factory) -> tuple[dict, Path]:
    """The copy package, built with the engine answering (the OCI back end loads it): its result and spec."""
    path = spec(tmp_path_factory.mktemp("s"), "copy")
    proc = run_pkgc("build", str(path), "--model", "models:/diabetes-sig/1", "--json", env=registry["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), path


@pytest.fixture(scope="session")
def copy_image(copy_build) -> str:
    return copy_build[0]["image"]


def test_with_no_engine_the_mlflow_package_is_the_same_image(copy_build, registry, tmp_path):
    """DOCKER_HOST pointing nowhere: the same spec, lock and model give the same manifest digest, and
    the layout written holds it."""
    built, path = copy_build
    env = dict(registry["env"], DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = run_pkgc("build", str(path), "--model", "models:/diabetes-sig/1", "--output", f"oci:{tmp_path / 'out'}", "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no engine answers" in proc.stderr
    again = json.loads(proc.stdout)
    assert again["loaded"] is False and again["manifest_digest"] == built["manifest_digest"] == again["outputs"][0]["digest"]


def exec_post(container, payload) -> tuple[int, object]:
    """POST from inside a container that has no network (``--network none``)."""
    code = (
        "import json,sys,urllib.request as u\n"
        "r=u.Request('http://127.0.0.1:5001/score',data=sys.argv[1].encode(),headers={'Content-Type':'application/json'})\n"
        "try:\n  f=u.urlopen(r); print(f.status); print(f.read().decode())\n"
        "except u.HTTPError as e:\n  print(e.code); print(e.read().decode())\n"
    )
    out = container.exec_run(["python3", "-c", code, json.dumps(payload)]).output.decode().splitlines()
    return int(out[0]), json.loads(out[1])


@pytest.fixture(scope="session")
def offline_container(copy_image):
    client = docker.from_env()
    container = client.containers.run(copy_image, detach=True, network_mode="none")
    ready = "import urllib.request as u,time\nfor _ in range(240):\n  try:\n    u.urlopen('http://127.0.0.1:5001/'); break\n  except Exception: time.sleep(0.25)"
    container.exec_run(["python3", "-c", ready])
    yield container
    container.remove(force=True)


def test_copy_package_serves_every_request_shape_with_no_network(offline_container, registry):
    expected = registry["models"]["diabetes-sig"].predict(ROWS).tolist()
    columns, rows = list(ROWS.columns), ROWS.values.tolist()
    azure = {"input_data": {"columns": columns, "index": [0, 1, 2], "data": rows}}
    assert exec_post(offline_container, azure) == (200, pytest.approx(expected, rel=1e-12))
    assert exec_post(offline_container, rows) == (200, pytest.approx(expected, rel=1e-12))
    for payload in (
        {"dataframe_split": {"columns": columns, "data": rows}},
        {"dataframe_records": ROWS.to_dict(orient="records")},
    ):
        status, body = exec_post(offline_container, payload)
        assert status == 200 and body["predictions"] == pytest.approx(expected, rel=1e-12)


def test_one_kept_alive_connection_serves_request_after_request(offline_container):
    """pkgc's gunicorn worker (chosen by the entrypoint): no new connection per request."""
    code = (
        "import http.client,json\n"
        "c=http.client.HTTPConnection('127.0.0.1',5001); socks=set()\n"
        "for _ in range(3):\n"
        "  c.request('POST','/score',body=json.dumps({'dataframe_split':{'columns':%r,'data':%r}}),"
        "headers={'Content-Type':'application/json'}); r=c.getresponse(); r.read(); socks.add(id(c.sock))\n"
        "  print(r.status, r.will_close, r.getheader('x-ms-run-fn-exec-ms') is not None)\n"
        "print(len(socks) == 1)\n"
    ) % (list(ROWS.columns), ROWS.values.tolist()[:1])
    out = offline_container.exec_run(["python3", "-c", code]).output.decode().split("\n")
    assert out[:4] == ["200 False True"] * 3 + ["True"]


def test_signature_is_enforced_with_a_400(offline_container):
    status, body = exec_post(offline_container, {"input_data": {"columns": ["age", "sex"], "data": [[0.1, 0.2]]}})
    assert status == 400 and "bmi" in body["error"]
    status, body = exec_post(offline_container, {"dataframe_split": {"columns": list(ROWS.columns), "data": [["x"] * 10]}})
    assert (status, body) == (400, {"error": "column 'age' expects double: \"x\" (row 0) is not a number"})


def test_json_values_are_cast_to_the_signature_types(offline_container, registry):
    """Numbers sent as strings, as MLflow's own scoring server accepts them, in every shape."""
    expected = registry["models"]["diabetes-sig"].predict(ROWS).tolist()
    columns, rows = list(ROWS.columns), [[str(v) for v in row] for row in ROWS.values.tolist()]
    assert exec_post(offline_container, {"input_data": {"columns": columns, "data": rows}}) == (200, pytest.approx(expected, rel=1e-12))
    status, body = exec_post(offline_container, {"dataframe_split": {"columns": columns, "data": rows}})
    assert status == 200 and body["predictions"] == pytest.approx(expected, rel=1e-12)


def test_swagger_reflects_the_signature(offline_container):
    out = offline_container.exec_run(["python3", "-c", "import urllib.request as u; print(u.urlopen('http://127.0.0.1:5001/swagger.json').read().decode())"])
    swagger = json.loads(out.output)
    columns = swagger["definitions"]["ServiceInput"]["properties"]["input_data"]["properties"]["columns"]["items"]["enum"]
    assert columns == list(ROWS.columns)


def test_image_is_lean_mlflow_skinny_only(offline_container):
    skinny = offline_container.exec_run(["python3", "-c", "import importlib.metadata as m; print(m.version('mlflow-skinny'))"])
    assert skinny.output.decode().strip() == "3.17.2"
    full = offline_container.exec_run(["python3", "-c", "import importlib.metadata as m; m.version('mlflow')"])
    assert full.exit_code != 0  # the full mlflow package (server, UI) is not installed


def test_alias_readonly_package_with_extra_requirement(registry, tmp_path, engine, containers):
    proc = run_pkgc("build", str(spec(tmp_path, "readonly_mount")), "--model", "models:/diabetes-extra@champion", "--json", env=registry["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["model"] == "diabetes-extra:1" and result["mode"] == "readonly_mount"
    port = free_port()
    started = run_pkgc("run", result["image"], "--port", str(port), "--detach", "--json", env=registry["env"])
    assert started.returncode == 0, started.stderr
    containers.append(json.loads(started.stdout)["container"])
    response = request(f"http://127.0.0.1:{port}/score", data=json.dumps(ROWS.values.tolist()).encode())
    assert response.status == 200
    assert response.json() == pytest.approx(registry["models"]["diabetes-extra"].predict(ROWS).tolist(), rel=1e-12)
    code, _ = engine.run_command(result["image"], ["python3", "-c", "import six"])
    assert code == 0  # the model's extra pip requirement is installed


def test_conflict_with_base_environment_names_both_origins(registry, tmp_path):
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - scikit-learn==1.5.2\n")
    (tmp_path / "env.yml").write_text("name: old-sklearn\nimage: pkgc/base-debian-bookworm:latest\nconda_file: conda.yaml\n")
    assert run_pkgc("environment", "create", "--file", str(tmp_path / "env.yml"), env=registry["env"]).returncode == 0
    extra = "base_environment_source:\n  type: environment_asset\n  resource_id: azureml:old-sklearn@latest\n"
    proc = run_pkgc("build", str(spec(tmp_path, "copy", extra)), "--model", "models:/diabetes-sig/1", env=registry["env"])
    assert proc.returncode == 2
    (line,) = [l for l in proc.stderr.splitlines() if l.startswith("pkgc: error:")]
    assert "'scikit-learn==1.5.2' from conda file 'conda.yaml' of environment old-sklearn:" in line
    assert "'scikit-learn==1.9.1' from MLflow model diabetes-sig:1 (requirements.txt)" in line


def test_unknown_registry_model_is_a_clear_error(registry, tmp_path):
    proc = run_pkgc("build", str(spec(tmp_path, "copy")), "--model", "models:/nope/1", env=registry["env"])
    assert proc.returncode == 2 and "'models:/nope/1' not found in the MLflow registry" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_example_package_spec_is_valid():
    proc = run_pkgc("build", str(ROOT / "examples" / "mlflow-diabetes" / "package.yml"), "--emit", "spec")
    assert proc.returncode == 0 and json.loads(proc.stdout)["target_environment"] == "mlflow-diabetes-pkg"


def test_slim_package_serves_what_the_default_one_does(registry, offline_container, tmp_path, engine):
    """--slim (the OCI back end slims the venv on the host): same answers in every shape, no test folders."""
    proc = run_pkgc("build", str(spec(tmp_path, "copy")), "--model", "models:/diabetes-sig/1", "--slim",
                    "--target-environment", "pkgc-slim-mlflow", "--json", env=registry["env"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["slim"] is True
    slim = docker.from_env().containers.run(result["image"], detach=True, network_mode="none")
    try:
        ready = "import urllib.request as u,time\nfor _ in range(240):\n  try:\n    u.urlopen('http://127.0.0.1:5001/'); break\n  except Exception: time.sleep(0.25)"
        slim.exec_run(["python3", "-c", ready])
        columns, rows = list(ROWS.columns), ROWS.values.tolist()
        for payload in ({"input_data": {"columns": columns, "data": rows}}, {"dataframe_split": {"columns": columns, "data": rows}},
                        {"dataframe_records": ROWS.to_dict(orient="records")}, {"input_data": {"columns": ["age"], "data": [[1]]}}):  # fmt: skip
            assert exec_post(slim, payload) == exec_post(offline_container, payload)
        found = slim.exec_run(["sh", "-c", "ls -d /opt/pkgc/venv/lib/python3*/site-packages/*/tests /opt/pkgc/venv/bin/pip* 2>/dev/null | wc -l"])
        assert found.output.decode().strip() == "0"
    finally:
        slim.remove(force=True)
