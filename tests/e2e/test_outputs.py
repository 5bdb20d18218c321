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

from compiler.deploy.settings import deploy_facts, deploy_settings
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
def signing_key(tmp_path_factory) -> tuple[Path, Path]:
    """An ECDSA P-256 key pair as PEM files (private: PKCS#8, public: SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("keys")
    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))  # fmt: skip
    (folder / "key.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                   serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return folder / "key.pem", folder / "key.pub"


@pytest.fixture(scope="module")
def published(copy_package, registered, session_env, example_copy, registry, out_dir, signing_key) -> dict:
    """One build (reusing the session's image) writing both outputs and pushing, attestations signed."""
    proc = run_pkgc(
        "build", str(example_copy / "package-azure-app.yml"), "--model", registered["model"], "--json",
        "--output", f"oci:{out_dir / 'layout'}", "--output", f"oci-archive:{out_dir / 'image.tar'}:e2e",
        "--push", f"{registry.host}/{REPO}:e2e", "--deploy-settings", "kubernetes", "--sign-key", str(signing_key[0]),
        env=session_env,
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
    assert index["schemaVersion"] == 2 and len(index["manifests"]) == 1  # the image alone: skopeo reads it with no tag
    entry = index["manifests"][0]
    listed = (layout / "blobs" / "sha256" / entry["annotations"]["io.pkgc.referrers"].removeprefix("sha256:")).read_bytes()
    assert sha256(listed) == entry["annotations"]["io.pkgc.referrers"]  # the referrers index (test_attestations)
    assert [m["artifactType"] for m in json.loads(listed)["manifests"]] == ARTIFACT_TYPES
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
    for reference in (f"oci-archive:{archive}:e2e", f"oci-archive:{archive}", f"oci:{out_dir / 'layout'}"):  # no tag needed
        inspected = subprocess.run(["skopeo", "inspect", reference], capture_output=True, text=True)
        assert inspected.returncode == 0, inspected.stderr
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


ARTIFACT_TYPES = ["application/vnd.cyclonedx+json", "application/vnd.in-toto+json", "application/vnd.in-toto+json"]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def test_layout_and_archive_carry_signed_attestations_that_verify_offline(published, copy_package, out_dir, signing_key, session_env, tmp_path):
    digest = published["manifest_digest"]
    # the session's build had no output: its result has the provenance of the same image, nothing attached
    assert copy_package["provenance"]["subject"] == published["provenance"]["subject"] and "attestations" not in copy_package
    statement = published["provenance"]
    assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
    names = [d["name"].split(":", 1)[0] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]]
    assert sorted(names) == ["base-image", "code", "lock", "model", "spec"]
    assert published["attestations"]["signed"] and [r["artifactType"] for r in published["attestations"]["referrers"]] == ARTIFACT_TYPES
    for reference in (f"oci:{out_dir / 'layout'}", f"oci-archive:{out_dir / 'image.tar'}:e2e"):
        proc = run_pkgc("attestations", "verify", reference, "--key", str(signing_key[1]), "--json", env=session_env)
        assert proc.returncode == 0, proc.stderr
        check = json.loads(proc.stdout)
        assert check["subject"] == digest and check["signed_provenance"] and check["sbom_attached"]
        assert [r["verified"] for r in check["referrers"]] == ["digest matches the image's SBOM label"] + ["signature verified, subject matches"] * 2
    in_image = run_pkgc("sbom", f"oci:{out_dir / 'layout'}", env=session_env)
    attached = run_pkgc("sbom", f"oci:{out_dir / 'layout'}", "--attached", env=session_env)
    assert attached.returncode == 0 and attached.stdout == in_image.stdout
    assert sha256(attached.stdout.encode()) == published["sbom_digest"]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    (tmp_path / "other.pub").write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    wrong = run_pkgc("attestations", "verify", f"oci:{out_dir / 'layout'}", "--key", str(tmp_path / "other.pub"), env=session_env)
    assert wrong.returncode == 4 and "is not signed by the key" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1


def test_registry_serves_the_referrers_through_the_tag_fallback(published, registry, signing_key, session_env):
    digest = published["push"]["digest"]
    pushed = published["attestations"]["pushed"]
    assert pushed["tag"] == "sha256-" + digest.removeprefix("sha256:") and pushed["artifact_types"]
    status, body, headers = registry.manifest(REPO, pushed["tag"], accept=OCI_INDEX)
    assert status == 200 and sha256(body) == pushed["digest"] == headers["Docker-Content-Digest"]
    index = json.loads(body)
    assert [m["artifactType"] for m in index["manifests"]] == ARTIFACT_TYPES
    for entry in index["manifests"]:  # each artifact by digest: its subject is the pushed image
        status, raw, _ = registry.manifest(REPO, entry["digest"])
        manifest = json.loads(raw)
        assert status == 200 and sha256(raw) == entry["digest"] and manifest["subject"]["digest"] == digest
    sbom_layer = json.loads(registry.manifest(REPO, index["manifests"][0]["digest"])[1])["layers"][0]
    status, sbom, _ = registry.get(f"{REPO}/blobs/{sbom_layer['digest']}", accept="*/*")
    assert status == 200 and sha256(sbom) == published["sbom_digest"]
    proc = run_pkgc("attestations", "verify", f"{registry.host}/{REPO}:e2e", "--key", str(signing_key[1]), "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["signed_provenance"] is True


def test_a_second_push_of_the_same_image_keeps_the_earlier_referrers(published, registry, registered, session_env, example_copy):
    proc = run_pkgc("build", str(example_copy / "package-azure-app.yml"), "--model", registered["model"], "--json",
                    "--push", f"{registry.host}/{REPO}:again", env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(proc.stdout)
    assert again["push"]["digest"] == published["push"]["digest"] and not again["attestations"]["signed"]
    pushed = again["attestations"]["pushed"]
    assert pushed["kept"] == 2  # the signed provenance and SBOM statements; the SBOM referrer is the same manifest
    index = json.loads(registry.manifest(REPO, pushed["tag"], accept=OCI_INDEX)[1])
    earlier = [r["digest"] for r in published["attestations"]["referrers"]]
    now = [r["digest"] for r in again["attestations"]["referrers"]]
    assert [m["digest"] for m in index["manifests"]] == earlier[1:] + now
