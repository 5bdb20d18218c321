"""OCI outputs and registry push, checked by real consumers: skopeo reads the archive back into the
engine and it serves; the layout is walked from index.json to every blob by digest; a real registry
(Debian's docker-registry on loopback) serves the reported manifest digest and the engine pulls it
back and runs it. All from one ``pkgc build --output ... --push ...`` of the session's copy package."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from compiler.emit.deploy import deploy_facts, deploy_settings
from compiler.runtime.http import request
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.registry import start_registry
from tests.e2e.test_example_package import host_predictions, serve

pytestmark = pytest.mark.engine

REPO = "pkgc/sklearn-regression"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"), free_port())
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def published(copy_package, registered, session_env, example_copy, registry, out_dir) -> dict:
    """One build (reusing the session's image) writing both outputs and pushing."""
    proc = run_pkgc(
        "build", str(example_copy / "package-azure-app.yml"), "--model", registered["model"], "--json",
        "--output", f"oci:{out_dir / 'layout'}", "--output", f"oci-archive:{out_dir / 'image.tar'}:e2e",
        "--push", f"{registry.host}/{REPO}:e2e", "--deploy-settings", "kubernetes", env=session_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(layout: Path, descriptor: dict) -> bytes:
    data = (layout / "blobs" / "sha256" / descriptor["digest"].removeprefix("sha256:")).read_bytes()
    assert sha256(data) == descriptor["digest"] and len(data) == descriptor["size"]
    return data


def test_every_output_and_the_push_share_one_manifest_digest(published, out_dir):
    digest = published["manifest_digest"]
    assert [o["digest"] for o in published["outputs"]] == [digest, digest]
    assert published["push"]["digest"] == digest and published["push"]["tls_verify"] is False
    assert {o["kind"]: o["tag"] for o in published["outputs"]} == {"oci": published["image"].rpartition(":")[2], "oci-archive": "e2e"}
    assert sorted(p.name for p in out_dir.iterdir()) == ["image.tar", "layout"]  # no temporary leftovers


def test_oci_layout_is_valid_from_index_to_every_blob(published, out_dir):
    layout = out_dir / "layout"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2 and len(index["manifests"]) == 1
    entry = index["manifests"][0]
    assert entry["mediaType"] == OCI_MANIFEST and entry["digest"] == published["manifest_digest"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == published["outputs"][0]["tag"]
    manifest = json.loads(blob(layout, entry))
    assert manifest["schemaVersion"] == 2 and manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(blob(layout, manifest["config"]))
    assert config["config"]["Labels"]["io.pkgc.model.mode"] == "copy"
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(manifest["layers"]) > 0
    for layer, diff_id in zip(manifest["layers"], diff_ids):
        compressed = layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        assert compressed or layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"  # the OCI back end's model layer
        data = blob(layout, layer)
        assert sha256(gzip.decompress(data) if compressed else data) == diff_id


def test_oci_archive_is_read_by_skopeo_and_the_engine_runs_it(published, out_dir, engine, containers, example_copy):
    archive = out_dir / "image.tar"
    inspected = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}:e2e"], capture_output=True, text=True, check=True)
    info = json.loads(inspected.stdout)
    assert info["Digest"] == published["manifest_digest"]
    assert info["Labels"]["io.pkgc.model.name"] == "sklearn-regression"
    ref = "pkgc-e2e/from-archive:e2e"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci-archive:{archive}:e2e", f"docker-daemon:{ref}"], check=True, capture_output=True)
    try:
        port = free_port()
        serve(engine, containers, ref, port)
        response = request(f"http://127.0.0.1:{port}/score", data=(example_copy / "sample-request.json").read_bytes())
        assert response.status == 200
        assert response.json() == pytest.approx(host_predictions(example_copy), rel=1e-12)
    finally:
        for container_id in containers:
            engine.stop(container_id)
        containers.clear()
        engine.remove_image(ref)


def test_registry_serves_the_reported_digest(published, registry):
    status, body, headers = registry.manifest(REPO, "e2e")
    assert status == 200, body[:300]
    assert headers["Content-Type"] == OCI_MANIFEST
    assert sha256(body) == headers["Docker-Content-Digest"] == published["push"]["digest"]
    by_digest = registry.manifest(REPO, published["push"]["digest"])
    assert by_digest[0] == 200 and by_digest[1] == body


def test_pushed_image_pulls_back_and_serves(published, engine, containers):
    ref = published["push"]["reference"]
    pulled = subprocess.run(["docker", "pull", ref], capture_output=True, text=True, check=False)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {published['push']['digest']}" in pulled.stdout
    try:
        port = free_port()
        serve(engine, containers, ref, port)
        assert request(f"http://127.0.0.1:{port}/").status == 200
    finally:
        for container_id in containers:
            engine.stop(container_id)
        containers.clear()
        engine.remove_image(ref)


def test_kubernetes_settings_pin_the_pushed_image(published):
    deployment, service = published["deploy_settings"]["objects"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{published['push']['reference']}@{published['push']['digest']}"
    assert container["ports"] == [{"name": "http", "containerPort": 5001}]
    assert container["readinessProbe"]["httpGet"] == container["livenessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert "volumeMounts" not in container  # a copy package carries its model
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_readonly_mount_settings_mount_the_model_read_only(readonly_package, engine):
    labels = engine.image_info(readonly_package["image"]).labels
    facts = deploy_facts(readonly_package["image"], labels)
    docs = list(yaml.safe_load_all(deploy_settings("kubernetes", facts).text))
    pod = docs[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "model", "mountPath": readonly_package["model_dir"], "readOnly": True}]
    assert pod["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    app = deploy_settings("app-service", facts).data
    assert app["app_settings"] == {"WEBSITES_PORT": "5001"} and app["health_check_path"] == "/"
    assert app["model_mount"]["mount_path"] == readonly_package["model_dir"] and app["model_mount"]["read_only"] is True


def test_failed_push_leaves_no_output_behind(copy_package, registered, session_env, example_copy, tmp_path):
    proc = run_pkgc(
        "build", str(example_copy / "package-azure-app.yml"), "--model", registered["model"],
        "--output", f"oci-archive:{tmp_path / 'image.tar'}", "--push", f"127.0.0.1:{free_port()}/{REPO}:never",
        env=session_env,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "pkgc: error: copying oci:" in proc.stderr and "127.0.0.1" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_output_and_push_values_are_bad_input(example_copy, session_env, tmp_path):
    spec = str(example_copy / "package-azure-app.yml")
    for flags, message in (
        (["--output", f"zip:{tmp_path}/x"], "expected oci:DIR[:TAG] or oci-archive:FILE[:TAG]"),
        (["--output", f"oci:{Path(__file__).parent}"], "not an OCI layout; refusing to replace it"),
        (["--push", "sklearn-regression:1"], "needs both a registry and a repository"),
        (["--push", "models/sklearn-regression:1"], "'models' is not a registry host"),
    ):
        proc = run_pkgc("build", spec, *flags, env=session_env)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert "resolving" not in proc.stderr  # refused before any build work
