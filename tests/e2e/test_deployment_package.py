"""Seed 000/001's inputs, built and served by the real engine (four lean builds sharing one environment layer).

0. Kubernetes deployments with a single local file and a registered multi-model folder (azureml:NAME:3),
   with an environment reference: served, answers equal to the host's predictions.

1. A managed online-deployment YAML (local multi-model folder, inline environment whose image cannot be
   pulled here -> --base-image, request settings and probes): built, verified against the host's
   predictions, its Kubernetes settings and the deployment that uses it written.
2. ``pkgc model package -n sk -l latest --registry-name corp``: a model registered in a registry from a
   .tar.gz with azureml.unpack, readonly_mount, with an ``inputs:`` file mounted read-only by pkgc verify;
   started without that input it stops at once, naming it.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import joblib
import numpy
import pytest
import yaml

from compiler.engines.base import Mount
from tests.conftest import EXAMPLE, run_pkgc
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.engine

SCORE_MULTI = '''
import json, os
import joblib, numpy

models = {}


def init():
    root = os.path.join(os.environ["AZUREML_MODEL_DIR"], "models")
    for name in ("model_1", "model_2"):
        models[name] = joblib.load(os.path.join(root, name, "v1", "sklearn_regression_model.pkl"))


def run(raw_data):
    data = numpy.array(json.loads(raw_data)["data"])
    return {name: model.predict(data).tolist() for name, model in models.items()}
'''

SCORE_SCALED = '''
import json, os
import joblib, numpy

model = scale = None


def init():
    global model, scale
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "sklearn_regression_model.pkl"))
    with open("/var/azureml-app/inputs/scale.json") as fh:
        scale = json.load(fh)["scale"]


def run(raw_data):
    return (model.predict(numpy.array(json.loads(raw_data)["data"])) * scale).tolist()
'''


def host_predictions() -> list[float]:
    model = joblib.load(EXAMPLE / "model" / "sklearn_regression_model.pkl")
    rows = json.loads((EXAMPLE / "sample-request.json").read_text())["data"]
    return model.predict(numpy.array(rows)).tolist()


@pytest.fixture(scope="module")
def seed_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seed000")
    for name in ("model_1", "model_2"):
        (root / "multi-models-sample" / "models" / name / "v1").mkdir(parents=True)
        shutil.copy(EXAMPLE / "model" / "sklearn_regression_model.pkl", root / "multi-models-sample" / "models" / name / "v1")
    (root / "model-1" / "onlinescoring").mkdir(parents=True)
    (root / "model-1" / "onlinescoring" / "score.py").write_text(SCORE_MULTI)
    (root / "model-1" / "environment").mkdir()
    shutil.copy(EXAMPLE / "environment" / "conda.yaml", root / "model-1" / "environment" / "conda.yml")
    (root / "endpoints" / "blue").mkdir(parents=True)
    shutil.copy(EXAMPLE / "sample-request.json", root / "sample-request.json")
    return root


@pytest.fixture(scope="module")
def sk_env(seed_tree, session_env, base_image) -> str:
    """The example's conda file as a registered base environment (same lock: the environment layer is shared)."""
    env_file = seed_tree / "env.yml"
    env_file.write_text(f"name: sk-env\nimage: {base_image}\nconda_file: {EXAMPLE / 'environment' / 'conda.yaml'}\n")
    created = run_pkgc("environment", "create", "-f", str(env_file), env=session_env)
    assert created.returncode == 0, created.stderr
    return "azureml:sk-env@latest"


SHAPES = {  # seed 000: a single local file (directly in AZUREML_MODEL_DIR; both names load it), a registered multi-model folder
    "single-file": ("model:\n  path: ../../multi-models-sample/models/model_1/v1/sklearn_regression_model.pkl\n",
                    SCORE_MULTI.replace('os.path.join(root, name, "v1", "sklearn_regression_model.pkl")',
                                        'os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl")')),
    "registered": ("model: azureml:pkgc-hf-multimodel:3\n", SCORE_MULTI),
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_kubernetes_deployment_shapes_serve_the_hosts_predictions(shape, seed_tree, session_env, sk_env, tmp_path):
    model, score = SHAPES[shape]
    if shape == "registered":
        created = run_pkgc("model", "create", "-n", "pkgc-hf-multimodel", "-v", "3", "-p",
                           str(seed_tree / "multi-models-sample" / "models"), env=session_env)  # fmt: skip
        assert created.returncode == 0, created.stderr
    folder = seed_tree / "endpoints" / shape
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "score.py").write_text(score)
    (folder / "deployment.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/kubernetesOnlineDeployment.schema.json\n"
        f"name: {shape}\nendpoint_name: pkgc-hf-k8s\n{model}environment: {sk_env}\n"
        "code_configuration:\n  code: code\n  scoring_script: score.py\ninstance_count: 1\n"
    )
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"model_1": host_predictions(), "model_2": host_predictions()}))
    proc = run_pkgc("build", str(folder / "deployment.yml"), "--json", "--verify", "--request-file",
                    str(seed_tree / "sample-request.json"), "--expect", str(expected), env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["target_environment"] == f"pkgc-hf-k8s-{shape}-pkg:1" and result["verify"]["compared"]
    assert result["model"] == ("pkgc-hf-multimodel:3" if shape == "registered" else "sklearn_regression_model:1")


def test_deployment_yaml_builds_serves_and_writes_its_deployment(seed_tree, session_env, base_image, engine):
    deployment = seed_tree / "endpoints" / "blue" / "deployment.yml"
    deployment.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\n"
        "name: blue\nendpoint_name: pkgc-hf-ep\nmodel:\n  path: ../../multi-models-sample/models/\n"
        "code_configuration:\n  code: ../../model-1/onlinescoring/\n  scoring_script: score.py\n"
        "environment:\n  conda_file: ../../model-1/environment/conda.yml\n"
        "  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n"
        "instance_type: Standard_DS3_v2\ninstance_count: 2\napp_insights_enabled: true\n"
        "request_settings:\n  request_timeout_ms: 5000\n  max_concurrent_requests_per_instance: 2\n"
        "liveness_probe:\n  initial_delay: 5\n  period: 7\nreadiness_probe:\n  failure_threshold: 4\n"
    )
    expected = seed_tree / "expected.json"
    expected.write_text(json.dumps({"model_1": host_predictions(), "model_2": host_predictions()}))
    written = seed_tree / "with-package.yml"
    proc = run_pkgc("build", str(deployment), "--base-image", base_image, "--json", "--verify",
                    "--request-file", str(seed_tree / "sample-request.json"), "--expect", str(expected),
                    "--deploy-settings", "kubernetes", "--write-deployment", str(written), env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["target_environment"] == "pkgc-hf-ep-blue-pkg:1" and result["mode"] == "copy"
    assert result["verify"]["passed"] and result["verify"]["compared"]  # real predictions equal the host's
    assert result["deployment"]["run_settings"]["request_timeout_ms"] == "5000"
    assert [line for line in proc.stderr.splitlines() if "ignored" in line] == [
        "pkgc warning: deployment.yml: ignored (no meaning for a container image): instance_type, app_insights_enabled"]
    k8s = result["deploy_settings"]["objects"][0]["spec"]
    container = k8s["template"]["spec"]["containers"][0]
    assert k8s["replicas"] == 2
    assert (container["livenessProbe"]["initialDelaySeconds"], container["livenessProbe"]["periodSeconds"]) == (5, 7)
    assert container["readinessProbe"]["failureThreshold"] == 4
    env = dict(item.split("=", 1) for item in engine.image_info(result["image"]).env)
    assert (env["SCORING_TIMEOUT_MS"], env["WORKER_COUNT"]) == ("5000", "2")
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/models/1"
    out = yaml.safe_load(written.read_text())
    assert out["environment"] == "azureml:pkgc-hf-ep-blue-pkg:1" and out["instance_count"] == 2
    assert not {"model", "code_configuration"} & set(out) and out["name"] == "blue"


def test_model_package_from_registry_archive_with_a_mounted_input(seed_tree, session_env, sk_env, engine, containers):
    project = seed_tree / "packaged"
    (project / "src").mkdir(parents=True)
    (project / "src" / "score.py").write_text(SCORE_SCALED)
    (project / "assets").mkdir()
    (project / "assets" / "scale.json").write_text('{"scale": 2.0}')
    registry = seed_tree / "registry"
    archive = seed_tree / "sk.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(EXAMPLE / "model", arcname="model")
    created = run_pkgc("--workspace", str(registry), "model", "create", "-n", "sk", "-p", str(archive),
                       "--properties", "azureml.unpack=true", env=session_env)  # fmt: skip
    assert created.returncode == 0 and created.stdout.strip() == "azureml:sk:1", created.stderr
    (project / "pkgc.toml").write_text(f'[registries]\ncorp = "{registry}"\n')
    (project / "package.yml").write_text(
        "$schema: http://azureml/sdk-2-0/ModelVersionPackage.json\n"
        "base_environment_source:\n  type: environment_asset\n  resource_id: azureml:sk-env@latest\n"
        "target_environment_name: pkgc-hf-sk-scaled-pkg\n"
        "inferencing_server:\n  type: azureml_online\n  code_configuration:\n    code: src\n    entry_script: score.py\n"
        "model_configuration:\n  mode: readonly_mount\n"
        "inputs:\n  - type: uri_file\n    path: assets/scale.json\n    mode: readonly_mount\n"
        "    mount_path: /var/azureml-app/inputs/scale.json\n"
    )
    expected = project / "expected.json"
    expected.write_text(json.dumps([2.0 * p for p in host_predictions()]))
    proc = run_pkgc("model", "package", "-n", "sk", "-l", "latest", "--registry-name", "corp", "-f", str(project / "package.yml"),
                    "--json", "--verify", "--request-file", str(seed_tree / "sample-request.json"), "--expect", str(expected),
                    env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["model"] == "sk:1" and result["mode"] == "readonly_mount"
    assert result["verify"]["passed"] and result["verify"]["compared"] and result["verify"]["model_mounted"]
    # started with the model but without its input: it stops at once, naming the input
    info = engine.image_info(result["image"])
    tree = Path(session_env["PKGC_WORKSPACE"]) / "trees" / info.labels["io.pkgc.model.tree"].removeprefix("sha256:")
    handle = engine.run(result["image"], 5001, free_port(), [Mount(tree, result["model_dir"])], {})
    containers.append(handle.container_id)
    deadline = time.monotonic() + 20
    while engine.exit_code(handle.container_id) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.exit_code(handle.container_id) == 78
    assert "input /var/azureml-app/inputs/scale.json is not mounted" in engine.logs(handle.container_id)
