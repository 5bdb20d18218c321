"""Azure's own deployment YAMLs (tests/samples/azureml-examples, unchanged): batch deployments as
azureml_batch packages, custom containers, placeholders filled by --set/--endpoint-name. No engine:
load, translate, resolve and plan only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from compiler.errors import SpecError
from compiler.options import Options
from compiler.plan.planner import _own_container
from compiler.resolve import resolve_package
from compiler.spec import load_package_spec
from compiler.spec.batch_job import AZURE_DEFAULTS, job_variables
from compiler.spec.overrides import parse_overrides
from compiler.workspace import Workspace
from tests.conftest import run_pkgc

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "azureml-examples" / "cli"
HEART = SAMPLES / "endpoints" / "batch" / "deploy-models" / "heart-classifier-mlflow"
CUSTOM = SAMPLES / "endpoints" / "online" / "custom-container"


def copy_sample(relative: str, dest: Path) -> Path:
    """A sample YAML copied as it is into ``dest`` (the folders it names are made by each test)."""
    target = dest / Path(relative).name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / relative, target)
    return target


def mlflow_model(folder: Path) -> Path:
    """The heart classifier's own MLmodel and conda.yaml (the pickle is not needed to resolve)."""
    folder.mkdir(parents=True)
    shutil.copy(HEART / "deployment-simple" / "model" / "MLmodel", folder / "MLmodel")
    (folder / "conda.yaml").write_text("channels: [conda-forge]\ndependencies:\n- python=3.11\n- pip:\n  - mlflow\n  - scikit-learn\n")
    (folder / "model.pkl").write_bytes(b"not read when resolving")
    return folder


def variables(spec_file) -> dict[str, str]:
    """The job defaults the image gets from the batch server's settings."""
    assert not any(k.startswith("PKGC_") for k in spec_file.spec.environment_variables)  # reserved: pkgc's own
    return job_variables(spec_file.spec.inferencing_server.settings)


def options(tmp_path: Path) -> Options:
    return Options(workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")


def fails(path: Path, **kwargs) -> str:
    with pytest.raises(SpecError) as err:
        load_package_spec(path, **kwargs)
    assert len(err.value.lines()) == 1
    return err.value.lines()[0]


def test_model_batch_deployment_settings_become_the_jobs_defaults():
    spec_file = load_package_spec(HEART / "deployment-simple" / "deployment.yml")
    assert spec_file.spec.target_environment == "heart-classifier-batch-classifier-xgboost-mlflow-pkg"
    assert spec_file.spec.inferencing_server.type == "azureml_batch"
    assert spec_file.spec.code_configuration is None  # an MLflow model: the scoring script is generated
    assert variables(spec_file) == {
        "PKGC_BATCH_MINI_BATCH_SIZE": "2", "PKGC_BATCH_OUTPUT_ACTION": "append_row", "PKGC_BATCH_OUTPUT_FILE_NAME": "predictions.csv",
        "PKGC_BATCH_MAX_RETRIES": "3", "PKGC_BATCH_TIMEOUT": "300", "PKGC_BATCH_ERROR_THRESHOLD": "-1",
        "PKGC_BATCH_MAX_CONCURRENCY": "2", "PKGC_BATCH_LOGGING_LEVEL": "info",
    }  # fmt: skip
    info = spec_file.deployment
    assert info.kind == "batch" and info.job["timeout"] == "300"
    assert set(info.ignored) == {"compute", "resources", "description", "type"}


def test_the_older_top_level_form_reads_the_same(tmp_path):
    path = copy_sample("endpoints/batch/mnist-torch-deployment.yml", tmp_path)
    (tmp_path / "mnist" / "model").mkdir(parents=True)
    (tmp_path / "mnist" / "code").mkdir()
    (tmp_path / "mnist" / "code" / "batch_driver.py").write_text("def init(): pass\ndef run(b): return b\n")
    (tmp_path / "mnist" / "environment").mkdir()
    (tmp_path / "mnist" / "environment" / "conda.yml").write_text("dependencies:\n- python=3.11\n- pip:\n  - pandas\n")
    spec_file = load_package_spec(path)
    assert spec_file.spec.code_configuration.scoring_script == "batch_driver.py"
    assert variables(spec_file)["PKGC_BATCH_TIMEOUT"] == "30" and variables(spec_file)["PKGC_BATCH_MAX_CONCURRENCY"] == "2"
    assert spec_file.deployment.inline_environment.conda_file == (tmp_path / "mnist" / "environment" / "conda.yml").resolve()


def test_settings_not_written_take_azures_defaults(tmp_path):
    path = tmp_path / "deployment.yml"
    path.write_text("$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json\n"
                    "name: d\nendpoint_name: e\ntype: model\nmodel: azureml:m:1\ncompute: azureml:c\n")  # fmt: skip
    assert variables(load_package_spec(path)) == {f"PKGC_BATCH_{k.upper()}": str(v) for k, v in AZURE_DEFAULTS.items()}


def test_set_fills_a_missing_endpoint_name_and_dotted_settings(tmp_path):
    path = SAMPLES / "foundation-models" / "system" / "inference" / "fill-mask" / "batch-deploy.yml"
    assert fails(path).endswith("batch-deploy.yml:1: endpoint_name: required key is missing")  # the sample leaves it to the CLI
    spec_file = load_package_spec(path, overrides=parse_overrides(["mini_batch_size=5"], "fill-mask-ep"))
    assert spec_file.deployment.endpoint_name == "fill-mask-ep"
    assert variables(spec_file)["PKGC_BATCH_MINI_BATCH_SIZE"] == "5" and variables(spec_file)["PKGC_BATCH_ERROR_THRESHOLD"] == "0"
    # the sample's settings are at the top level: adding the newer form of the same key is named
    assert "mini_batch_size: given both here and under settings" in fails(path, overrides=parse_overrides(["settings.mini_batch_size=5"], "x"))
    copy = copy_sample("endpoints/batch/deploy-models/heart-classifier-mlflow/deployment-simple/deployment.yml", tmp_path)
    spec_file = load_package_spec(copy, overrides=parse_overrides(["settings.mini_batch_size=5", "settings.retry_settings.timeout=7"]))
    assert variables(spec_file)["PKGC_BATCH_MINI_BATCH_SIZE"] == "5" and variables(spec_file)["PKGC_BATCH_TIMEOUT"] == "7"


@pytest.mark.parametrize("edit, message", [
    ("settings:\n  error_threshold: -2\n", ":7: settings.error_threshold: Input should be greater than or equal to -1"),
    ("settings:\n  output_action: append\n", ":7: settings.output_action: Input should be 'append_row' or 'summary_only'"),
    ("settings:\n  output_file_name: ../x.csv\n", ":7: settings.output_file_name: must be a plain file name"),
    ("settings:\n  retry_settings: {max_retries: 1, tries: 2}\n", ":7: settings.retry_settings.tries: unknown key"),
    ("mini_batch_size: 3\nsettings:\n  mini_batch_size: 4\n", ":6: mini_batch_size: given both here and under settings"),
    ("type: online\n", ":6: type: Input should be 'model'"),
    ("type: pipeline\n", ":6: type: a pipeline component batch deployment runs an Azure ML pipeline, not a model"),
])  # fmt: skip
def test_bad_batch_settings_name_the_key_and_line(tmp_path, edit, message):
    path = tmp_path / "deployment.yml"
    path.write_text("$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json\n"
                    "name: d\nendpoint_name: e\nmodel: azureml:m:1\ncompute: c\n" + edit)  # fmt: skip
    line = fails(path)
    assert line.startswith(str(path)) and message in line, line


def test_a_pipeline_component_deployment_is_refused_in_one_line():
    line = fails(SAMPLES / "endpoints" / "batch" / "deploy-pipelines" / "hello-batch" / "deployment.yml")
    assert "deployment.yml:1: $schema: a pipeline component batch deployment runs an Azure ML pipeline, not a model" in line


def test_placeholders_are_named_until_filled(tmp_path):
    path = copy_sample("endpoints/online/managed/binary-payloads/binary-payloads-deployment.yml", tmp_path)
    (tmp_path / "env.yml").write_text("dependencies:\n- python=3.11\n")
    assert fails(path).endswith("binary-payloads-deployment.yml:3: endpoint_name: placeholder '<ENDPOINT_NAME>' is not filled: "
                                "pass --set ENDPOINT_NAME=VALUE (or --endpoint-name NAME)")  # fmt: skip
    line = fails(path, overrides=parse_overrides([], "bp"))
    assert line.endswith(":8: code_configuration.scoring_script: placeholder '<SCORING_SCRIPT>' is not filled: pass --set SCORING_SCRIPT=VALUE")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "single-file.py").write_text("def init(): pass\ndef run(r): return r\n")
    spec_file = load_package_spec(path, overrides=parse_overrides(["scoring_script=single-file.py"], "bp"))
    assert spec_file.spec.target_environment == "bp-binary-payload-pkg"
    assert spec_file.spec.code_configuration.scoring_script == "single-file.py"


def test_unquoted_braces_are_filled_before_parsing(tmp_path):
    path = copy_sample("endpoints/online/custom-container/tfserving/half-plus-two/tfserving-deployment.yml", tmp_path)
    line = fails(path)
    assert line.endswith("tfserving-deployment.yml:6: version: placeholder '{{MODEL_VERSION}}' is not filled: pass --set MODEL_VERSION=VALUE")
    (tmp_path / "half_plus_two").mkdir()
    spec_file = load_package_spec(path, overrides=parse_overrides(["MODEL_VERSION=3"]))
    assert spec_file.spec.model.version == "3"
    assert spec_file.spec.environment_variables["MODEL_BASE_PATH"] == "/var/azureml-app/azureml-models/tfserving-mounted/3"


@pytest.mark.parametrize("sets, message", [
    (["no-equals-sign"], "--set: 'no-equals-sign' is not KEY=VALUE"),
    (["MODEL_VERSION=1 2"], "--set: MODEL_VERSION: '1 2' fills a placeholder: give a plain name"),
    (["model.name.x=1"], "--set: model.name.x: 'model.name' is not a mapping"),
])  # fmt: skip
def test_bad_set_values_are_one_line(tmp_path, sets, message):
    path = copy_sample("endpoints/online/custom-container/tfserving/half-plus-two/tfserving-deployment.yml", tmp_path)
    if sets == ["model.name.x=1"]:
        path.write_text(path.read_text().replace("{{MODEL_VERSION}}", "1"))
    with pytest.raises(SpecError) as err:
        load_package_spec(path, overrides=parse_overrides(sets))
    assert message in str(err.value)


def test_custom_container_without_a_script_runs_the_images_own_command(tmp_path):
    path = copy_sample("endpoints/online/custom-container/tfserving/half-plus-two/tfserving-deployment.yml", tmp_path)
    model = tmp_path / "half_plus_two" / "00000123"
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"\x08\x01")
    spec_file = load_package_spec(path, overrides=parse_overrides(["MODEL_VERSION=1"]))
    server = spec_file.spec.inferencing_server
    assert server.type == "custom" and server.inference_configuration.entry_script is None
    pkg = resolve_package(spec_file, None, Workspace(tmp_path / "ws"), options(tmp_path), "pkgc/base-debian-bookworm:latest")
    assert pkg.server.command == () and _own_container(pkg)  # the plan keeps the base image's ENTRYPOINT and CMD
    assert (pkg.server.score.port, pkg.server.score.path) == (8501, "/v1/models/half_plus_two:predict")
    assert pkg.server.readiness.path == "/v1/models/half_plus_two"
    assert pkg.environment.image == "pkgc/base-debian-bookworm:latest"  # --base-image replaces docker.io/tensorflow/serving


def test_custom_container_with_a_script_is_azures_inference_server(tmp_path):
    path = copy_sample("endpoints/online/custom-container/minimal/single-model/pip-in-dockerfile/"
                       "minimal-single-model-pip-in-dockerfile-deployment.yml", tmp_path / "a" / "b" / "c" / "d")  # fmt: skip
    (tmp_path / "model-1" / "model").mkdir(parents=True)
    (tmp_path / "model-1" / "onlinescoring").mkdir()
    (tmp_path / "model-1" / "onlinescoring" / "score.py").write_text("def init(): pass\ndef run(r): return r\n")
    sets = parse_overrides(["ACR_NAME=myacr"], "minimal")
    spec_file = load_package_spec(path, overrides=sets)
    assert spec_file.spec.inferencing_server.type == "azureml_online"
    assert spec_file.deployment.inline_environment.image == "myacr.azurecr.io/azureml-examples/minimal-single-model-pip-in-dockerfile:1"
    path.write_text(path.read_text().replace("port: 5001\n    scoring_route:", "port: 5002\n    scoring_route:"))
    assert "environment.inference_config.readiness_route: with code_configuration, Azure ML's inference server" in fails(path, overrides=sets)


def test_mlflow_batch_deployment_generates_the_driver_and_base_image_wins(tmp_path):
    root = tmp_path / "heart"
    for part in ("deployment-custom/deployment.yml", "deployment-custom/code/batch_driver.py", "deployment-custom/environment/conda.yaml",
                 "deployment-simple/deployment.yml"):  # fmt: skip
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(HEART / part, root / part)
    model = str(mlflow_model(tmp_path / "model"))
    ws, opts = Workspace(tmp_path / "ws"), options(tmp_path)
    simple = resolve_package(load_package_spec(root / "deployment-simple" / "deployment.yml"), model, ws, opts)
    assert simple.code.scoring_script == "batch_score.py" and (simple.code.directory / "batch_score.py").is_file()
    assert simple.server.type == "azureml_batch" and simple.mlflow is not None
    custom = load_package_spec(root / "deployment-custom" / "deployment.yml")
    pkg = resolve_package(custom, model, ws, opts)
    assert pkg.environment.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    assert pkg.code.scoring_script == "batch_driver.py"  # the deployment's own script
    pkg = resolve_package(custom, model, ws, opts, "pkgc/base-debian-bookworm:latest")
    assert pkg.environment.image == "pkgc/base-debian-bookworm:latest"  # --base-image over an MLflow model's environment
    assert pkg.environment.conda_file.name == "conda.yaml"


def test_the_command_line_takes_set_and_endpoint_name(tmp_path):
    path = copy_sample("endpoints/online/managed/binary-payloads/binary-payloads-deployment.yml", tmp_path)
    (tmp_path / "env.yml").write_text("dependencies:\n- python=3.11\n")
    proc = run_pkgc("build", str(path), "--emit", "spec")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("endpoint_name: placeholder '<ENDPOINT_NAME>' is not filled: "
                                        "pass --set ENDPOINT_NAME=VALUE (or --endpoint-name NAME)")  # fmt: skip
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "s.py").write_text("def init(): pass\ndef run(r): return r\n")
    proc = run_pkgc("build", str(path), "--emit", "spec", "--endpoint-name", "ep1", "--set", "SCORING_SCRIPT=s.py")
    assert proc.returncode == 0, proc.stderr
    emitted = yaml.safe_load(proc.stdout)
    assert emitted["target_environment"] == "ep1-binary-payload-pkg"
    assert emitted["x-pkgc-deployment"]["endpoint_name"] == "ep1"
    batch = run_pkgc("build", str(HEART / "deployment-simple" / "deployment.yml"), "--emit", "spec")
    assert batch.returncode == 0, batch.stderr
    assert yaml.safe_load(batch.stdout)["x-pkgc-deployment"]["job"]["mini_batch_size"] == "2"


def test_generated_mlflow_batch_script_through_the_driver(tmp_path):
    """The generated scoring script (templates/mlflow/batch_score.py) run by the real driver on the host,
    over a real MLflow model: Azure's row, prediction, file layout, equal to the host's own predictions."""
    import csv
    import os
    import subprocess
    import sys

    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    from compiler.mlflow.batch_scoring import generate_batch_scoring
    from compiler.resources import templates_dir

    frames = {"a.csv": pandas.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 0.0, 1.0]}),
              "b.csv": pandas.DataFrame({"x": [4.0], "y": [2.0]})}  # fmt: skip
    train = pandas.concat(frames.values(), ignore_index=True)
    model = LinearRegression().fit(train, train["x"] * 2 + train["y"])
    models = tmp_path / "azureml-models"
    mlflow.sklearn.save_model(model, str(models / "model"), signature=infer_signature(train, model.predict(train)))
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in frames.items():
        frame.to_csv(data / name, index=False)
    (data / "c.json").write_text("{}")
    code = generate_batch_scoring("model", tmp_path / "cache")
    (tmp_path / "out").mkdir()
    env = dict(os.environ, AZUREML_ENTRY_SCRIPT=str(code.directory / code.scoring_script), AZUREML_MODEL_DIR=str(models))
    driver = [sys.executable, str(templates_dir() / "runtime" / "pkgc_batch.py"), "--input", str(data), "--output", str(tmp_path / "out"),
              "--mini-batch-size", "2", "--error-threshold", "-1"]  # fmt: skip
    proc = subprocess.run(driver, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "its files are left out: c.json" in proc.stderr and "reads .csv and .parquet files" in proc.stderr
    host = mlflow.pyfunc.load_model(str(models / "model"))
    expected = [(str(i), p, name) for name, frame in frames.items() for i, p in enumerate(host.predict(frame))]
    with open(tmp_path / "out" / "predictions.csv", newline="") as fh:
        actual = [(row, float(prediction), name) for row, prediction, name in csv.reader(fh)]
    assert [(r, n) for r, _, n in actual] == [(r, n) for r, _, n in expected]
    assert [p for _, p, _ in actual] == pytest.approx([p for _, p, _ in expected], rel=1e-12)


def test_the_last_set_wins_and_endpoint_name_is_for_deployments(tmp_path):
    path = copy_sample("endpoints/online/custom-container/tfserving/half-plus-two/tfserving-deployment.yml", tmp_path)
    (tmp_path / "half_plus_two").mkdir()
    spec_file = load_package_spec(path, overrides=parse_overrides(["MODEL_VERSION=1", "MODEL_VERSION=2"], "tf"))
    assert spec_file.spec.model.version == "2" and spec_file.deployment.endpoint_name == "tf"
    package = tmp_path / "package.yml"
    package.write_text("target_environment: p\ninferencing_server: {type: azureml_online}\nmodel: m\n")
    assert fails(package, overrides=parse_overrides([], "e")) == "--endpoint-name: applies to deployment YAMLs; package.yml is a package spec"


def test_the_written_batch_deployment_uses_the_package(tmp_path):
    from compiler.spec.deployment_out import check_write_target, deployment_using

    source = HEART / "deployment-simple" / "deployment.yml"
    assert check_write_target(source, tmp_path / "with-package.yml") == tmp_path / "with-package.yml"
    written = deployment_using(source, "heart-classifier-batch-classifier-xgboost-mlflow-pkg:1")
    assert written["environment"] == "azureml:heart-classifier-batch-classifier-xgboost-mlflow-pkg:1" and "model" not in written
    assert written["settings"]["mini_batch_size"] == 2 and written["compute"] == "azureml:batch-cluster"
    filled = deployment_using(SAMPLES / "foundation-models" / "system" / "inference" / "fill-mask" / "batch-deploy.yml", "p:1",
                              parse_overrides([], "fill-mask-ep"))  # fmt: skip
    assert filled["endpoint_name"] == "fill-mask-ep"


def test_mlflow_custom_container_takes_the_base_image_given(tmp_path):
    path = copy_sample("endpoints/online/custom-container/mlflow/multideployment-scikit/mlflow-deployment.yml", tmp_path)
    mlflow_model(tmp_path / "heart" / "model")
    sets = parse_overrides(["deployment_name=blue", "model_name=heart", "environment_name=heart-env", "acr_name=myacr"], "mlflow-ep")
    spec_file = load_package_spec(path, overrides=sets)
    assert spec_file.spec.inferencing_server.type == "custom"  # no scoring script: the image's own server
    assert spec_file.deployment.inline_environment.image == "myacr.azurecr.io/azureml-examples/mlflow-cc-heart:latest"
    ws, opts = Workspace(tmp_path / "ws"), options(tmp_path)
    pkg = resolve_package(spec_file, None, ws, opts, "pkgc/base-debian-bookworm:latest")
    assert pkg.mlflow is not None and pkg.environment.image == "pkgc/base-debian-bookworm:latest"
    assert pkg.server.command == () and pkg.code is None  # nothing generated: the container serves the model
