"""A readonly_mount package served by podman with its model mounted read-only from the model image.

Docker 20.10 cannot mount an image; podman (Debian's, installed by scripts/ensure-podman.sh) can:
``podman run --mount type=image,source=MODEL,destination=MODEL_DIR`` (read-only), as a Kubernetes
image volume does. One build writes the package as an OCI archive (copied into podman's storage
with skopeo) and the model image as an archive, a layout and a push to a loopback registry (podman
pulls it by the digest the Kubernetes manifest names); the package answers /score, the mount is
read-only, and the kubernetes-init variant's copy runs as its manifest says."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from compiler.deploy.settings import ModelImageRef, deploy_facts, deploy_settings
from tests.conftest import ROOT, run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.registry import start_registry

pytestmark = pytest.mark.engine
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]  # podman's defaults fail here


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=300)
    assert not check or proc.returncode == 0, f"{argv}: {proc.stderr[-2000:]}"
    return proc


def _static_busybox() -> Path | None:
    """Debian's busybox-static (no ELF interpreter: it runs inside an image with no libc), if installed."""
    path = Path("/bin/busybox")
    if not path.is_file():
        return None
    data = path.read_bytes()[:65536]
    if data[:5] != b"\x7fELF\x02":
        return None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    interp = any(struct.unpack_from("<I", data, phoff + i * size)[0] == 3 for i in range(count))  # PT_INTERP
    return None if interp else path


def _post(port: int, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/score", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def _wait_ready(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the package never answered GET /"
        time.sleep(1)


def test_package_serves_with_its_model_mounted_read_only_from_the_model_image(
    podman, registered, session_env, example_copy, tmp_path
):
    out = tmp_path / "out"
    registry = start_registry(tmp_path / "registry", free_port())
    try:
        _serve_and_check(podman, registry, session_env, example_copy, registered, out, tmp_path)
    finally:
        registry.stop()


def _serve_and_check(podman, registry, session_env, example_copy, registered, out: Path, tmp_path: Path) -> None:
    proc = run_pkgc(
        "build", str(example_copy / "package-moe.yml"), "--model", registered["model"], "--json",
        "--output", f"oci-archive:{out / 'package.tar'}", "--model-output", f"oci-archive:{out / 'model.tar'}",
        "--model-output", f"oci:{out / 'model-layout'}", "--model-push", f"{registry.host}/models/sk:e2e",
        "--deploy-settings", "kubernetes", env=session_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    model = result["model_image"]
    digest = model["manifest_digest"]
    assert {o["digest"] for o in model["outputs"]} == {digest}  # archive and layout: one manifest
    index = json.loads((out / "model-layout" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    volume = result["deploy_settings"]["objects"][0]["spec"]["template"]["spec"]["volumes"][0]
    pinned = f"{registry.host}/models/sk@{digest}"  # what the cluster pulls: the pushed model image, by digest
    assert model["push"]["digest"] == digest and model["push"]["pinned"] == pinned
    assert volume == {"name": "model", "image": {"reference": pinned, "pullPolicy": "IfNotPresent"}}

    suffix = f"{os.getpid()}-{free_port()}"
    package, model_ref, name = f"localhost/pkgc-model-e2e-pkg:{suffix}", pinned, f"pkgc-model-e2e-{suffix}"
    port = free_port()
    try:
        tag = result["outputs"][0]["tag"]  # by tag: the archive may also hold referrers (SBOM, provenance)
        _run("skopeo", "copy", "-q", f"oci-archive:{out / 'package.tar'}:{tag}", f"containers-storage:{package}")
        _run(podman, "pull", "-q", "--tls-verify=false", model_ref)  # from the registry --model-push wrote to
        assert _run(podman, "image", "inspect", "--format", "{{.Digest}}", model_ref).stdout.strip() == digest
        labels = json.loads(_run(podman, "image", "inspect", "--format", "{{json .Labels}}", package).stdout)
        assert labels["io.pkgc.model.image"] == digest  # the package names the model image it was built for
        _run(podman, "run", "-d", "--name", name, *ULIMITS, "-p", f"127.0.0.1:{port}:5001",
             "--mount", f"type=image,source={model_ref},destination={result['model_dir']}", package)  # fmt: skip
        _wait_ready(port)
        status, body = _post(port, (example_copy / "sample-request.json").read_bytes())
        expected = json.loads((ROOT / "examples" / "pipelines" / "sklearn-regression-expected.json").read_text())
        assert status == 200 and json.loads(body) == pytest.approx(expected, rel=1e-6)
        model_dir = result["model_dir"]
        touched = _run(podman, "exec", name, "touch", f"{model_dir}/written", check=False)
        assert touched.returncode != 0 and "Read-only file system" in touched.stderr
        mounts = _run(podman, "exec", name, "cat", "/proc/mounts").stdout
        options = next(line.split()[3] for line in mounts.splitlines() if line.split()[1] == model_dir)
        assert options.split(",")[0] == "ro"
        listed = _run(podman, "exec", name, "ls", f"{model_dir}/{model['root']}").stdout.split()
        assert listed == sorted(p.name for p in (example_copy / "model").iterdir())
        _init_variant_copies_the_model(podman, model_ref, labels, model, tmp_path, name, listed)
    finally:
        _run(podman, "rm", "-f", name, check=False)
        _run(podman, "rmi", "-f", package, model_ref, check=False)


def _init_variant_copies_the_model(podman: str, model_ref: str, labels: dict, model: dict, tmp_path: Path, name: str, expected: list[str]) -> None:
    """kubernetes-init's copying init container, run as its manifest says (command, user, mounts)
    from the shell-less model image, with Debian's static busybox standing in for the copier's."""
    busybox = _static_busybox()
    assert busybox is not None, "scripts/ensure-podman.sh installs busybox-static"
    ref = ModelImageRef(model_ref, model["manifest_digest"], model["root"], pushed=True)
    pod = deploy_settings("kubernetes-init", deploy_facts("pkgc/x:1", labels, None, ref)).data["objects"][0]["spec"]["template"]["spec"]
    copy = pod["initContainers"][1]
    tools, target = tmp_path / "tools", tmp_path / "emptydir"
    tools.mkdir()
    target.mkdir(mode=0o777)
    target.chmod(0o777)  # an emptyDir is world-writable
    shutil.copy(busybox, tools / "busybox")
    mounts = {m["name"]: m["mountPath"] for m in copy["volumeMounts"]}
    user = f"{copy['securityContext']['runAsUser']}:{copy['securityContext']['runAsGroup']}"
    _run(podman, "run", "--rm", "--name", f"{name}-init", *ULIMITS, "--user", user, "--read-only",
         "-v", f"{tools}:{mounts['pkgc-tools']}:ro", "-v", f"{target}:{mounts['model']}", model_ref, *copy["command"])  # fmt: skip
    copied = target / model["root"]
    assert sorted(p.name for p in copied.iterdir()) == expected
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in copied.rglob("*"))  # readable by the package's user


def test_podman_and_docker_read_a_model_layer_whose_headers_are_padded(podman, tmp_path):
    """A plain layer pads the PAX header of each file of 1 MiB or more so its data starts at a 4 KiB
    boundary (a ``comment`` record: tests/unit/test_aligned_layers.py). The example's model is too small
    to be padded, so here a model with such files goes through the real readers: podman (containers/
    storage) mounts the image, Docker (moby's archive/tar, via skopeo's docker-daemon transport) holds
    it; both give back every file byte for byte."""
    from compiler.backends.oci.model_image import ModelSource, build_model_image
    from compiler.oci.aligned_header import ALIGN_MIN
    from compiler.oci.outputs import StoredImage, write_layout
    from compiler.oci.store import OciStore

    tree = tmp_path / "tree"
    files = {"model/w.bin": 3 * ALIGN_MIN + 5, "model/" + "d" * 120 + "/é.bin": ALIGN_MIN, "model/c.json": 40}
    for name, size in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(os.urandom(size))
    store = OciStore(tmp_path / "store")
    image = build_model_image(ModelSource("padded", "1", "custom_model", "ef" * 32, tree, "model"), store, large=2 * ALIGN_MIN)
    write_layout(store, StoredImage.read(store, image.manifest_digest), tmp_path / "layout", "1")
    pulled = _run(podman, "pull", "-q", f"oci:{tmp_path / 'layout'}:1").stdout.strip().splitlines()[-1]  # its image id
    try:
        mounted = Path(_run(podman, "image", "mount", pulled).stdout.strip())
        try:
            for name in files:
                assert (mounted / name).read_bytes() == (tree / name).read_bytes(), name
        finally:
            _run(podman, "image", "unmount", pulled, check=False)
    finally:
        _run(podman, "rmi", "-f", pulled, check=False)
    docker_ref = "pkgc-e2e/padded-model:1"
    _run("skopeo", "copy", "-q", f"oci:{tmp_path / 'layout'}:1", f"docker-daemon:{docker_ref}")
    container = _run("docker", "create", docker_ref, "/none").stdout.strip()
    try:
        for name in files:
            out = tmp_path / "from-docker" / Path(name).name
            out.parent.mkdir(exist_ok=True)
            _run("docker", "cp", f"{container}:/{name}", str(out))
            assert out.read_bytes() == (tree / name).read_bytes(), name
    finally:
        _run("docker", "rm", "-f", container, check=False)
        _run("docker", "rmi", "-f", docker_ref, check=False)
