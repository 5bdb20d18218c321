"""Real public samples nobody here wrote (tests/e2e/corpus/*/SOURCE.md), each packaged as its own
documentation says through the real ``pkgc`` command line, served, and answered as the host's own run
of the same code answers.

Only what this machine forces is overridden, and every override is named here (``MACHINE``) and in
README.md's "Real-world samples" table: Azure's mcr.microsoft.com images and Pythons other than 3.11
are unreachable. A sample whose own files cannot serve (code for an older library, a pickle for another
version) must fail in the package exactly as the host's run fails, with pkgc naming the cause. Samples
this machine cannot run are checked for the reason the README gives; the rest are in the table only.

Marks: every test is ``corpus``; ``corpus_heavy`` ones install xgboost (~230 MB with NCCL) or build
images over 1 GB: ``-m "corpus and not corpus_heavy"`` runs the rest.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy
import pandas
import pytest

from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.engine, pytest.mark.corpus]

CORPUS = Path(__file__).resolve().parent / "corpus"
TRANSLATIONS = CORPUS / "_pkgc"  # pkgc's files for samples whose docs name no package (MLServer, KServe)

# Overrides this machine needs, never the samples: each flag with why.
PYTHON_311 = ("--python-version", "3.11")  # the sample's conda.yaml says python=3.12 (or 3.7): only 3.11 here
OFFLINE_BASE = ("--base-image", "pkgc/base-debian-bookworm:latest")  # mcr.microsoft.com/azureml/... unreachable
MACHINE = {"python": PYTHON_311, "base": OFFLINE_BASE}

heavy = pytest.mark.corpus_heavy


# --- helpers -------------------------------------------------------------------------------------------


@pytest.fixture
def env(base_image, tmp_path):
    """A workspace of the test's own (samples reuse model names such as heart-classifier-mlflow); the host
    package cache is shared, so a second sample with the same lock reuses its fetched files and layer.
    The packages the test built (its workspace's records) leave the engine with it."""
    environ = dict(os.environ)
    environ["PKGC_WORKSPACE"] = str(tmp_path / "workspace")
    yield environ
    remove_built_images(tmp_path / "workspace")


def remove_built_images(workspace: Path) -> None:
    """Every tag of every package image recorded in ``workspace`` (its version and content tags)."""
    import docker

    client = docker.from_env()
    for record in sorted(workspace.glob("environments/*/*.json")):
        package = json.loads(record.read_text()).get("package")
        if package:
            try:
                client.images.remove(package["image_id"], force=True)
            except docker.errors.ImageNotFound:
                pass


def sample(name: str, root: Path) -> Path:
    """A private copy of ``corpus/NAME`` (pkgc writes lock files beside specs; the corpus stays as fetched)."""
    target = root / name
    shutil.copytree(CORPUS / name, target, ignore=shutil.ignore_patterns("*.conda-lock.yml", "__pycache__", "SOURCE.md"))
    return target


def pkgc(env: dict, *args: str, cwd: Path | None = None) -> str:
    proc = run_pkgc(*args, cwd=cwd, env=env)
    assert proc.returncode == 0, f"pkgc {' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc.stdout


def build(env: dict, *args: str, cwd: Path | None = None) -> dict:
    return json.loads(pkgc(env, "build", *args, "--json", cwd=cwd))


def served(env: dict, image: str, request_file: Path) -> object:
    """What the package answers: ``pkgc verify`` starts it, waits for its readiness route, POSTs the request."""
    result = json.loads(pkgc(env, "verify", image, "--request-file", str(request_file), "--timeout", "240", "--json"))
    assert result["passed"] and result["status"] == 200, result
    return result["response"]


def readme_training_code(readme: Path) -> str:
    """The Python blocks of a README's "## Training" section: the sample's own code, as its docs run it."""
    section = re.split(r"\n## ", readme.read_text().split("\n## Training", 1)[1], maxsplit=1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))


def run_readme_training(readme: Path, workdir: Path) -> dict:
    """Run the README's training code on the host in ``workdir`` (where it saves the model); its names."""
    code = readme_training_code(readme)
    names: dict = {"__name__": "__corpus__"}
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        exec(compile(code, str(readme), "exec"), names)  # noqa: S102 - the sample's own documented code
    finally:
        os.chdir(cwd)
    return names


def host_mlflow_predict(model_dir: Path, request: dict) -> list:
    """MLflow's own pyfunc on the host, on the Azure ``input_data`` split the sample sends."""
    import mlflow.pyfunc

    split = request["input_data"]
    frame = pandas.DataFrame(split["data"], columns=split["columns"], index=split.get("index"))
    return numpy.asarray(mlflow.pyfunc.load_model(str(model_dir)).predict(frame)).tolist()


def assert_close(answer, expected, rel: float) -> None:
    """Numbers (nested lists) within ``rel`` of the host's, same shape."""
    numpy.testing.assert_allclose(numpy.asarray(answer, dtype=float), numpy.asarray(expected, dtype=float), rtol=rel, atol=0)


def post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    """POST a body of any type on loopback (never through a proxy)."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def v2_outputs(answer: dict) -> list:
    """The data of a V2 inference answer's outputs, flat, as the protocol sends it (MLServer, KServe)."""
    return [numpy.asarray(out["data"]).ravel().tolist() for out in answer["outputs"]]


def v2_request(name: str, rows: numpy.ndarray, path: Path) -> Path:
    """The request the MLServer READMEs build: ``x_0 = X_test[0:1]`` as FP32 with its shape."""
    path.write_text(json.dumps({"inputs": [{"name": name, "shape": list(rows.shape), "datatype": "FP32", "data": rows.tolist()}]}))
    return path


# --- Azure ML: online deployments with MLflow models (no-code deployment) ------------------------------


def test_azureml_ncd_sklearn_mlflow_model(env, tmp_path):
    """azureml-examples cli/endpoints/online/ncd/sklearn-deployment.yaml: an MLflow sklearn model, no
    scoring script, no environment (`az ml online-deployment create -f sklearn-deployment.yaml`)."""
    folder = sample("azureml-ncd", tmp_path)
    built = build(env, str(folder / "sklearn-deployment.yaml"), *MACHINE["python"])
    request = folder / "sample-request-sklearn.json"
    expected = host_mlflow_predict(folder / "sklearn-diabetes" / "model", json.loads(request.read_text()))
    assert_close(served(env, built["image"], request), expected, rel=1e-9)


def test_azureml_ncd_lightgbm_mlflow_model(env, tmp_path):
    """azureml-examples cli/endpoints/online/ncd/lightgbm-deployment.yaml: an MLflow lightgbm Booster."""
    folder = sample("azureml-ncd", tmp_path)
    built = build(env, str(folder / "lightgbm-deployment.yaml"), *MACHINE["python"])
    request = folder / "sample-request-lightgbm.json"
    expected = host_mlflow_predict(folder / "lightgbm-iris" / "model", json.loads(request.read_text()))
    assert_close(served(env, built["image"], request), expected, rel=1e-9)


def test_azureml_ncd_sklearn_mlflow_model_with_scoring_script(env, tmp_path, monkeypatch):
    """azureml-examples cli/endpoints/online/ncd/sklearn-deployment-with-script.yaml: the MLflow model
    with the sample's own score.py and environment (mcr image + conda file, which Azure uses alone).

    The conda file installs ``mlflow`` unpinned, and score.py imports
    ``mlflow.pyfunc.scoring_server.infer_and_parse_json_input``, which MLflow 3 no longer has: the host's
    run of score.py (mlflow 3.17.2) fails to import, and the package must fail the same way, at start-up,
    naming that ImportError."""
    folder = sample("azureml-ncd", tmp_path)
    built = build(env, str(folder / "sklearn-deployment-with-script.yaml"), *MACHINE["python"], *MACHINE["base"])
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(folder / "sklearn-diabetes"))  # score.py joins "model"
    with pytest.raises(ImportError, match="infer_and_parse_json_input"):
        host_score_py(folder / "sklearn-diabetes", folder / "sample-request-sklearn.json")
    proc = run_pkgc("verify", built["image"], "--request-file", str(folder / "sample-request-sklearn.json"), "--timeout", "240", env=env)
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert "ImportError: cannot import name 'infer_and_parse_json_input' from 'mlflow.pyfunc.scoring_server'" in proc.stderr


def host_score_py(model_parent: Path, request: Path) -> str:
    """The sample's score.py imported on the host: init(), then run() on the request body."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("corpus_score", model_parent / "src" / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module.run(request.read_text())


HEART_VERSIONS = (
    "MLflow model heart-classifier-mlflow:1: flavor sklearn recorded scikit-learn 1.1.2 (sklearn_version), "
    "the lock installs 1.7.0"
)


def test_azureml_model_package_mlflow_model_versions_said_at_lock_time(env, tmp_path):
    """deploy-with-packages/mlflow-model: the model was pickled with scikit-learn 1.1.2 (MLmodel), and the
    conda.yaml its flavor names installs 1.7.0. pkgc says so as soon as it locks (seconds, no image)."""
    folder = sample("azureml-package-mlflow", tmp_path)
    pkgc(env, "-q", "model", "create", "--name", "heart-classifier-mlflow", "--path", "model", "--type", "mlflow_model", cwd=folder)
    proc = run_pkgc("lock", "package.yml", "--model", "azureml:heart-classifier-mlflow:1", *MACHINE["python"], cwd=folder, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"pkgc warning: {HEART_VERSIONS}" in proc.stderr


@heavy
def test_azureml_model_package_mlflow_model(env, tmp_path):
    """deploy-with-packages/mlflow-model/deploy.sh as documented: `az ml model create --type mlflow_model`,
    `az ml model package -f package.yml`, invoke with sample-request.json. The build warns (above); the
    1.4 GB package then answers 500 with the unpickled pipeline's error, and the host cannot run the model
    either (its xgboost 3.2 refuses the 1.4.2 booster inside the pickle)."""
    import mlflow.pyfunc

    folder = sample("azureml-package-mlflow", tmp_path)
    pkgc(env, "-q", "model", "create", "--name", "heart-classifier-mlflow", "--path", "model", "--type", "mlflow_model", cwd=folder)
    proc = run_pkgc("model", "package", "-n", "heart-classifier-mlflow", "-v", "1", "-f", "package.yml", *MACHINE["python"], "--json", cwd=folder, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert HEART_VERSIONS in proc.stderr
    with pytest.raises(Exception, match="Invalid serialization file"):
        mlflow.pyfunc.load_model(str(folder / "model"))
    answer = run_pkgc("verify", json.loads(proc.stdout)["image"], "--request-file", "sample-request.json", "--timeout", "240", cwd=folder, env=env)
    assert answer.returncode == 4 and "answered HTTP 500" in answer.stderr, answer.stderr[-3000:]
    assert "AttributeError: 'OrdinalEncoder' object has no attribute '_infrequent_enabled'" in answer.stderr


def test_azureml_binary_payloads(env, tmp_path, containers):
    """azureml-examples cli/endpoints/online/managed/binary-payloads: a JPEG posted as multipart form
    data (the sample's curl -F file=@input.jpg), a 128x128 JPEG back."""
    from PIL import Image

    folder = sample("azureml-binary-payloads", tmp_path)
    built = build(
        env, str(folder / "binary-payloads-deployment.yml"), "--endpoint-name", "corpus-binary",
        "--set", "code_configuration.scoring_script=single-file-to-file-score.py", *MACHINE["python"], *MACHINE["base"],
    )  # fmt: skip
    port = free_port()
    started = json.loads(pkgc(env, "run", built["image"], "--port", str(port), "--detach", "--json"))
    containers.append(started["container"])
    boundary = "pkgc-corpus-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"input.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + (folder / "input.jpg").read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    status, answer = post(f"http://127.0.0.1:{port}/score", body, f"multipart/form-data; boundary={boundary}")
    assert status == 200, answer[:500]
    ours = Image.open(io.BytesIO(answer))
    assert ours.size == (128, 128)  # the script's default_resize
    host = io.BytesIO()  # what the script does, on the host: open, resize, save as JPEG
    Image.open(folder / "input.jpg").resize((128, 128)).save(host, format="JPEG")
    theirs = Image.open(host)
    # the image's Pillow (~=11.2.1, the sample's pin) and the host's encode JPEG with different libjpeg builds
    difference = numpy.abs(numpy.asarray(ours, dtype=float) - numpy.asarray(theirs, dtype=float)).mean()
    assert difference < 2, difference


# --- Seldon MLServer's documented examples (`mlserver start .`) and KServe's V2 sklearn sample -------


def register_mlserver(env: dict, tmp_path: Path, name: str, model_name: str, base_image: str, environment: str = "mlserver") -> Path:
    """The sample folder (trained on the host beforehand) registered as the model, and the environment."""
    for file in (TRANSLATIONS / "environments").glob(f"{environment}-*"):
        # the offline base by the tag of the recipe this session built: on an engine other checkouts share,
        # their sessions may move `latest` to their own recipe's build
        (tmp_path / file.name).write_text(file.read_text().replace("pkgc/base-debian-bookworm:latest", base_image))
    pkgc(env, "-q", "environment", "create", "--file", str(tmp_path / f"{environment}-env.yml"))
    pkgc(env, "-q", "model", "create", "--name", model_name, "--path", str(tmp_path / name))
    spec = tmp_path / "package.yml"
    shutil.copy(TRANSLATIONS / name / "package.yml", spec)
    return spec




def test_mlserver_sklearn(env, tmp_path, base_image):
    folder = sample("mlserver-sklearn", tmp_path)
    trained = run_readme_training(folder / "README.md", folder)  # writes mnist-svm.joblib, as the README does
    spec = register_mlserver(env, tmp_path, "mlserver-sklearn", "mnist-svm", base_image)
    built = build(env, str(spec), "--model", "azureml:mnist-svm:1")
    x_0 = trained["X_test"][0:1]
    answer = served(env, built["image"], v2_request("predict", x_0, tmp_path / "request.json"))
    assert v2_outputs(answer) == [trained["classifier"].predict(x_0).tolist()]


def test_mlserver_lightgbm(env, tmp_path, base_image):
    folder = sample("mlserver-lightgbm", tmp_path)
    trained = run_readme_training(folder / "README.md", folder)  # writes iris-lightgbm.bst
    spec = register_mlserver(env, tmp_path, "mlserver-lightgbm", "iris-lgb", base_image)
    built = build(env, str(spec), "--model", "azureml:iris-lgb:1")
    x_0 = trained["X_test"][0:1]
    answer = served(env, built["image"], v2_request("predict-prob", x_0, tmp_path / "request.json"))
    assert_close(v2_outputs(answer)[0], trained["lgb_model"].predict(x_0).ravel(), rel=1e-6)


@heavy
def test_mlserver_xgboost(env, tmp_path, base_image):
    """The README's training downloads its data from raw.githubusercontent.com (unreachable): the sample's
    own trained model (mushroom-xgboost.json) is served, and the request is the README's ``X_test[0:1]``:
    the first row of agaricus.txt.test (its first lines are kept in the corpus)."""
    import xgboost
    from sklearn.datasets import load_svmlight_file

    folder = sample("mlserver-xgboost", tmp_path)
    booster = xgboost.Booster(model_file=str(folder / "mushroom-xgboost.json"))
    X_test, _ = load_svmlight_file(str(folder / "agaricus.txt.test.head"), n_features=booster.num_features())
    x_0 = X_test.toarray()[0:1]
    spec = register_mlserver(env, tmp_path, "mlserver-xgboost", "mushroom-xgboost", base_image, "mlserver-xgboost")
    built = build(env, str(spec), "--model", "azureml:mushroom-xgboost:1")
    answer = served(env, built["image"], v2_request("predict", x_0, tmp_path / "request.json"))
    assert_close(v2_outputs(answer)[0], booster.predict(xgboost.DMatrix(x_0)), rel=1e-6)


def kserve_v2(env: dict, tmp_path: Path, base_image: str, name: str, model_name: str, environment: str) -> tuple[dict, str]:
    """A KServe V2 sample as documented: trained by its README's code, then served with MLServer.

    The sample's own model-settings.json names ``mlserver.models.<Runtime>``, a module MLServer 1.x no
    longer has: served as is, the package must stop at start-up naming that first exception (pkgc shows
    a crashed server's first exception). Then the model-settings.json its README documents (the runtime
    package ``mlserver_<flavor>``) is written, registered as version 2, and served. Returns the trained
    names and the image."""
    folder = sample(name, tmp_path)
    trained = run_readme_training(folder / "README.md", folder)
    spec = register_mlserver(env, tmp_path, name, model_name, base_image, environment)
    as_committed = build(env, str(spec), "--model", f"azureml:{model_name}:1")
    proc = run_pkgc("verify", as_committed["image"], "--request-file", str(folder / "iris-input.json"), "--timeout", "240", env=env)
    assert proc.returncode == 4 and "No module named 'mlserver.models'" in proc.stderr, proc.stderr[-3000:]
    (folder / "model-settings.json").write_text(readme_json_block(folder / "README.md"))
    pkgc(env, "-q", "model", "create", "--name", model_name, "--path", str(folder))
    return trained, build(env, str(spec), "--model", f"azureml:{model_name}:2")["image"]


def readme_json_block(readme: Path) -> str:
    """The README's documented model-settings.json (its first ```json block)."""
    return re.search(r"```json\n(.*?)```", readme.read_text(), re.S).group(1)


def test_kserve_sklearn_v2(env, tmp_path, base_image):
    """KServe docs/samples/v1beta1/sklearn/v2, asked with its iris-input.json."""
    trained, image = kserve_v2(env, tmp_path, base_image, "kserve-sklearn-v2", "sklearn-iris", "mlserver")
    request = tmp_path / "kserve-sklearn-v2" / "iris-input.json"
    rows = numpy.asarray(json.loads(request.read_text())["inputs"][0]["data"], dtype=numpy.float32)
    assert v2_outputs(served(env, image, request)) == [trained["clf"].predict(rows).tolist()]


@heavy
def test_kserve_xgboost_v2(env, tmp_path, base_image):
    """KServe docs/samples/v1beta1/xgboost (V2 dataplane), on the mlserver-xgboost environment (one lock,
    one layer for both)."""
    import xgboost

    trained, image = kserve_v2(env, tmp_path, base_image, "kserve-xgboost-v2", "xgboost-iris", "mlserver-xgboost")
    request = tmp_path / "kserve-xgboost-v2" / "iris-input.json"
    rows = numpy.asarray(json.loads(request.read_text())["inputs"][0]["data"], dtype=numpy.float32)
    assert_close(v2_outputs(served(env, image, request))[0], trained["xgb_model"].predict(xgboost.DMatrix(rows)), rel=1e-6)


def test_mlserver_custom_json_runtime(env, tmp_path, base_image):
    """MLServer docs/examples/custom-json: a custom runtime (jsonmodels.py beside model-settings.json),
    sent the README's REST request and read as the README reads it."""
    folder = sample("mlserver-custom-json", tmp_path)
    spec = register_mlserver(env, tmp_path, "mlserver-custom-json", "json-hello-world", base_image)
    built = build(env, str(spec), "--model", "azureml:json-hello-world:1")
    inputs = {"name": "Foo Bar", "message": "Hello from Client (REST)!"}  # the README's request
    inputs_string = json.dumps(inputs)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"inputs": [{"name": "echo_request", "shape": [len(inputs_string)], "datatype": "BYTES", "data": [inputs_string]}]}))
    answer = served(env, built["image"], request)
    (output,) = answer["outputs"]
    assert output["name"] == "echo_response" and output["parameters"]["content_type"] == "str"
    # what JsonHelloWorldModel.predict builds from this request: its input parsed, echoed, and its message
    assert json.loads(output["data"][0]) == {"request": {"echo_request": inputs}, "server_response": "Got your request. Hello from the server."}


def test_mlserver_content_type_runtime(env, tmp_path, base_image):
    """MLServer docs/examples/content-type: a custom runtime decoding inputs by the content types its
    model-settings.json declares; the README's "Model Metadata" request comes back echoed."""
    folder = sample("mlserver-content-type", tmp_path)
    spec = register_mlserver(env, tmp_path, "mlserver-content-type", "content-type-example", base_image)
    built = build(env, str(spec), "--model", "azureml:content-type-example:1")
    payload = {
        "inputs": [
            {"name": "metadata-np", "datatype": "INT32", "shape": [2, 2], "data": [1, 2, 3, 4]},
            {"name": "metadata-str", "datatype": "BYTES", "shape": [11], "data": "hello world 😁"},
        ]
    }  # the README's request, as written
    request = tmp_path / "request.json"
    request.write_text(json.dumps(payload))
    answer = served(env, built["image"], request)
    assert answer["model_name"] == "content-type-example"
    echoed = [(o["name"], o["datatype"], o["shape"], numpy.asarray(o["data"]).ravel().tolist()) for o in answer["outputs"]]
    assert echoed == [("metadata-np", "INT32", [2, 2], [1, 2, 3, 4]), ("metadata-str", "BYTES", [11], ["hello world 😁"])]


# --- Samples this machine cannot run: the README table's reason, checked ------------------------------


def refused(env: dict, *args: str, cwd: Path) -> str:
    """Run pkgc as the sample's docs say; it must stop with exit 2 (bad input): its one-line message."""
    proc = run_pkgc(*args, cwd=cwd, env=env)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
    return line


CONDA_FORGE = "cannot fetch conda channel 'conda-forge' (https://conda.anaconda.org/conda-forge/)"


def test_azureml_model_package_custom_model_needs_conda_forge(env, tmp_path):
    """deploy-with-packages/custom-model/deploy.sh: its environment's conda.yaml installs numpy, scikit-learn,
    scipy and xgboost as conda packages from conda-forge, which this machine cannot reach."""
    folder = sample("azureml-package-custom-model", tmp_path)
    pkgc(env, "-q", "model", "create", "--name", "sklearn-regression", "--path", "model", "--type", "custom_model", cwd=folder)
    pkgc(env, "-q", "environment", "create", "-f", "environment/sklearn-regression-env.yml", cwd=folder)
    line = refused(env, "model", "package", "-n", "sklearn-regression", "-v", "1", "--file", "package-moe.yml", *MACHINE["python"], *MACHINE["base"], cwd=folder)
    assert CONDA_FORGE in line


def test_azureml_managed_online_sample_needs_conda_forge(env, tmp_path):
    """managed/sample/blue-deployment.yml (model-1): the same conda-forge packages."""
    folder = sample("azureml-managed-sample", tmp_path) / "managed" / "sample"
    line = refused(env, "build", "blue-deployment.yml", *MACHINE["python"], *MACHINE["base"], cwd=folder)
    assert CONDA_FORGE in line


@heavy  # uv says "scikit-learn==1.1.2 has no usable wheels" at once; pkgc still retries with pip (~60 s)
def test_azureml_batch_heart_classifier_needs_python_38(env, tmp_path):
    """batch/deploy-models/heart-classifier-mlflow/deploy-and-run.sh, deployment-simple: the batch
    deployment YAML is read, and the MLflow model pins scikit-learn 1.1.2 for Python 3.8.5, which has no
    CPython 3.11 wheel (the only Python here)."""
    folder = sample("azureml-batch-heart", tmp_path)
    pkgc(env, "-q", "model", "create", "--name", "heart-classifier-mlflow", "--type", "mlflow_model", "--path", "deployment-simple/model", cwd=folder)
    line = refused(env, "build", "deployment-simple/deployment.yml", "--endpoint-name", "heart-classifier-batch", *MACHINE["python"], cwd=folder)
    assert "scikit-learn==1.1.2" in line and "Python 3.11" in line
