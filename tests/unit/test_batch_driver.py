"""The batch driver shipped into azureml_batch images (templates/runtime/pkgc_batch.py), run on the host
with the host's Python: mini-batches, both result kinds, output actions, failures naming the files,
retries, the per-mini-batch timeout, the error threshold (in files), worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.resources import templates_dir

DRIVER = templates_dir() / "runtime" / "pkgc_batch.py"
SCRIPT = '''
import logging
import os
import time
calls = []


def _first_time(path, what):
    """True the first time a mini-batch holding ``path`` does ``what`` (a marker beside the input: any process sees it)."""
    marker = path + "." + what + ".seen"
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True

def init():
    assert os.path.isdir(os.environ["AZUREML_BI_OUTPUT_PATH"])  # set by the driver, as Azure ML does
    if os.environ.get("FAIL_INIT"):
        raise OSError("no model here")
    logging.getLogger("score").debug("init done (debug)")
    calls.append("init")

def run(mini_batch):
    calls.append(len(mini_batch))
    rows = []
    for path in mini_batch:
        text = open(path).read().strip()
        if text == "boom":
            raise ValueError("cannot score " + os.path.basename(path))
        if text == "flaky" and _first_time(path, "flaky"):
            raise RuntimeError("flaked on " + os.path.basename(path))
        if text == "slow" and _first_time(path, "slow"):
            time.sleep(60)
        if text == "crash":
            os._exit(3)
        if text == "pid":  # long enough that the other workers take the next mini-batches
            time.sleep(0.5)
            text = str(os.getpid())
        rows.append(f"{os.path.basename(path)},{text},{len(calls) - 1}")
    return KIND(rows)
'''


def driver(tmp_path: Path, kind: str, files: dict[str, str], *args: str, variables: dict | None = None) -> subprocess.CompletedProcess:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    prelude = "import pandas\nKIND = lambda rows: pandas.DataFrame([r.split(',') for r in rows])\n" if kind == "frame" else "KIND = list\n"
    (src / "score.py").write_text(prelude + SCRIPT)
    data = tmp_path / "in"
    for name, text in files.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(text)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, AZUREML_ENTRY_SCRIPT=str(src / "score.py"))
    env.update(variables or {})
    command = [sys.executable, str(DRIVER), "--input", str(data), "--output", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("kind", ["list", "frame"])
def test_append_row_in_input_order_by_mini_batch(tmp_path, kind):
    files = {"b.csv": "2", "a.csv": "1", "sub/c.csv": "3", ".hidden": "x"}
    proc = driver(tmp_path, kind, files, "--mini-batch-size", "2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "predictions.csv").read_text() == "a.csv,1,1\nb.csv,2,1\nc.csv,3,2\n"
    assert "3 files in 2 mini-batches, 3 rows in predictions.csv" in proc.stderr


def test_summary_only_writes_no_file(tmp_path):
    proc = driver(tmp_path, "list", {"a.csv": "1"}, "--output-action", "summary_only")
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failing_run_names_the_files_and_writes_nothing(tmp_path):
    proc = driver(tmp_path, "list", {"a.csv": "1", "bad.csv": "boom", "c.csv": "3"}, "--mini-batch-size", "1")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("pkgc-batch: error_threshold 0 passed (1 failed files): "
                    "run() of mini-batch 2/3 raised ValueError: cannot score bad.csv on bad.csv")  # fmt: skip
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("args, message", [(["--mini-batch-size", "0"], "at least 1"),
                                           (["--output-file-name", "../x"], "plain file name"),
                                           (["--error-threshold", "-2"], "-1 (ignore every failure)"),
                                           (["--output-action", "append"], "append_row, summary_only"),
                                           (["--logging-level", "loud"], "debug, info")])  # fmt: skip
def test_bad_arguments_exit_2(tmp_path, args, message):
    proc = driver(tmp_path, "list", {"a.csv": "1"}, *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_a_failed_attempt_is_retried(tmp_path):
    proc = driver(tmp_path, "list", {"a.csv": "1", "b.csv": "flaky"}, "--mini-batch-size", "1", "--max-retries", "1")
    assert proc.returncode == 0, proc.stderr
    assert "run() of mini-batch 2/2 raised RuntimeError: flaked on b.csv (attempt 1); retrying" in proc.stderr
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert [row.split(",")[:2] for row in rows] == [["a.csv", "1"], ["b.csv", "flaky"]]


def test_a_mini_batch_over_the_timeout_is_killed_and_retried(tmp_path):
    started = time.monotonic()
    proc = driver(tmp_path, "list", {"a.csv": "slow"}, "--timeout", "1", "--max-retries", "2")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 30  # the sleeping worker was killed, not waited for
    assert "run() of mini-batch 1/1 timed out after 1 s (attempt 1); retrying" in proc.stderr
    assert (tmp_path / "out" / "predictions.csv").read_text().startswith("a.csv,slow,")


def test_the_error_threshold_counts_failed_files(tmp_path):
    files = {"a.csv": "1", "b1.csv": "boom", "b2.csv": "2", "c.csv": "3"}
    # mini-batches [a, b1] [b2, c]: the first fails every attempt, which is 2 files
    tolerated = driver(tmp_path, "list", files, "--mini-batch-size", "2", "--error-threshold", "2", "--max-retries", "1")
    assert tolerated.returncode == 0, tolerated.stderr
    assert "run() of mini-batch 1/2 raised ValueError: cannot score b1.csv (attempt 2, the last); its files are left out: a.csv, b1.csv" in tolerated.stderr
    assert [row.split(",")[0] for row in (tmp_path / "out" / "predictions.csv").read_text().splitlines()] == ["b2.csv", "c.csv"]
    assert "4 files in 2 mini-batches, 2 rows in predictions.csv, 2 files failed (error_threshold 2)" in tolerated.stderr
    (tmp_path / "out" / "predictions.csv").unlink()
    stopped = driver(tmp_path, "list", files, "--mini-batch-size", "2", "--error-threshold", "1")
    assert stopped.returncode == 1
    assert "error_threshold 1 passed (2 failed files)" in stopped.stderr.strip().splitlines()[-1]
    assert list((tmp_path / "out").iterdir()) == []
    ignored = driver(tmp_path, "list", files, "--mini-batch-size", "2", "--error-threshold", "-1")
    assert ignored.returncode == 0, ignored.stderr


def test_a_crashing_worker_fails_its_attempt_and_is_replaced(tmp_path):
    proc = driver(tmp_path, "list", {"a.csv": "crash", "b.csv": "2"}, "--mini-batch-size", "1", "--error-threshold", "-1")
    assert proc.returncode == 0, proc.stderr
    assert "run() of mini-batch 1/2 ended: its worker exited with code 3; its files are left out: a.csv" in proc.stderr
    assert (tmp_path / "out" / "predictions.csv").read_text().startswith("b.csv,2,")


def test_workers_run_in_parallel_processes(tmp_path):
    files = {f"{i}.csv": "pid" for i in range(6)}
    proc = driver(tmp_path, "list", files, "--mini-batch-size", "1", "--max-concurrency", "3")
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == [f"{i}.csv" for i in range(6)]  # input order kept
    assert 1 < len({row.split(",")[1] for row in rows}) <= 3


def test_init_failure_stops_the_job(tmp_path):
    proc = driver(tmp_path, "list", {"a.csv": "1"}, variables={"FAIL_INIT": "1"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "pkgc-batch: init() raised OSError: no model here"


def test_image_variables_are_defaults_and_flags_win(tmp_path):
    files = {"a.csv": "1", "b.csv": "2", "c.csv": "3"}
    baked = {"PKGC_BATCH_MINI_BATCH_SIZE": "1", "PKGC_BATCH_OUTPUT_FILE_NAME": "scores.csv", "PKGC_BATCH_LOGGING_LEVEL": "DEBUG"}
    proc = driver(tmp_path, "list", files, variables=baked)
    assert proc.returncode == 0, proc.stderr
    assert "3 files in 3 mini-batches, 3 rows in scores.csv" in proc.stderr
    assert "init done (debug)" in proc.stderr
    proc = driver(tmp_path, "list", files, "--mini-batch-size", "2", "--logging-level", "warning", variables=baked)
    assert "3 files in 2 mini-batches" in proc.stderr and "init done" not in proc.stderr
    bad = driver(tmp_path, "list", files, variables={"PKGC_BATCH_TIMEOUT": "soon"})
    assert bad.returncode == 2 and "PKGC_BATCH_TIMEOUT='soon' is not a valid float" in bad.stderr
