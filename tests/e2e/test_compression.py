"""``pkgc build --compression zstd|none`` against the real consumers: the engine loads the image
(Docker 20.10 reads no zstd: pkgc sends those layers inflated) and it serves the host's predictions;
the ``oci:`` output carries ``+zstd`` layers that ``pkgc sbom`` and ``pkgc attestations verify``
read, skopeo pushes to a loopback registry, and podman pulls it back (checking every diff_id).
The session's copy package, renamed, so each build is its own image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.runtime.http import request
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.registry import start_registry
from tests.e2e.test_example_package import host_predictions, serve

pytestmark = pytest.mark.engine

LAYER = "application/vnd.oci.image.layer.v1.tar"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"), free_port())
    yield reg
    reg.stop()


def _spec(example_copy: Path, folder: Path, name: str) -> Path:
    spec = folder / "package.yml"
    spec.write_text((example_copy / "package-azure-app.yml").read_text()
                    .replace("sklearn-regression-docker-pkg", name)
                    .replace("code: src", f"code: {example_copy / 'src'}"))  # fmt: skip
    shutil.copy(example_copy / "package-azure-app.conda-lock.yml", folder / "package.conda-lock.yml")
    return spec


def _score(engine, containers, image: str, example: Path) -> list[float]:
    port = free_port()
    serve(engine, containers, image, port)
    response = request(f"http://127.0.0.1:{port}/score", data=(example / "sample-request.json").read_bytes())
    assert response.status == 200
    return response.json()


def test_zstd_and_uncompressed_builds_load_serve_and_publish(
    copy_package, registered, session_env, example_copy, engine, containers, registry, tmp_path
):
    expected = host_predictions(example_copy)
    built = {}
    try:
        for compression in ("zstd", "none"):
            folder = tmp_path / compression
            folder.mkdir()
            name = f"compress-e2e-{compression}-pkg"
            args = ["build", str(_spec(example_copy, folder, name)), "--model", registered["model"], "--json",
                    "--compression", compression, "--output", f"oci:{folder / 'layout'}"]  # fmt: skip
            if compression == "zstd":
                args += ["--push", f"{registry.host}/compress-e2e/zstd:1"]
            proc = run_pkgc(*args, env=session_env)
            assert proc.returncode == 0, proc.stderr[-3000:]
            built[compression] = result = json.loads(proc.stdout)
            assert result["builder"] == "oci" and result["loaded"] is True
            assert _score(engine, containers, result["image"], example_copy) == pytest.approx(expected, rel=1e-12)
            for container_id in containers:
                engine.stop(container_id)
            containers.clear()

            layout = folder / "layout"
            index = json.loads((layout / "index.json").read_text())
            manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
            ours = [layer["mediaType"] for layer in manifest["layers"]][1:]  # the base keeps its gzip layer
            suffix = "+zstd" if compression == "zstd" else ""
            assert set(ours) == ({LAYER + suffix, LAYER} if suffix else {LAYER}), ours  # the model layer: a plain tar

            sbom = run_pkgc("sbom", f"oci:{layout}", env=session_env)
            assert sbom.returncode == 0, sbom.stderr
            assert json.loads(sbom.stdout)["metadata"]["component"]["name"] == name
            verified = run_pkgc("attestations", "verify", f"oci:{layout}", "--json", env=session_env)
            assert verified.returncode == 0, verified.stderr + verified.stdout

        assert built["zstd"]["manifest_digest"] != built["none"]["manifest_digest"] != copy_package["manifest_digest"]
        pushed = built["zstd"]["push"]
        status, body, _ = registry.manifest("compress-e2e/zstd", "1")
        assert status == 200 and json.loads(body)["layers"][-1]["mediaType"] == LAYER + "+zstd"
        assert pushed["digest"] == built["zstd"]["manifest_digest"]
        if shutil.which("podman"):  # containers/image inflates zstd and checks each layer's diff_id
            ref = f"{registry.host}/compress-e2e/zstd:1"
            pulled = subprocess.run(["podman", "pull", "-q", "--tls-verify=false", ref], capture_output=True, text=True)
            assert pulled.returncode == 0, pulled.stderr
            try:
                digest = subprocess.run(["podman", "image", "inspect", "--format", "{{.Digest}}", ref],
                                        capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
                assert digest == pushed["digest"]
            finally:
                subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)
    finally:
        for result in built.values():
            for image in (result["image"], result.get("content_tag")):
                if image:
                    engine.remove_image(image)
