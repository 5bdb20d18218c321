"""Triton packages, for real: the tritonserver binary of the nvidia-pytriton wheel (CPU, Python backend)
on the debian-bookworm-pytriton base, serving a model repository mounted read-only; Triton's own
routes; the answer equals the host's. A broken repository is refused at compile time."""

from __future__ import annotations

import json
import shutil

import numpy
import pytest

from compiler.labels import PackageLabels, Route
from tests.conftest import run_pkgc
from tests.e2e.examples import build, copy_example, register_environment

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def triton(engine, base_image, session_env, tmp_path_factory) -> dict:
    from compiler.baseimages.build import build_base_image

    build_base_image("debian-bookworm-pytriton", engine, lambda _line: None)
    example = copy_example("triton-python", tmp_path_factory.mktemp("triton"))
    register_environment(example / "environment" / "triton-python-env.yml", session_env)
    model = run_pkgc("-q", "model", "create", "--name", "triton-linear", "--path", str(example / "model_repository"), env=session_env)
    assert model.returncode == 0, model.stderr
    return {"example": example, "model": model.stdout.strip(),
            "build": build(example / "package.yml", model.stdout.strip(), session_env)}  # fmt: skip


def host_answer(example) -> list[float]:
    weights = json.loads((example / "model_repository" / "linear" / "1" / "weights.json").read_text())
    tensor = json.loads((example / "sample-request.json").read_text())["inputs"][0]
    rows = numpy.array(tensor["data"], dtype=float).reshape(tensor["shape"])
    return (rows @ numpy.array(weights["coef"]) + weights["intercept"]).tolist()


def test_triton_serves_the_mounted_repository(triton, session_env, engine, tmp_path):
    image = triton["build"]["image"]
    labels = PackageLabels.from_labels(image, engine.image_info(image).labels)
    assert (labels.server, labels.score, labels.readiness, labels.liveness, labels.needs_mount) == (
        "triton", Route(8000, "/v2/models/linear/infer"), Route(8000, "/v2/health/ready"), Route(8000, "/v2/health/live"), True,
    )  # fmt: skip
    locked = {(p["manager"], p["name"], p["version"]) for p in lock_packages(triton)}
    assert ("pip", "nvidia-pytriton", "0.7.0") in locked  # the manylinux_2_35 wheel: the recipe states glibc 2.36
    proc = run_pkgc("verify", image, "--request-file", str(triton["example"] / "sample-request.json"), "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    output = result["response"]["outputs"][0]
    assert (output["name"], output["shape"]) == ("OUTPUT0", [2, 1])
    assert output["data"] == pytest.approx(host_answer(triton["example"]), rel=1e-12)
    print(f"\nTriton (nvidia-pytriton): {triton['build']['size_bytes'] / 1e6:.0f} MB, ready in {result['ready_seconds']} s")


def lock_packages(triton) -> list[dict]:
    import yaml

    lock = yaml.safe_load((triton["example"] / "package.conda-lock.yml").read_text())
    return lock["package"]


def test_a_broken_repository_is_refused_at_compile_time(triton, session_env, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(triton["example"] / "model_repository", repo)
    shutil.rmtree(repo / "linear" / "1")
    proc = run_pkgc("build", str(triton["example"] / "package.yml"), "--model", str(repo), env=session_env)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
    assert len(errors) == 1 and "linear: not a Triton model repository: no version folder" in errors[0], proc.stderr
