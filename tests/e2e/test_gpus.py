"""``--gpus`` reaches the real engines (no GPU here, so each engine's own "no GPU" answer is the proof):
Docker gets its ``gpu`` device request and refuses it for want of the NVIDIA toolkit; podman's CLI takes
pkgc's CDI names and looks them up; podman's Docker API (4.3) drops the request and pkgc refuses to start
the package on the CPU. And bench/gpu.sh says plainly that it skipped, after checking pkgc and the engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from compiler.engines.gpus import parse_gpus
from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
DOCKER_NO_GPU = 'could not select device driver "" with capabilities: [[gpu]]'  # dockerd without the toolkit
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]  # podman's defaults fail here


def containers_of(client: docker.DockerClient, image: str) -> list[str]:
    return [c.id for c in client.containers.list(all=True, filters={"ancestor": image})]


@pytest.mark.parametrize("command, gpus", [("run", "all"), ("verify", "device=0,1"), ("build", "2")])
def test_docker_receives_the_gpu_request(command, gpus, copy_package, registered, example_copy, session_env):
    image = copy_package["image"]
    if command == "build":  # the same package again (every layer reused), smoke-tested with GPUs
        args = ["build", str(example_copy / "package-azure-app.yml"), "--model", registered["model"], "--verify"]
    else:
        args = [command, image]
    proc = run_pkgc(*args, "--gpus", gpus, "--json", env=session_env)
    assert proc.returncode == 3, proc.stderr
    (line,) = [line for line in proc.stderr.strip().splitlines() if line.startswith("pkgc: error:")]
    assert line.endswith(f"docker cannot give the container GPUs ({parse_gpus(gpus)}): its host has no NVIDIA "
                         f"driver with the nvidia-container-toolkit (engine: {DOCKER_NO_GPU})")  # fmt: skip
    client = docker.from_env()
    try:
        assert containers_of(client, image) == []  # refused at start: nothing left in state Created
    finally:
        client.close()


@pytest.mark.parametrize("gpus", ["all", "2", "device=1"])
def test_podman_takes_pkgc_s_cdi_names(podman, gpus, tmp_path):
    """The names reach podman's CDI registry, which has no NVIDIA spec here (nvidia-ctk cdi generate)."""
    request = parse_gpus(gpus)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    proc = subprocess.run([podman, "run", "--rm", *ULIMITS, *request.podman_arguments(), "--rootfs", str(rootfs), "/bin/true"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode != 0
    assert f"unresolvable CDI devices {request.cdi_devices()[0]}" in proc.stderr


def test_podman_s_docker_api_dropping_the_request_is_refused(podman, podman_service, copy_package, session_env, tmp_path):
    """A package image (the real one's labels on an empty image) started through podman's Docker API with
    --gpus: podman 4.3 keeps no device request, so pkgc stops instead of serving on the CPU."""
    config = docker.from_env().images.get(copy_package["image"]).attrs["Config"]
    lines = [f"LABEL {key}={json.dumps(value)}" for key, value in config["Labels"].items()]
    (tmp_path / "Containerfile").write_text("\n".join(["FROM scratch", *lines, f"ENTRYPOINT {json.dumps(config['Entrypoint'])}", ""]))
    image = "localhost/pkgc-gpu-e2e:1"
    built = subprocess.run([podman, "build", "-q", "-t", image, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    try:
        proc = run_pkgc("run", image, "--gpus", "2", env=session_env | {"DOCKER_HOST": podman_service})
        assert proc.returncode == 3, proc.stderr
        (line,) = [line for line in proc.stderr.strip().splitlines() if "level=" not in line]
        assert line == ("pkgc: error: the podman engine dropped the GPU request (2), so the package would run without GPUs; "
                        f"run it with the engine's own CLI: podman run --device nvidia.com/gpu=0 --device nvidia.com/gpu=1 ... {image}")  # fmt: skip
        left = subprocess.run([podman, "ps", "-aq", "--filter", f"ancestor={image}"], capture_output=True, text=True)
        assert left.stdout.strip() == ""
    finally:
        subprocess.run([podman, "rmi", "-f", image], capture_output=True)


def gpu_sh(env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PYTHONPATH": str(ROOT),
            "PKGC": f"{sys.executable} -m compiler.cli"}  # fmt: skip
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh")], capture_output=True, text=True, env=base | env, timeout=120)


def test_gpu_sh_skips_plainly_without_a_gpu(engine, tmp_path):
    proc = gpu_sh({"NVIDIA_SMI": "nvidia-smi-not-installed", "TMPDIR": str(tmp_path)})
    assert proc.returncode == 77, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("gpu.sh: pkgc ") and lines[1].startswith("gpu.sh: engine docker ")
    assert lines[2:] == ["gpu.sh: SKIPPED: no NVIDIA GPU here (nvidia-smi-not-installed not found); pkgc and the engine "
                         "answer. Nothing was built."]  # fmt: skip
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


def test_gpu_sh_finds_pkgc_on_the_path(engine, tmp_path):
    """After `. .venv/bin/activate`, `pkgc` is on PATH and PKGC unset: the script runs that pkgc (it
    once called its own shell function of that name, endlessly, and said pkgc did not run)."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "pkgc").write_text(f"#!/bin/sh\nexec {sys.executable} -m compiler.cli \"$@\"\n")
    (bin_folder / "pkgc").chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = gpu_sh({"PKGC": "", "PATH": f"{bin_folder}:{os.environ['PATH']}", "NVIDIA_SMI": "nvidia-smi-not-installed", "TMPDIR": str(scratch)})
    assert proc.returncode == 77, proc.stderr
    assert proc.stderr.splitlines()[0].startswith("gpu.sh: pkgc 0.") and "SKIPPED: no NVIDIA GPU here" in proc.stderr


def test_gpu_sh_skips_when_the_driver_does_not_answer(engine, tmp_path):
    """A machine with nvidia-smi whose driver is not loaded: what nvidia-smi prints there, then exit 9."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n")
    smi.chmod(0o755)
    proc = gpu_sh({"NVIDIA_SMI": str(smi), "TMPDIR": str(tmp_path)})
    assert proc.returncode == 77, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"gpu.sh: SKIPPED: no usable NVIDIA GPU here ({smi}: NVIDIA-SMI has failed because it couldn't communicate "
        "with the NVIDIA driver.); pkgc and the engine answer. Nothing was built.")  # fmt: skip


def test_an_engine_api_older_than_device_requests_is_one_line(copy_package):
    """Docker's API before 1.40 (Docker 19.03) has no device requests: said so, nothing created."""
    from compiler.engines import DockerEngine
    from compiler.errors import BuildError

    client = docker.DockerClient(version="1.39")  # the real engine, spoken to as an older one
    try:
        with pytest.raises(BuildError) as err:
            DockerEngine(client).run(copy_package["image"], 5001, None, [], {}, gpus=parse_gpus("all"))
        assert str(err.value) == ("the engine cannot pass GPUs (all): device_requests param is not supported in "
                                  "API versions < 1.40")  # fmt: skip
        assert containers_of(client, copy_package["image"]) == []
    finally:
        client.close()


@pytest.mark.parametrize("gpus", ["all", "device=0,1"])
def test_gpu_sh_stops_before_building_when_the_engine_cannot_pass_gpus(engine, tmp_path, gpus):
    """Past the GPU probe (an nvidia-smi that answers as one does on a T4; there is no GPU here), the
    script's first engine call with --gpus reaches Docker, which has no NVIDIA toolkit: exit 1 with
    Docker's words, nothing built."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, Tesla T4, 535.183.01'\n")
    smi.chmod(0o755)
    proc = gpu_sh({"NVIDIA_SMI": str(smi), "GPUS": gpus, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[2] == "gpu.sh: GPUs: 0, Tesla T4, 535.183.01;"
    assert lines[3:] == ["gpu.sh: FAILED: the engine cannot give a container GPUs (install nvidia-container-toolkit "
                         f"and restart the engine): docker: Error response from daemon: {DOCKER_NO_GPU}"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nvidia-smi"]
