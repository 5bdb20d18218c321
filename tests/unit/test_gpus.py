"""``--gpus all|N|device=ID[,ID...]``: parsed once (bad values one line, exit 2, before any engine is
asked), translated for Docker (a ``gpu`` device request, as ``docker run --gpus`` sends) and for podman
(CDI names); engine refusals that mean "no GPU support" are recognised. bench/gpu.sh's paths that need
no GPU and no build run here for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.engines.gpus import ALL, GpuRequest, dropped_message, no_gpu_message, no_gpu_support, parse_gpus
from compiler.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
GPU_SH = ROOT / "bench" / "gpu.sh"


@pytest.mark.parametrize(
    "text, request_, docker, cdi",
    [
        ("all", GpuRequest(count=ALL), {"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]]}, ("nvidia.com/gpu=all",)),
        ("2", GpuRequest(count=2), {"Driver": "", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]]}, ("nvidia.com/gpu=0", "nvidia.com/gpu=1")),
        ("device=0,3", GpuRequest(device_ids=("0", "3")), {"Driver": "", "Count": 0, "DeviceIDs": ["0", "3"], "Capabilities": [["gpu"]]},
         ("nvidia.com/gpu=0", "nvidia.com/gpu=3")),
        ('"device=1"', GpuRequest(device_ids=("1",)), {"Driver": "", "Count": 0, "DeviceIDs": ["1"], "Capabilities": [["gpu"]]}, ("nvidia.com/gpu=1",)),
        ("device=GPU-8f3e2c1a-0b1d-4c55-9d1e-2a3b4c5d6e7f", GpuRequest(device_ids=("GPU-8f3e2c1a-0b1d-4c55-9d1e-2a3b4c5d6e7f",)),
         {"Driver": "", "Count": 0, "DeviceIDs": ["GPU-8f3e2c1a-0b1d-4c55-9d1e-2a3b4c5d6e7f"], "Capabilities": [["gpu"]]},
         ("nvidia.com/gpu=GPU-8f3e2c1a-0b1d-4c55-9d1e-2a3b4c5d6e7f",)),
    ],
)  # fmt: skip
def test_gpus_are_translated_per_engine(text, request_, docker, cdi):
    parsed = parse_gpus(text)
    assert parsed == request_
    assert parsed.device_request("docker") == docker
    assert parsed.cdi_devices() == cdi
    assert parsed.device_request("podman") == {"Driver": "cdi", "Count": 0, "DeviceIDs": list(cdi), "Capabilities": []}
    assert parsed.podman_arguments() == [arg for name in cdi for arg in ("--device", name)]
    assert parse_gpus(str(parsed)) == parsed  # what results and messages print reads back the same


def test_docker_arguments_quote_a_device_list_as_docker_s_csv_parser_needs():
    assert parse_gpus("all").docker_arguments() == ["--gpus", "all"]
    assert parse_gpus("device=0,1").docker_arguments() == ["--gpus", '"device=0,1"']
    assert parse_gpus(None) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "'' is not all, a number of GPUs (1-64) or device=ID[,ID...] (indices or GPU-/MIG- UUIDs)"),
        ("any", "'any' is not all, a number of GPUs"),
        ("0", "'0': the number of GPUs must be from 1 to 64"),
        ("65", "'65': the number of GPUs must be from 1 to 64"),
        ("-1", "'-1' is not all"),
        ("count=2", "'count=2' is not all"),
        ("device=", "'device=': '' is not a device index or UUID"),
        ("device=0,,1", "'device=0,,1': '' is not a device index or UUID"),
        ("device=0,0", "'device=0,0': a device is named twice"),
        ("device=../x", "'device=../x': '../x' is not a device index or UUID"),
        ("device=0;rm -rf /", "'device=0;rm -rf /': '0;rm -rf /' is not a device index or UUID"),
        ("١", "'١' is not all"),  # a digit, but not an ASCII one
    ],
)
def test_bad_gpus_are_one_line_naming_the_flag(text, message):
    with pytest.raises(SpecError) as err:
        parse_gpus(text)
    (line,) = err.value.lines()
    assert line.startswith(f"--gpus: {message}")
    assert "\n" not in line and err.value.exit_code == 2


def test_a_long_bad_value_is_cut_short():
    with pytest.raises(SpecError) as err:
        parse_gpus("device=" + "9" * 5000)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "pkgc/none:1", "--gpus", "lots"],
        ["run", "--batch", "pkgc/none:1", "--input", ".", "--output", "out", "--gpus", "lots"],
        ["verify", "pkgc/none:1", "--gpus", "lots"],
    ],
)
def test_every_command_that_runs_a_package_refuses_bad_gpus_before_the_engine(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nowhere/docker.sock")  # were the engine asked, this would be exit 5
    monkeypatch.setenv("PKGC_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pkgc: error: --gpus: 'lots' is not all, a number of GPUs (1-64) or device=ID[,ID...] (indices or GPU-/MIG- UUIDs)"]
    assert not (tmp_path / "out").exists()


def test_build_takes_gpus_for_its_smoke_test_only(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PKGC_WORKSPACE", str(tmp_path / "ws"))
    spec = tmp_path / "package.yml"
    spec.write_text("x: 1\n")
    assert main(["build", str(spec), "--gpus", "all"]) == 2
    assert capsys.readouterr().err.strip() == "pkgc: error: --gpus: applies to the smoke test: add --verify"
    assert main(["build", str(spec), "--verify", "--gpus", "two"]) == 2
    assert capsys.readouterr().err.strip().startswith("pkgc: error: --gpus: 'two' is not all")


def test_engine_refusals_meaning_no_gpu_support_are_recognised():
    docker_text = 'could not select device driver "" with capabilities: [[gpu]]'  # Docker without the toolkit
    podman_text = "setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=all"  # podman without a CDI spec
    assert no_gpu_support(docker_text) and no_gpu_support(podman_text)
    assert not no_gpu_support("port is already allocated")
    line = no_gpu_message("docker", parse_gpus("all"), docker_text)
    assert line.startswith("docker cannot give the container GPUs (all): its host has no NVIDIA driver")
    assert docker_text in line
    dropped = dropped_message("podman", parse_gpus("2"), "localhost/pkg:1")
    assert "podman run --device nvidia.com/gpu=0 --device nvidia.com/gpu=1 ... localhost/pkg:1" in dropped
    assert 'docker run --gpus "device=1"' in dropped_message("docker", parse_gpus("device=1"), "pkg:1")


def gpu_sh(env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PYTHONPATH": str(ROOT),
            "PKGC": f"{sys.executable} -m compiler.cli"}  # this checkout's pkgc
    return subprocess.run(["bash", str(GPU_SH), *args], capture_output=True, text=True, env=base | env, timeout=60)


def test_gpu_sh_is_valid_bash_and_refuses_unknown_arguments():
    assert subprocess.run(["bash", "-n", str(GPU_SH)], capture_output=True).returncode == 0
    proc = gpu_sh({}, "--fast")
    assert proc.returncode == 2 and proc.stderr.strip() == "gpu.sh: unknown argument '--fast' (use --cpu or nothing)"


def test_gpu_sh_fails_plainly_when_no_engine_answers(tmp_path):
    proc = gpu_sh({"DOCKER": "docker -H unix:///nowhere/docker.sock", "TMPDIR": str(tmp_path)})
    assert proc.returncode == 1, proc.stderr
    assert "gpu.sh: FAILED: no container engine answers (docker -H unix:///nowhere/docker.sock version:" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was started or written
