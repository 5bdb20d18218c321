"""azureml_batch packages run as jobs, for real: a folder of CSV files scored by the regression model
(readonly_mount through ``pkgc run --batch``, copy through plain ``docker run``); predictions.csv equals
the host's predictions; a run() that raises on one file names it and fails the job."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import docker
import numpy
import pytest

from compiler.labels import PackageLabels
from tests.conftest import run_pkgc
from tests.e2e.examples import build, copy_example, host_predict, register_environment

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def batch(registered, session_env, tmp_path_factory) -> dict:
    example = copy_example("batch-regression", tmp_path_factory.mktemp("batch"))
    register_environment(example / "environment" / "batch-regression-env.yml", session_env)
    lock = ("--lock-file", str(example / "batch.conda-lock.yml"))
    return {
        "example": example,
        "readonly": build(example / "package.yml", registered["model"], session_env, *lock),
        "copy": build(example / "package-copy.yml", registered["model"], session_env, *lock),
    }


def expected_rows(data: Path) -> list[tuple[str, int, float]]:
    """The host's answer: file name, row number, prediction, files in sorted order."""
    rows = []
    for path in sorted(data.glob("*.csv")):
        features = numpy.loadtxt(path, delimiter=",", ndmin=2)
        rows += [(path.name, i, p) for i, p in enumerate(host_predict(features))]
    return rows


def read_predictions(path: Path) -> list[tuple[str, int, float]]:
    with open(path, newline="") as fh:
        return [(name, int(row), float(value)) for name, row, value in csv.reader(fh)]


def assert_same(actual, expected):
    assert [(n, r) for n, r, _ in actual] == [(n, r) for n, r, _ in expected]
    assert [v for *_, v in actual] == pytest.approx([v for *_, v in expected], rel=1e-12)


def test_readonly_mount_job_through_pkgc_run(batch, session_env, engine, tmp_path):
    image = batch["readonly"]["image"]
    labels = PackageLabels.from_labels(image, engine.image_info(image).labels)
    assert labels.is_job and labels.needs_mount and batch["readonly"]["port"] is None
    data = batch["example"] / "data"
    proc = run_pkgc("run", "--batch", image, "--input", str(data), "--output", str(tmp_path / "out"),
                    "--mini-batch-size", "2", env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "3 files in 2 mini-batches, 12 rows in predictions.csv" in proc.stderr
    assert_same(read_predictions(tmp_path / "out" / "predictions.csv"), expected_rows(data))
    # an online command on a job package, and the other way round, are one clear line each
    online = run_pkgc("verify", image, env=session_env)
    assert online.returncode == 2 and "is a batch package" in online.stderr
    summary = run_pkgc("run", "--batch", image, "--input", str(data), "--output", str(tmp_path / "summary"),
                       "--output-action", "summary_only", env=session_env)  # fmt: skip
    assert summary.returncode == 0, summary.stderr
    assert list((tmp_path / "summary").iterdir()) == []


def test_a_failing_file_is_named_and_fails_the_job(batch, session_env, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(batch["example"] / "data", data)
    (data / "broken.csv").write_text("1,2,3\n")  # 3 features where the model takes 10: predict() raises
    out = tmp_path / "out"
    proc = run_pkgc("run", "--batch", batch["readonly"]["image"], "--input", str(data), "--output", str(out),
                    "--mini-batch-size", "1", env=session_env)  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
    assert len(error) == 1 and "exited with code 1" in error[0]
    assert "run() of mini-batch 1/4 raised ValueError" in error[0] and error[0].endswith("on broken.csv")
    assert list(out.iterdir()) == []  # nothing half-written


def test_copy_mode_job_with_plain_docker_run(batch, tmp_path):
    data = batch["example"] / "data"
    out = tmp_path / "out"
    out.mkdir()
    client = docker.from_env()
    try:
        logs = client.containers.run(
            batch["copy"]["image"], ["--input", "/in", "--output", "/out"], remove=True, network_mode="none",
            user=f"{os.getuid()}:{os.getgid()}", stderr=True,
            volumes={str(data): {"bind": "/in", "mode": "ro"}, str(out): {"bind": "/out", "mode": "rw"}},
        )  # fmt: skip
    finally:
        client.close()
    assert b"3 files in 1 mini-batches" in logs
    assert_same(read_predictions(out / "predictions.csv"), expected_rows(data))
