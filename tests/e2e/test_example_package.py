"""The bundled example, built by the real engine in both modes, run, and scored over HTTP."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
from pathlib import Path

import joblib
import numpy
import pytest

from compiler.engines.base import Mount
from compiler.runtime.http import request, wait_ready
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.imagescan import save_image

pytestmark = pytest.mark.engine


def host_predictions(example: Path) -> list[float]:
    model = joblib.load(example / "model" / "sklearn_regression_model.pkl")
    rows = json.loads((example / "sample-request.json").read_text())["data"]
    return model.predict(numpy.array(rows)).tolist()


def serve(engine, containers, image, port, mounts=(), env=None, container_port=5001):
    handle = engine.run(image, container_port, port, list(mounts), env or {})
    containers.append(handle.container_id)
    wait_ready(f"http://127.0.0.1:{port}/", 90, lambda: engine.container_running(handle.container_id))
    return handle


def test_build_result_reports_the_package(readonly_package, copy_package):
    assert readonly_package["mode"] == "readonly_mount" and copy_package["mode"] == "copy"
    for result in (readonly_package, copy_package):
        assert result["environment_strategy"] == "venv"
        assert result["model_dir"] == "/var/azureml-app/azureml-models/sklearn-regression/1"
        assert result["image_id"].startswith("sha256:")


def test_readonly_mount_package_serves_through_pkgc_run(readonly_package, session_env, example_copy, engine, containers):
    port = free_port()
    proc = run_pkgc("run", readonly_package["image"], "--port", str(port), "--detach", "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    containers.append(json.loads(proc.stdout)["container"])
    assert request(f"http://127.0.0.1:{port}/").status == 200
    invoked = run_pkgc("invoke", "--port", str(port), "--request-file", str(example_copy / "sample-request.json"))
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == pytest.approx(host_predictions(example_copy), rel=1e-12)


def test_copy_package_serves_with_plain_docker_run(copy_package, example_copy, engine, containers):
    port = free_port()
    serve(engine, containers, copy_package["image"], port)
    body = (example_copy / "sample-request.json").read_bytes()
    response = request(f"http://127.0.0.1:{port}/score", data=body)
    assert response.status == 200
    assert response.json() == pytest.approx(host_predictions(example_copy), rel=1e-12)
    # pkgc's gunicorn worker: one kept-alive connection serves request after request
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers, sockets = [], set()
    for _ in range(3):
        conn.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        answers.append((answer.status, answer.will_close, json.loads(answer.read()) == response.json()))
        sockets.add(id(conn.sock))
    assert answers == [(200, False, True)] * 3 and len(sockets) == 1
    conn.close()


def test_app_service_port_is_honoured(copy_package, engine, containers):
    port = free_port()
    serve(engine, containers, copy_package["image"], port, env={"WEBSITES_PORT": "8080"}, container_port=8080)
    assert request(f"http://127.0.0.1:{port}/").status == 200


def test_missing_mount_fails_fast_with_a_clear_message(readonly_package, engine, containers):
    handle = engine.run(readonly_package["image"], 5001, free_port(), [], {})
    containers.append(handle.container_id)
    deadline = time.monotonic() + 20
    while engine.exit_code(handle.container_id) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.exit_code(handle.container_id) == 78
    log = engine.logs(handle.container_id)
    assert "model sklearn-regression:1 is not mounted" in log
    assert "/var/azureml-app/azureml-models/sklearn-regression/1" in log


def test_model_bytes_only_in_the_copy_image(readonly_package, copy_package, engine, example_copy):
    model_bytes = (example_copy / "model" / "sklearn_regression_model.pkl").read_bytes()
    in_copy = [n for n, data in save_image(engine, copy_package["image"]).files() if model_bytes in data]
    # at one path whatever the model's version (its layers outlive a new version); the model dir links there
    assert in_copy == ["opt/pkgc/model-files/model/sklearn_regression_model.pkl"]
    code, out = engine.run_command(copy_package["image"], ["readlink", "/var/azureml-app/azureml-models/sklearn-regression/1"])
    assert (code, out.strip()) == (0, "/opt/pkgc/model-files")
    readonly = save_image(engine, readonly_package["image"])
    assert not [n for n, data in readonly.files() if model_bytes in data or "azureml-models" in n]
    labels = readonly.config["config"]["Labels"]
    assert labels["io.pkgc.model.mount"] == "required-readonly"
    assert labels["io.pkgc.model.dir"] == "/var/azureml-app/azureml-models/sklearn-regression/1"
    assert labels["io.pkgc.model.name"] == "sklearn-regression" and labels["io.pkgc.model.version"] == "1"


def _pem_bodies(text: str) -> set[bytes]:
    pattern = r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----"
    return {re.sub(r"\s+", "", m).encode() for m in re.findall(pattern, text, re.S)}


def _local_ca_bodies() -> list[bytes]:
    """CA certificates this host trusts beyond Debian's public set: the TLS proxy's (or a company's) CA."""
    bundle = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    host = _pem_bodies(bundle.read_text()) if bundle.is_file() else set()
    public: set[bytes] = set()
    for crt in Path("/usr/share/ca-certificates").rglob("*.crt"):
        public |= _pem_bodies(crt.read_text())
    return sorted(host - public)


def test_no_ca_pip_config_or_credentials_in_any_layer_or_history(readonly_package, copy_package, engine):
    secrets = [body[20:84] for body in _local_ca_bodies()]  # a distinctive slice of each local CA
    forbidden_names = ("pip.conf", "pip.ini", ".netrc", ".pypirc", "ca-certificates.crt")
    forbidden_env = ("PIP_CERT", "PIP_INDEX_URL", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    for result in (readonly_package, copy_package):
        saved = save_image(engine, result["image"])
        for name, data in saved.files():
            assert not name.endswith(forbidden_names), name
            flat = re.sub(rb"\s+", b"", data) if b"CERTIFICATE" in data else b""
            assert not any(s in flat for s in secrets), f"a host CA certificate is in {name}"
        metadata = saved.metadata_text()
        assert not any(word in metadata for word in forbidden_env)
        assert not any(s.decode() in metadata for s in secrets)


def test_runtime_contract(copy_package, engine):
    info = engine.image_info(copy_package["image"])
    env = dict(item.split("=", 1) for item in info.env)
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/sklearn-regression/1"
    assert env["AZUREML_ENTRY_SCRIPT"] == "/var/azureml-app/src/score.py"
    assert info.labels["org.opencontainers.image.title"] == "sklearn-regression-docker-pkg"
    assert info.labels["io.pkgc.version"]
    code, out = engine.run_command(copy_package["image"], ["id", "-u"])
    assert (code, out.strip()) == (0, "10001")


def test_package_is_recorded_as_an_environment(readonly_package, session_env):
    proc = run_pkgc("environment", "show", "azureml:sklearn-regression-online-pkg@latest", env=session_env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["image"] == readonly_package["image"]
    assert record["package"]["mode"] == "readonly_mount"
    lock_blob = Path(session_env["PKGC_WORKSPACE"]) / "blobs" / record["package"]["lock"]
    assert lock_blob.read_text() == Path(readonly_package["lock_file"]).read_text()  # the lock travels with it
