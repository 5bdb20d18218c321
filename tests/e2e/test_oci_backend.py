"""The OCI back end against the real engine: the session's packages are OCI-built (the default for
venv packages); the Dockerfile back end builds the same plan and serves the same predictions; with
no engine at all, two builds from fresh workspaces and empty OCI stores give one manifest digest (a
third with the engine answering gives it too),
and the layout they write loads into the engine (through skopeo) and serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.options import load_options
from compiler.runtime.http import request
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.test_example_package import host_predictions, serve

pytestmark = pytest.mark.engine
NOWHERE = "unix:///nonexistent/docker.sock"


def score(engine, containers, image: str, example: Path) -> list[float]:
    port = free_port()
    serve(engine, containers, image, port)
    response = request(f"http://127.0.0.1:{port}/score", data=(example / "sample-request.json").read_bytes())
    assert response.status == 200
    return response.json()


def test_docker_back_end_builds_the_same_plan_and_serves_the_same_predictions(
    copy_package, registered, session_env, example_copy, engine, containers, tmp_path
):
    assert copy_package["builder"] == "oci" and copy_package["loaded"] is True
    spec = tmp_path / "package-azure-app.yml"  # its own target name: no other test tags this image
    spec.write_text((example_copy / "package-azure-app.yml").read_text()
                    .replace("sklearn-regression-docker-pkg", "oci-vs-docker-pkg")
                    .replace("code: src", f"code: {example_copy / 'src'}"))  # fmt: skip
    shutil.copy(example_copy / "package-azure-app.conda-lock.yml", tmp_path / "package-azure-app.conda-lock.yml")
    proc = run_pkgc("build", str(spec), "--model", registered["model"], "--builder", "docker", "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docker_built = json.loads(proc.stdout)
    assert docker_built["builder"] == "docker" and "manifest_digest" not in docker_built
    oci_info, docker_info = engine.image_info(copy_package["image"]), engine.image_info(docker_built["image"])
    changed = {k for k in oci_info.labels if oci_info.labels[k] != docker_info.labels.get(k)}
    # the renamed target (the SBOM names the package too); the rest is the plan's
    assert changed == {"org.opencontainers.image.title", "io.pkgc.spec.digest", "io.pkgc.sbom.digest"}
    assert set(oci_info.env) == set(docker_info.env)
    expected = host_predictions(example_copy)
    assert score(engine, containers, docker_built["image"], example_copy) == pytest.approx(expected, rel=1e-12)
    assert score(engine, containers, copy_package["image"], example_copy) == pytest.approx(expected, rel=1e-12)


@pytest.fixture(scope="module")
def base_layout(base_image, tmp_path_factory) -> str:
    """The offline base image as an OCI layout (written by skopeo from the engine): the only base a
    build with no engine and an empty store can find."""
    layout = tmp_path_factory.mktemp("base") / "layout"
    subprocess.run(["skopeo", "copy", "--quiet", f"docker-daemon:{base_image}", f"oci:{layout}:base"], check=True, capture_output=True)
    return f"oci:{layout}:base"


def no_engine_build(
    root: Path, example_copy: Path, base: str, spec_name: str = "package-azure-app.yml", with_engine: bool = False,
    progress: str = "auto",
) -> dict:
    """One build from scratch: a fresh workspace, an empty OCI store (the package files hard-linked
    from the warm shared cache), no engine (or, ``with_engine``, the engine as it is)."""
    project = root / "project"
    if not project.exists():
        shutil.copytree(example_copy, project)
    cache = root / "cache"
    if not cache.exists():
        shutil.copytree(load_options().cache_dir / "files", cache / "files", copy_function=os.link)
    env = {**os.environ, "PKGC_WORKSPACE": str(root / "workspace"), "PKGC_CACHE_DIR": str(cache)}
    if not with_engine:
        env["DOCKER_HOST"] = NOWHERE
    model = run_pkgc("-q", "model", "create", "--name", "sklearn-regression", "--path", str(project / "model"), env=env)
    assert model.returncode == 0, model.stderr
    environment = run_pkgc("-q", "environment", "create", "--file", str(project / "environment" / "sklearn-regression-env.yml"), env=env)
    assert environment.returncode == 0, environment.stderr
    out = root / f"out-{Path(spec_name).stem}"
    proc = run_pkgc("--progress", progress, "build", str(project / spec_name), "--model", model.stdout.strip(),
                    "--base-image", base, "--output", f"oci:{out}", "--json", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("no engine answers" in proc.stderr) is not with_engine
    if progress == "json":
        assert_progress_events(proc.stderr)
    return json.loads(proc.stdout)  # stdout holds the result only


def assert_progress_events(stderr: str) -> None:
    """``--progress json``: every stderr line one event; each stage starts and ends done, with its
    bytes where it moves them."""
    events = [json.loads(line) for line in stderr.splitlines()]
    done = {e["stage"]: e for e in events if e["type"] == "stage" and e["status"] == "done"}
    started = [e["stage"] for e in events if e["type"] == "stage" and e["status"] == "start"]
    assert started == ["resolve", "lock", "fetch", "base", "layers", "outputs"] and set(done) == set(started)
    assert done["fetch"]["bytes"] > 10_000_000 and done["layers"]["bytes"] > 10_000_000 and done["outputs"]["bytes"] > 0
    assert all(e["elapsed"] >= 0 for e in done.values())


def test_no_engine_builds_are_reproducible_and_their_layout_serves(
    copy_package, base_layout, example_copy, engine, containers, tmp_path
):
    first = no_engine_build(tmp_path / "first", example_copy, base_layout)
    second = no_engine_build(tmp_path / "second", example_copy, base_layout, progress="json")
    assert first["builder"] == "oci" and first["loaded"] is False
    assert first["manifest_digest"] == second["manifest_digest"] == first["outputs"][0]["digest"]
    environment = [layer for layer in first["layers"] if layer["kind"] == "environment"]  # scipy alone, then the rest
    assert len(environment) == 2 and "(scipy: scipy)" in environment[0]["why"] and "(the rest: " in environment[1]["why"]
    engine_built = no_engine_build(tmp_path / "engine", example_copy, base_layout, with_engine=True)
    assert engine_built["loaded"] is True and engine_built["manifest_digest"] == first["manifest_digest"]
    # its fresh workspace gave it the session package's tag (version 1): point that back
    assert engine_built["image"] == copy_package["image"]
    engine.tag(copy_package["image_id"], copy_package["image"])
    readonly = no_engine_build(tmp_path / "first", example_copy, base_layout, "package-moe.yml")
    assert readonly["mode"] == "readonly_mount" and readonly["outputs"][0]["digest"] == readonly["manifest_digest"]
    out = tmp_path / "first" / "out-package-azure-app"
    ref = "pkgc-e2e/oci-no-engine:1"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{out}:{first['outputs'][0]['tag']}", f"docker-daemon:{ref}"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        assert score(engine, containers, ref, example_copy) == pytest.approx(host_predictions(example_copy), rel=1e-12)
    finally:
        for container in containers:
            engine.stop(container)
        containers.clear()
        engine.remove_image(ref)


def test_a_registry_base_is_fetched_by_digest_with_no_engine(copy_package, registered, session_env, example_copy, base_image, engine, tmp_path):
    """The base pushed to a real registry (as Docker schema 2), the package built from it with no
    engine: its own layers are the session package's, on the registry's base layers; with the
    registry gone, the copy in pkgc's store builds the same manifest."""
    from compiler.oci.store import OciStore
    from tests.e2e.registry import start_registry

    registry = start_registry(tmp_path / "registry", free_port())
    env = {**session_env, "DOCKER_HOST": NOWHERE}  # the session's cache: the environment layer is reused
    spec = str(example_copy / "package-azure-app.yml")

    def build(base: str) -> dict:
        proc = run_pkgc("build", spec, "--model", registered["model"], "--target-environment", "registry-base-pkg",
                        "--base-image", base, "--output", f"oci:{tmp_path / 'out'}", "--json", env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "no engine answers" in proc.stderr
        return json.loads(proc.stdout)

    try:
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"docker-daemon:{base_image}",
                        f"docker://{registry.host}/pkgc-e2e/base:1"], check=True, capture_output=True)  # fmt: skip
        status, body, headers = registry.manifest("pkgc-e2e/base", "1")
        assert status == 200
        built = build(f"docker://{registry.host}/pkgc-e2e/base:1")
    finally:
        registry.stop()
    again = build(f"docker://{registry.host}/pkgc-e2e/base:1")  # the registry is gone: the stored copy
    assert again["manifest_digest"] == built["manifest_digest"]
    store = OciStore.in_cache(load_options(environ=session_env).cache_dir)
    layers = [l["digest"] for l in store.read_json(built["manifest_digest"])["layers"]]
    base_layers = [l["digest"] for l in json.loads(body)["layers"]]
    session_layers = [l["digest"] for l in store.read_json(copy_package["manifest_digest"])["layers"]]
    assert layers[: len(base_layers)] == base_layers  # the registry's blobs, as served
    own = layers[len(base_layers) : -1]  # user, environment, runtime, model, code (the SBOM names the target)
    assert own and session_layers[-len(own) - 1 : -1] == own
    ref = "pkgc-e2e/registry-base:1"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{tmp_path / 'out'}:{again['outputs'][0]['tag']}", f"docker-daemon:{ref}"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        code, out = engine.run_command(ref, ["/opt/pkgc/venv/bin/python", "-c", "import sklearn, azureml_inference_server_http; print('ok')"])
        assert code == 0 and out.strip().endswith("ok"), out
    finally:
        engine.remove_image(ref)


def test_the_store_s_index_of_a_base_wins_over_the_engine_s_image_of_that_name(base_image, engine, tmp_path):
    """``pkgc base-image build`` with no engine writes an index; the engine may hold another image of
    the same name (``docker import``ed by an earlier build): a build with the engine answering takes
    the index's image, as one with no engine does, so both give one package digest."""
    from compiler.oci.base import resolve_base
    from compiler.oci.layer import Entry, write_layer
    from compiler.oci.store import CONFIG, INDEX, MANIFEST, OciStore
    from compiler.platform import Platform

    store, host, name = OciStore(tmp_path / "store"), Platform.host(), "pkgc/base-index-wins:1"
    layer = write_layer([Entry("etc/marker", "file", data=b"the store's")], store.blobs)
    config = store.put_json({**host.oci(), "config": {}, "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}})
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [layer.descriptor()],
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size}})  # fmt: skip
    index = store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size, "platform": host.oci()}]})  # fmt: skip
    store.name([name], index, media_type=INDEX)
    engine.tag(engine.image_info(base_image).id, name)  # another image under the same name
    try:
        heard: list[str] = []
        with_engine = resolve_base(name, store, engine, heard.append)
        without = resolve_base(name, store, None, heard.append)
    finally:
        engine.remove_image(name)  # only this tag: the base image keeps its own
    assert with_engine.manifest_digest == without.manifest_digest == manifest.digest
    assert with_engine.source == "store" and not any("importing" in line for line in heard)
    assert engine.image_info(base_image) is not None
