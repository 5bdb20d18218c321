"""Inference server types: custom (routes, start command, variables), triton (model repository
checks, default routes) and azureml_batch (no routes); their labels and deploy settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compiler.servers.azureml_batch import AZUREML_BATCH
from compiler.deploy.settings import deploy_facts, kubernetes
from compiler.errors import ResolveError, SpecError
from compiler.labels import PackageLabels, Route
from compiler.servers.custom import custom_from_spec
from compiler.servers.triton import triton_from_spec, triton_models
from compiler.resolve.types import ResolvedModel
from compiler.spec.load import load_package_spec

MODEL_DIR = "/var/azureml-app/azureml-models/m/1"


def spec_file(tmp_path: Path, server: dict):
    doc = {"target_environment": "t", "base_environment_source": {"type": "environment_asset", "resource_id": "azureml:e:1"},
           "inferencing_server": server}  # fmt: skip
    path = tmp_path / "package.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_package_spec(path)


def custom(**config) -> dict:
    return {"type": "custom", "inference_configuration": config}


def test_custom_server_command_routes_and_variables(tmp_path):
    sf = spec_file(tmp_path, custom(
        entry_script="mlserver start . --flag 'a b'",
        configuration={"MLSERVER_MODEL_URI": "${AZUREML_MODEL_DIR}/model/m.pkl", "OTHER": "$HOME"},
        scoring_route={"port": 8080, "path": "/v2/models/m/infer"}, readiness_route={"port": 8081, "path": "/ready"},
    ))  # fmt: skip
    server = custom_from_spec(sf, sf.spec.inferencing_server, MODEL_DIR)
    assert server.command == ("mlserver", "start", ".", "--flag", "a b")
    assert dict(server.environment) == {"MLSERVER_MODEL_URI": f"{MODEL_DIR}/model/m.pkl", "OTHER": "$HOME"}
    assert server.score == Route(8080, "/v2/models/m/infer")
    assert server.readiness == server.liveness == Route(8081, "/ready")  # liveness defaults to readiness
    assert server.ports == (8080, 8081) and server.requirements == ()
    sf = spec_file(tmp_path, custom(entry_script="serve --model ${AZUREML_MODEL_DIR}/m.pkl", scoring_route={"port": 1},
                                    readiness_route={"port": 1}))  # fmt: skip
    assert custom_from_spec(sf, sf.spec.inferencing_server, "/models/my model/1").command == ("serve", "--model", "/models/my model/1/m.pkl")


@pytest.mark.parametrize("config, message", [
    ({"entry_script": "python 'app.py", "scoring_route": {"port": 1}, "readiness_route": {"port": 1}},
     "entry_script: cannot be split into a command: No closing quotation"),
    ({"entry_script": " ", "scoring_route": {"port": 1}, "readiness_route": {"port": 1}}, "entry_script: must not be empty"),
    ({"scoring_route": {"port": 1}, "liveness_route": {"port": 1}}, "a custom server needs entry_script (the start command)"),
    ({"entry_script": "x", "readiness_route": {"port": 1}}, "a custom server needs scoring_route {port, path}"),
])  # fmt: skip
def test_custom_server_refusals(tmp_path, config, message):
    sf = spec_file(tmp_path, custom(**config))
    with pytest.raises(SpecError) as err:
        custom_from_spec(sf, sf.spec.inferencing_server, MODEL_DIR)
    assert message in str(err.value) and str(sf.path) in str(err.value)


@pytest.mark.parametrize("route, message", [
    ({"path": "/x"}, "scoring_route.port: required key is missing"),
    ({"port": 0}, "must be a port number (1-65535), got 0"),
    ({"port": 8000, "path": "no-slash"}, "scoring_route.path: must be a URL path"),
])  # fmt: skip
def test_route_checks_name_the_key_and_line(tmp_path, route, message):
    with pytest.raises(SpecError) as err:
        spec_file(tmp_path, custom(entry_script="x", scoring_route=route, readiness_route={"port": 1}))
    assert message in str(err.value) and "package.yml:" in str(err.value)


def triton_repo(root: Path, *models: str) -> Path:
    for name in models:
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(f'name: "{name}"\nbackend: "python"\n')
    return root


def model_of(tree: Path, root_name: str) -> ResolvedModel:
    return ResolvedModel("m", "1", "custom_model", "ab" * 32, tree, root_name, "azureml:m:1")


def test_triton_repository_checks(tmp_path):
    assert triton_models(triton_repo(tmp_path / "ok", "b", "a")) == ["a", "b"]
    (tmp_path / "no-version" / "m").mkdir(parents=True)
    (tmp_path / "no-version" / "m" / "config.pbtxt").write_text("")
    (tmp_path / "no-config" / "m" / "1").mkdir(parents=True)
    single = triton_repo(tmp_path / "single", "m") / "m"
    (tmp_path / "file").write_text("x")
    for path, message in [(tmp_path / "no-version", "no version folder"), (tmp_path / "no-config", "config.pbtxt is missing"),
                          (single, "this is one Triton model"), (tmp_path / "file", "a Triton model is a folder"),
                          (tmp_path / "ok" / "a" / "1", "no model folder")]:  # fmt: skip
        with pytest.raises(SpecError, match=message):
            triton_models(path)


def test_triton_defaults_and_overrides(tmp_path):
    triton_repo(tmp_path / "tree" / "repo", "linear")
    sf = spec_file(tmp_path, {"type": "triton"})
    server = triton_from_spec(sf, sf.spec.inferencing_server, model_of(tmp_path / "tree", "repo"), MODEL_DIR)
    assert (server.score, server.readiness, server.liveness) == (
        Route(8000, "/v2/models/linear/infer"), Route(8000, "/v2/health/ready"), Route(8000, "/v2/health/live"))
    assert server.command == ("/opt/pkgc/bin/pkgc-triton", f"--model-repository={MODEL_DIR}/repo", "--http-port=8000")
    sf = spec_file(tmp_path, {"type": "triton", "inference_configuration": {"scoring_route": {"port": 9000, "path": "/v2/models/linear/infer"}}})
    server = triton_from_spec(sf, sf.spec.inferencing_server, model_of(tmp_path / "tree", "repo"), MODEL_DIR)
    assert server.score.port == 9000 and server.command[-1] == "--http-port=9000"


def test_triton_with_several_models_needs_a_scoring_route(tmp_path):
    triton_repo(tmp_path / "tree" / "repo", "a", "b")
    sf = spec_file(tmp_path, {"type": "triton"})
    with pytest.raises(SpecError, match=r"holds 2 models \(a, b\)"):
        triton_from_spec(sf, sf.spec.inferencing_server, model_of(tmp_path / "tree", "repo"), MODEL_DIR)


def test_batch_spec_needs_code_and_has_no_routes(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "b.py").write_text("def init(): pass\ndef run(b): return b\n")
    sf = spec_file(tmp_path, {"type": "azureml_batch", "code_configuration": {"code": "src", "scoring_script": "b.py"}})
    assert sf.spec.inferencing_server.type == "azureml_batch"
    assert AZUREML_BATCH.ports == () and AZUREML_BATCH.default_port is None


def contract(**routes) -> PackageLabels:
    base = dict(title="t", description="d", base_image="b", mode="copy", model_name="m", model_version="1",
                model_type="custom_model", model_tree="ab" * 32, model_dir=MODEL_DIR, extra={})  # fmt: skip
    return PackageLabels(**base, **routes)


def test_labels_round_trip_three_routes_on_two_ports():
    labels = contract(server="custom", score=Route(8000, "/predict"), readiness=Route(8001, "/healthz"), liveness=Route(8001, "/healthz"))
    back = PackageLabels.from_labels("img", labels.to_labels())
    assert (back.score, back.readiness, back.liveness, back.ports) == (Route(8000, "/predict"), Route(8001, "/healthz"), Route(8001, "/healthz"), (8000, 8001))
    pod = kubernetes(deploy_facts("img", labels.to_labels())).data["objects"][0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8000}, {"name": "http-8001", "containerPort": 8001}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-8001"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-8001"}


def test_batch_labels_have_no_routes_and_no_deploy_settings():
    labels = contract(server="azureml_batch", score=None, readiness=None, liveness=None).to_labels()
    assert not any(k.startswith(("io.pkgc.route", "io.pkgc.port")) for k in labels)
    back = PackageLabels.from_labels("img", labels)
    assert back.is_job and back.port is None and back.ports == ()
    with pytest.raises(ResolveError, match="is a batch package"):
        deploy_facts("img", labels)


def test_manylinux_range_follows_a_stated_glibc():
    from compiler.lock.pip_resolve import newest_manylinux, platform_args

    default = platform_args("3.11")
    assert "manylinux_2_28_x86_64" in default and "manylinux_2_29_x86_64" not in default
    wider = platform_args("3.11", "2.36")
    assert wider.index("manylinux_2_36_x86_64") < wider.index("manylinux_2_28_x86_64")
    assert platform_args("3.11", "2.17") == default  # never narrower than the default
    assert newest_manylinux(["a-1-py3-none-manylinux_2_35_x86_64.whl", "b-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]) == "2.35"
    assert newest_manylinux(["c-1-py3-none-any.whl"]) is None


@pytest.mark.parametrize("args, message", [
    (["run", "img", "--input", "in"], "--input: applies to batch packages only: add --batch"),
    (["run", "--batch", "img", "--output", "out"], "--input: is required with --batch"),
    (["run", "--batch", "img", "--input", "i", "--output", "o", "--detach"], "--port, --detach and --name do not apply"),
    (["run", "--batch", "img", "--input", "i", "--output", "o", "--mini-batch-size", "0"], "is not a number from 1"),
])  # fmt: skip
def test_batch_run_flags_are_checked_before_anything_starts(args, message):
    from tests.conftest import run_pkgc

    proc = run_pkgc(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
