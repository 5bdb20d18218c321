"""``pkgc verify`` and ``pkgc build --verify`` against real packages: a good one passes; a package whose
score script raises, a readonly_mount package without its model, and a wrong answer fail with the
reason (exit 4); whatever verify starts is removed again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker
import pytest

from tests.conftest import package_spec, run_pkgc
from tests.e2e.test_example_package import host_predictions

pytestmark = pytest.mark.engine

BOOM = "pkgc-e2e: scoring failed on purpose"


def leftover_containers(image: str) -> list[str]:
    client = docker.from_env()
    try:
        return [c.id for c in client.containers.list(all=True, filters={"ancestor": image})]
    finally:
        client.close()


@pytest.fixture(scope="module")
def expected_file(example_copy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("verify") / "expected.json"
    path.write_text(json.dumps(host_predictions(example_copy)))
    return path


@pytest.fixture(scope="module")
def broken_build(copy_package, registered, session_env, example_copy, tmp_path_factory):
    """The example with a run() that raises, built (only its code layer is new) with --verify."""
    root = tmp_path_factory.mktemp("broken")
    shutil.copytree(example_copy / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    score = root / "src" / "score.py"
    score.write_text(score.read_text() + f"\n\ndef run(raw_data):\n    raise RuntimeError({BOOM!r})\n")
    (root / "package-broken.yml").write_text(package_spec("sklearn-regression-broken-pkg", "sklearn-regression-env"))
    return run_pkgc(
        "build", str(root / "package-broken.yml"), "--model", registered["model"], "--json",
        "--lock-file", str(example_copy / "package-azure-app.conda-lock.yml"),
        "--verify", "--request-file", str(example_copy / "sample-request.json"), env=session_env,
    )  # fmt: skip


def test_verify_passes_on_a_good_package(readonly_package, session_env, example_copy, expected_file):
    image = readonly_package["image"]
    proc = run_pkgc("verify", image, "--request-file", str(example_copy / "sample-request.json"),
                    "--expect", str(expected_file), "--json", env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["passed"] and result["scored"] and result["compared"] and result["model_mounted"]
    assert result["status"] == 200
    assert result["response"] == pytest.approx(host_predictions(example_copy), rel=1e-12)
    assert leftover_containers(image) == []


def test_verify_fails_when_the_response_differs(copy_package, session_env, example_copy, tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([p * 1.01 for p in host_predictions(example_copy)]))
    proc = run_pkgc("verify", copy_package["image"], "--request-file", str(example_copy / "sample-request.json"),
                    "--expect", str(wrong), env=session_env)  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert f"the response differs from {wrong} at $[0]: got" in proc.stderr
    assert leftover_containers(copy_package["image"]) == []


def test_build_verify_fails_when_the_score_script_raises(broken_build, session_env, example_copy):
    assert broken_build.returncode == 4, broken_build.stderr[-3000:]
    result = json.loads(broken_build.stdout)
    assert result["verify"]["passed"] is False
    error = [line for line in broken_build.stderr.splitlines() if line.startswith("pkgc: error:")]
    assert len(error) == 1, broken_build.stderr[-3000:]
    assert "POST /score answered HTTP 500" in error[0]
    assert f"raised RuntimeError: {BOOM}" in error[0] and "container log:" in error[0]
    assert leftover_containers(result["image"]) == []
    again = run_pkgc("verify", result["image"], "--request-file", str(example_copy / "sample-request.json"), env=session_env)
    assert again.returncode == 4 and f"RuntimeError: {BOOM}" in again.stderr
    healthy = run_pkgc("verify", result["image"], env=session_env)  # the health route alone still answers
    assert healthy.returncode == 0, healthy.stderr


def test_verify_fails_on_a_readonly_mount_package_without_its_model(readonly_package, session_env):
    proc = run_pkgc("verify", readonly_package["image"], "--no-model-mount", "--timeout", "30", env=session_env)
    assert proc.returncode == 4, proc.stderr
    assert "the package exited with code 78 before / answered" in proc.stderr
    assert "model sklearn-regression:1 is not mounted" in proc.stderr
    assert readonly_package["model_dir"] in proc.stderr
    assert leftover_containers(readonly_package["image"]) == []


def test_verify_names_a_model_missing_from_the_workspace(readonly_package, session_env, tmp_path):
    env = dict(session_env, PKGC_WORKSPACE=str(tmp_path / "empty-workspace"))
    proc = run_pkgc("verify", readonly_package["image"], env=env)
    assert proc.returncode == 2, proc.stderr
    assert "expects model sklearn-regression:1 mounted at" in proc.stderr and "pass --model-path" in proc.stderr


def test_verify_rejects_bad_request_files_before_starting_anything(copy_package, session_env, tmp_path):
    missing = run_pkgc("verify", copy_package["image"], "--request-file", str(tmp_path / "nope.json"), env=session_env)
    assert missing.returncode == 2 and "request file not found" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    invalid = run_pkgc("verify", copy_package["image"], "--request-file", str(bad), env=session_env)
    assert invalid.returncode == 2 and "not valid JSON" in invalid.stderr
