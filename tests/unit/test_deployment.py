"""Online-deployment YAMLs read as package specs (seed 000's shapes), without an engine: load, resolve, plan
labels, the written deployment and the deploy settings they lead to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from compiler.deploy.settings import deploy_facts, kubernetes, app_service
from compiler.errors import SpecError
from compiler.options import Options
from compiler.resolve import resolve_package
from compiler.runsettings import Probe, RunSettings
from compiler.spec import load_package_spec
from compiler.spec.deployment_out import deployment_using
from compiler.workspace import Workspace
from tests.conftest import EXAMPLE, run_pkgc

SCHEMA = "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json"


@pytest.fixture
def tree(tmp_path) -> Path:
    """Seed 000's folders: a multi-model folder, the scoring code and the conda file of 'model-1'."""
    models = tmp_path / "multi-models-sample" / "models"
    for sub in ("model_1/v1", "model_2/v1"):
        (models / sub).mkdir(parents=True)
        shutil.copy(EXAMPLE / "model" / "sklearn_regression_model.pkl", models / sub / "sample.pkl")
    code = tmp_path / "model-1" / "onlinescoring"
    code.mkdir(parents=True)
    shutil.copy(EXAMPLE / "src" / "score.py", code / "score.py")
    (tmp_path / "model-1" / "environment").mkdir()
    shutil.copy(EXAMPLE / "environment" / "conda.yaml", tmp_path / "model-1" / "environment" / "conda.yml")
    (tmp_path / "endpoints" / "blue").mkdir(parents=True)
    return tmp_path


def deployment(tree: Path, model: str, extra: str = "", environment: str | None = None) -> Path:
    env = environment or (
        "environment:\n  conda_file: ../../model-1/environment/conda.yml\n"
        "  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n"
    )
    text = (f"$schema: {SCHEMA}\nname: blue\nendpoint_name: my-endpoint\n{model}\n"
            "code_configuration:\n  code: ../../model-1/onlinescoring/\n  scoring_script: score.py\n"
            f"{env}instance_type: Standard_DS3_v2\ninstance_count: 1\n{extra}")  # fmt: skip
    path = tree / "endpoints" / "blue" / "deployment.yml"
    path.write_text(text)
    return path


def options(tmp_path: Path, registries: dict | None = None) -> Options:
    return Options(workspace=tmp_path / "ws", cache_dir=tmp_path / "cache", registries=registries or {})


def test_single_local_file_is_the_model_dir_content(tree, tmp_path):
    spec_file = load_package_spec(deployment(tree, "model:\n  path: ../../multi-models-sample/models/model_1/v1/sample.pkl"))
    spec = spec_file.spec
    assert spec.target_environment == "my-endpoint-blue-pkg" and spec.mode.value == "copy"
    assert spec.inferencing_server.code_configuration.scoring_script == "score.py"
    pkg = resolve_package(spec_file, None, Workspace(tmp_path / "ws"), options(tmp_path))
    assert pkg.model.root_name == "sample.pkl" and (pkg.model.tree_path / "sample.pkl").is_file()
    assert pkg.environment.image.startswith("mcr.microsoft.com/azureml/") and pkg.environment.conda_file.name == "conda.yml"
    assert pkg.environment.conda_label.endswith("of deployment.yml")
    # --base-image replaces an image this machine cannot pull
    pkg = resolve_package(spec_file, None, Workspace(tmp_path / "ws"), options(tmp_path), "pkgc/base-debian-bookworm:latest")
    assert pkg.environment.image == "pkgc/base-debian-bookworm:latest"


def test_local_multi_model_folder_keeps_its_tree(tree, tmp_path):
    spec_file = load_package_spec(deployment(tree, "model:\n  path: ../../multi-models-sample/models/"))
    pkg = resolve_package(spec_file, None, Workspace(tmp_path / "ws"), options(tmp_path))
    assert pkg.model.root_name == "models"
    assert (pkg.model.tree_path / "models" / "model_1" / "v1" / "sample.pkl").is_file()
    assert (pkg.model.tree_path / "models" / "model_2" / "v1" / "sample.pkl").is_file()


def test_registered_model_and_registry_id(tree, tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create_model("local-multimodel", tree / "multi-models-sample" / "models", version="3")
    spec_file = load_package_spec(deployment(tree, "model: azureml:local-multimodel:3"))
    pkg = resolve_package(spec_file, None, ws, options(tmp_path))
    assert (pkg.model.name, pkg.model.version) == ("local-multimodel", "3")
    assert pkg.model_dir == "/var/azureml-app/azureml-models/local-multimodel/3"
    registry = Workspace(tmp_path / "registry")
    registry.create_model("Meta-Llama-3-8B-Instruct", tree / "multi-models-sample" / "models", version="2")
    spec_file = load_package_spec(
        deployment(tree, "model: azureml://registries/azureml-meta/models/Meta-Llama-3-8B-Instruct/versions/2")
    )
    pkg = resolve_package(spec_file, None, ws, options(tmp_path, {"azureml-meta": tmp_path / "registry"}))
    assert (pkg.model.name, pkg.model.version, pkg.model.reference) == (
        "Meta-Llama-3-8B-Instruct", "2", "azureml://registries/azureml-meta/models/Meta-Llama-3-8B-Instruct/versions/2")
    with pytest.raises(SpecError) as caught:  # an unconfigured registry is named at the model key and line
        resolve_package(spec_file, None, ws, options(tmp_path))
    assert caught.value.lines()[0].startswith(f"{spec_file.path}:4: model: registry 'azureml-meta' is not configured")


def test_inline_model_and_environment_reference(tree, tmp_path):
    ws = Workspace(tmp_path / "ws")
    env_file = tree / "env.yml"
    env_file.write_text("name: model-env\nimage: pkgc/base-debian-bookworm:latest\nconda_file: model-1/environment/conda.yml\n")
    from compiler.workspace.envfile import create_environment_from_file

    create_environment_from_file(env_file, ws)
    model = ("model:\n  name: sk\n  version: 7\n  type: custom_model\n"
             "  path: ../../multi-models-sample/models/model_1/v1/sample.pkl")  # fmt: skip
    spec_file = load_package_spec(deployment(tree, model, environment="environment: azureml:model-env@latest\n"))
    assert spec_file.spec.base_environment_source.resource_id == "azureml:model-env@latest"
    pkg = resolve_package(spec_file, None, ws, options(tmp_path))
    assert (pkg.model.name, pkg.model.version, pkg.environment.name) == ("sk", "7", "model-env")


def test_run_settings_become_server_variables_labels_and_kubernetes_probes(tree, tmp_path):
    extra = ("request_settings:\n  request_timeout_ms: 5000\n  max_concurrent_requests_per_instance: 2\n"
             "  max_queue_wait_ms: 100\nliveness_probe:\n  initial_delay: 5\n  failure_threshold: 4\n"
             "readiness_probe:\n  period: 3\napp_insights_enabled: true\negress_public_network_access: disabled\n"
             "environment_variables:\n  WORKER_COUNT: '3'\n")  # fmt: skip
    spec_file = load_package_spec(deployment(tree, "model: azureml:m:1", extra))
    assert spec_file.spec.environment_variables == {"SCORING_TIMEOUT_MS": "5000", "WORKER_COUNT": "3"}  # the user's wins
    info = spec_file.deployment
    assert info.ignored == ("instance_type", "app_insights_enabled", "egress_public_network_access",
                            "request_settings.max_queue_wait_ms")  # fmt: skip
    run = info.run_settings
    assert run == RunSettings(5000, 2, 1, Probe(initial_delay=5, failure_threshold=4), Probe(period=3))
    labels = {"io.pkgc.model.mode": "copy", "io.pkgc.model.dir": "/var/azureml-app/azureml-models/m/1",
              "io.pkgc.model.tree": "sha256:" + "a" * 64, "io.pkgc.model.name": "m", "io.pkgc.model.version": "1",
              "org.opencontainers.image.title": "my-endpoint-blue-pkg", **run.to_labels()}  # fmt: skip
    assert RunSettings.from_labels("img", labels) == run
    assert RunSettings(request_timeout_ms=600_000).environment() == {"SCORING_TIMEOUT_MS": "600000", "WORKER_TIMEOUT": "601"}
    k8s = kubernetes(deploy_facts("img", labels)).data["objects"][0]
    assert k8s["spec"]["replicas"] == 1
    container = k8s["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["initialDelaySeconds"] == 5 and container["livenessProbe"]["failureThreshold"] == 4
    assert container["readinessProbe"]["periodSeconds"] == 3 and container["readinessProbe"]["timeoutSeconds"] == 2
    service = app_service(deploy_facts("img", labels)).data
    assert service["app_settings"]["WEBSITES_CONTAINER_START_TIME_LIMIT"] == "230"


@pytest.mark.parametrize("bad", ["io.pkgc.run.instance_count=0", "io.pkgc.run.request_timeout_ms=1e9",
                                 "io.pkgc.probe.liveness=period=1,period=2", "io.pkgc.probe.readiness=rm -rf=1",
                                 "io.pkgc.run.requests=cpu=1;rm", "io.pkgc.run.limits=disk=1Gi"])  # fmt: skip
def test_hostile_run_labels_are_refused(bad):
    key, _, value = bad.partition("=")
    from compiler.errors import ResolveError

    with pytest.raises(ResolveError, match=f"label {key}"):
        RunSettings.from_labels("img", {key: value})


def test_kubernetes_deployment_detected_by_keys_and_named_by_flag(tree, tmp_path):
    path = tree / "k8s.yml"
    path.write_text("name: green\nendpoint_name: ep\ntype: kubernetes\nmodel: azureml:m:1\nenvironment: azureml:e:1\n"
                    "code_configuration:\n  code: model-1/onlinescoring\n  scoring_script: score.py\n"
                    "resources:\n  requests:\n    cpu: '0.1'\n    memory: 0.1Gi\nscale_settings:\n  type: default\n")  # fmt: skip
    spec_file = load_package_spec(path)
    assert spec_file.spec.target_environment == "ep-green-pkg"
    assert spec_file.deployment.ignored == ("scale_settings", "type")
    run = spec_file.deployment.run_settings
    assert run.requests == (("cpu", "0.1"), ("memory", "0.1Gi")) and run.limits == ()
    labels = {"io.pkgc.model.mode": "copy", "io.pkgc.model.dir": "/var/azureml-app/azureml-models/m/1",
              "io.pkgc.model.tree": "sha256:" + "a" * 64, "io.pkgc.model.name": "m", "io.pkgc.model.version": "1",
              **run.to_labels()}  # fmt: skip
    container = kubernetes(deploy_facts("img", labels)).data["objects"][0]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "0.1", "memory": "0.1Gi"}}
    assert load_package_spec(path, "custom-name").spec.target_environment == "custom-name"
    path.write_text(path.read_text().replace("cpu: '0.1'", "cpu: 1 core"))
    with pytest.raises(SpecError, match="resources.requests.cpu: must be a Kubernetes quantity"):
        load_package_spec(path)


def test_written_deployment_is_shaped_like_azures(tree):
    extra = "request_settings:\n  request_timeout_ms: 5000\nenvironment_variables:\n  A: b\nmodel_mount_path: /var/azureml-app/m\n"
    path = deployment(tree, "model: azureml:m:1", extra)
    written = deployment_using(path, "my-endpoint-blue-pkg:4")
    assert list(written)[:4] == ["$schema", "name", "endpoint_name", "environment"]
    assert written["environment"] == "azureml:my-endpoint-blue-pkg:4"
    assert not {"model", "code_configuration", "environment_variables", "model_mount_path"} & set(written)
    assert written["instance_count"] == 1 and written["request_settings"] == {"request_timeout_ms": 5000}


def test_errors_name_the_deployment_keys_and_lines(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("PKGC_WORKSPACE", str(tmp_path / "ws"))
    path = deployment(tree, "model: azureml:m:1", "liveness_probe:\n  period: 0\n")
    proc = run_pkgc("build", str(path), "--emit", "spec")
    assert proc.returncode == 2 and proc.stderr.strip().endswith("liveness_probe.period: Input should be greater than or equal to 1 (got 0)")
    assert f"{path}:14:" in proc.stderr
    path = deployment(tree, "model: azureml:m:1").parent / "deployment.yml"
    path.write_text(path.read_text().replace("code: ../../model-1/onlinescoring/", "code: ../../nowhere"))
    proc = run_pkgc("build", str(path), "--emit", "spec")
    assert proc.returncode == 2 and f"{path}:6: code_configuration.code: code folder '../../nowhere' not found" in proc.stderr
    long = "e" * 40
    path.write_text(f"name: {'d' * 30}\nendpoint_name: {long}\nmodel: azureml:m:1\n")
    proc = run_pkgc("build", str(path), "--emit", "spec")
    assert proc.returncode == 2 and "name: the package name" in proc.stderr and "--target-environment" in proc.stderr
    proc = run_pkgc("build", str(path), "--emit", "spec", "--target-environment", "bad name")
    assert proc.returncode == 2 and "--target-environment" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ws").exists()


def test_schema_of_deployment_and_package():
    deployment_schema = json.loads(run_pkgc("schema", "deployment").stdout)
    assert {"endpoint_name", "model", "environment", "request_settings", "liveness_probe"} <= set(deployment_schema["properties"])
    package_schema = json.loads(run_pkgc("schema").stdout)
    assert {"target_environment", "inputs"} <= set(package_schema["properties"])


def test_write_deployment_is_checked_before_any_work(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("PKGC_WORKSPACE", str(tmp_path / "ws"))
    path = deployment(tree, "model: azureml:m:1")
    proc = run_pkgc("build", str(path), "--write-deployment", str(path))
    assert proc.returncode == 2 and "is the input file" in proc.stderr
    proc = run_pkgc("build", str(EXAMPLE / "package-moe.yml"), "--write-deployment", str(tmp_path / "d.yml"))
    assert proc.returncode == 2 and "is not an online-deployment YAML" in proc.stderr
    assert not (tmp_path / "ws").exists() and not (tmp_path / "d.yml").exists()
    assert yaml.safe_load(path.read_text())["name"] == "blue"


def test_inline_archive_model_is_unpacked(tree, tmp_path):
    import tarfile

    archive = tree / "multi.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "multi-models-sample" / "models", arcname="models")
    model = "model:\n  path: ../../multi.tar.gz\n  properties:\n    azureml.unpack: true"
    spec_file = load_package_spec(deployment(tree, model))
    assert spec_file.spec.model.properties == {"azureml.unpack": "true"}
    pkg = resolve_package(spec_file, None, Workspace(tmp_path / "ws"), options(tmp_path))
    assert pkg.model.root_name == "models" and (pkg.model.tree_path / "models" / "model_2" / "v1" / "sample.pkl").is_file()
    assert pkg.model.name == "models"


SEED_000 = """$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json 
name: blue 
endpoint_name: my-endpoint 
model: {model}
code_configuration: 
  code: ../../model-1/onlinescoring/ 
  scoring_script: score.py 
environment:  
  conda_file: ../../model-1/environment/conda.yml 
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest 
instance_type: Standard_DS3_v2 
instance_count: 1 
"""  # seed 000's three YAMLs as written there, trailing spaces and all


@pytest.mark.parametrize("model", [
    "\n  path: /Downloads/multi-models-sample/models/model_1/v1/sample_m1.pkl ",
    "\n  path: /Downloads/multi-models-sample/models/ ",
    "azureml:local-multimodel:3 ",
])  # fmt: skip
def test_seed_000_yamls_load_as_written(tree, model):
    path = tree / "endpoints" / "blue" / "deployment.yml"
    path.write_text(SEED_000.format(model=model))
    spec_file = load_package_spec(path)
    assert spec_file.spec.target_environment == "my-endpoint-blue-pkg"
    assert spec_file.deployment.inline_environment.conda_file == tree / "model-1" / "environment" / "conda.yml"
    assert spec_file.deployment.ignored == ("instance_type",)
    assert spec_file.spec.model == model.strip() or spec_file.spec.model.path == model.split("path: ")[1].strip()
