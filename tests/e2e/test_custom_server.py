"""Custom inference servers, for real: Seldon MLServer (from PyPI) serving the example regression model
over the V2 inference protocol in both modes, and a server the user writes (standard library) with
its health route on a second port. Predictions equal the host's."""

from __future__ import annotations

import json
import urllib.request

import docker
import pytest

from compiler.deploy.settings import app_service, deploy_facts
from compiler.labels import PackageLabels, Route
from compiler.runtime.http import wait_ready
from tests.conftest import run_pkgc
from tests.e2e.examples import build, copy_example, host_predict, register_environment

pytestmark = pytest.mark.engine

MODEL_DIR = "/var/azureml-app/azureml-models/sklearn-regression/1"


@pytest.fixture(scope="module")
def mlserver(registered, session_env, tmp_path_factory) -> dict:
    """The MLServer example built in both modes (one environment layer, two small model/code layers)."""
    example = copy_example("mlserver-sklearn", tmp_path_factory.mktemp("mlserver"))
    register_environment(example / "environment" / "mlserver-sklearn-env.yml", session_env)
    request = json.loads((example / "sample-request.json").read_text())
    rows = numpy_rows(request)
    lock = ("--lock-file", str(example / "mlserver.conda-lock.yml"))  # one resolution for both modes
    return {
        "example": example,
        "copy": build(example / "package-copy.yml", registered["model"], session_env, *lock),
        "readonly": build(example / "package.yml", registered["model"], session_env, *lock),
        "expected": host_predict(rows),
    }


def numpy_rows(v2_request: dict) -> list[list[float]]:
    tensor = v2_request["inputs"][0]
    rows, cols = tensor["shape"]
    return [tensor["data"][r * cols : (r + 1) * cols] for r in range(rows)]


def inspect(image: str) -> dict:
    client = docker.from_env()
    try:
        return client.api.inspect_image(image)["Config"]
    finally:
        client.close()


def post(url: str, body: bytes) -> dict:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_mlserver_copy_mode_serves_v2_with_the_hosts_predictions(mlserver, session_env, engine):
    image = mlserver["copy"]["image"]
    config = inspect(image)
    assert list(config["ExposedPorts"]) == ["8080/tcp"]
    assert config["Cmd"] == ["mlserver", "start", "."] and config["WorkingDir"] == "/var/azureml-app/server"
    assert f"MLSERVER_MODEL_URI={MODEL_DIR}/model/sklearn_regression_model.pkl" in config["Env"]
    labels = PackageLabels.from_labels(image, engine.image_info(image).labels)
    assert (labels.server, labels.score, labels.readiness, labels.liveness) == (
        "custom", Route(8080, "/v2/models/sklearn-regression/infer"),
        Route(8080, "/v2/models/sklearn-regression/ready"), Route(8080, "/v2/health/live"),
    )  # fmt: skip
    assert "azureml" not in (mlserver["example"] / "mlserver.conda-lock.yml").read_text()  # no server injected
    proc = run_pkgc("verify", image, "--request-file", str(mlserver["example"] / "sample-request.json"), "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    output = result["response"]["outputs"][0]
    assert output["shape"] == [2, 1] and output["datatype"] == "FP64"
    assert output["data"] == pytest.approx(mlserver["expected"], rel=1e-12)
    print(f"\nMLServer copy: {mlserver['copy']['size_bytes'] / 1e6:.0f} MB, ready in {result['ready_seconds']} s")


def test_mlserver_readonly_mount_serves_the_mounted_model(mlserver, session_env, engine):
    image = mlserver["readonly"]["image"]
    code, out = engine.run_command(image, ["sh", "-c", f"test -e {MODEL_DIR} && echo present || echo absent"])
    assert (code, out.strip()) == (0, "absent")  # the image holds no model byte
    proc = run_pkgc("run", image, "--detach", "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    started = json.loads(proc.stdout)
    try:
        assert started["model_mounted"] and started["readiness_url"].endswith("/v2/models/sklearn-regression/ready")
        answer = post(started["score_url"], (mlserver["example"] / "sample-request.json").read_bytes())
        assert answer["outputs"][0]["data"] == pytest.approx(mlserver["expected"], rel=1e-12)
    finally:
        engine.stop(started["container"])
    unmounted = run_pkgc("verify", image, "--no-model-mount", "--timeout", "30", env=session_env)
    assert unmounted.returncode == 4 and "exited with code 78" in unmounted.stderr


def test_mlserver_as_documented_writes_its_state_in_a_writable_working_folder_under_a_read_only_root(mlserver):
    """`mlserver start .` reads settings.json from "." and writes .metrics and .envs there: the server
    starts in a writable folder mirroring the read-only code folder, also with `docker run --read-only
    --tmpfs /tmp` (the example keeps MLServer's defaults: no metrics_dir, a worker pool)."""
    assert "metrics_dir" not in (mlserver["example"] / "server" / "settings.json").read_text()
    client = docker.from_env()
    body = (mlserver["example"] / "sample-request.json").read_bytes()
    try:
        for options in ({}, {"read_only": True, "tmpfs": {"/tmp": ""}}):
            container = client.containers.run(mlserver["copy"]["image"], detach=True, ports={"8080/tcp": ("127.0.0.1", None)}, **options)
            try:
                container.reload()
                port = int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
                wait_ready(f"http://127.0.0.1:{port}/v2/models/sklearn-regression/ready", 180, lambda: running(container))
                answer = post(f"http://127.0.0.1:{port}/v2/models/sklearn-regression/infer", body)
                assert answer["outputs"][0]["data"] == pytest.approx(mlserver["expected"], rel=1e-12)
                script = "cd /proc/1/cwd && pwd -P && ls -A && readlink settings.json && ls -A /var/azureml-app/server"
                code, out = container.exec_run(["sh", "-c", script])
                lines = out.decode().split()
                assert code == 0 and lines[0] == "/tmp/pkgc-work", out
                assert {".metrics", ".envs", "settings.json"} <= set(lines[1:-2])  # written beside the settings read
                assert lines[-2:] == ["/var/azureml-app/server/settings.json", "settings.json"]  # the code folder as built
            finally:
                container.remove(force=True)
        container = client.containers.run(mlserver["copy"]["image"], detach=True, read_only=True)  # no tmpfs
        try:
            assert container.wait(timeout=60)["StatusCode"] == 78 and "--tmpfs /tmp" in container.logs().decode()
        finally:
            container.remove(force=True)
    finally:
        client.close()


def running(container) -> bool:
    container.reload()
    return container.status in ("created", "running")


@pytest.fixture(scope="module")
def handwritten(registered, session_env, tmp_path_factory) -> dict:
    example = copy_example("custom-http", tmp_path_factory.mktemp("custom-http"))
    return {"example": example, "build": build(example / "package.yml", registered["model"], session_env)}


def test_user_written_server_with_health_on_a_second_port(handwritten, registered, session_env, engine, example_copy):
    image = handwritten["build"]["image"]
    request = example_copy / "sample-request.json"
    proc = run_pkgc("run", image, "--detach", "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    started = json.loads(proc.stdout)
    try:
        assert set(started["ports"]) == {"8000", "8001"} and started["ports"]["8000"] == started["port"]
        assert started["readiness_url"].startswith(f"http://127.0.0.1:{started['ports']['8001']}/healthz")
        answer = post(started["score_url"], request.read_bytes())
        assert answer["predictions"] == pytest.approx(host_predict(json.loads(request.read_text())["data"]), rel=1e-12)
    finally:
        engine.stop(started["container"])
    verified = run_pkgc("verify", image, "--request-file", str(request), "--json", env=session_env)
    assert verified.returncode == 0, verified.stderr
    # the deploy settings probe each route on its own port (the build is reused: same content hash)
    again = build(handwritten["example"] / "package.yml", registered["model"], session_env, "--deploy-settings", "kubernetes")
    assert again["reused"]
    container = again["deploy_settings"]["objects"][0]["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8000}, {"name": "http-8001", "containerPort": 8001}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-8001"}
    settings = app_service(deploy_facts(image, engine.image_info(image).labels))
    assert settings.data["app_settings"] == {"WEBSITES_PORT": "8000"} and "port 8001" in settings.text
