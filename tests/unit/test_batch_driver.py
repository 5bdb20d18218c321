"""The batch driver shipped into azureml_batch images (templates/runtime/pkgc_batch.py), run on the host
with the host's Python: mini-batches, both result kinds, output actions, failures naming the files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.resources import templates_dir

DRIVER = templates_dir() / "runtime" / "pkgc_batch.py"
SCRIPT = '''
import os
calls = []

def init():
    assert os.path.isdir(os.environ["AZUREML_BI_OUTPUT_PATH"])  # set by the driver, as Azure ML does
    calls.append("init")

def run(mini_batch):
    calls.append(len(mini_batch))
    rows = []
    for path in mini_batch:
        text = open(path).read().strip()
        if text == "boom":
            raise ValueError("cannot score " + os.path.basename(path))
        rows.append(f"{os.path.basename(path)},{text},{len(calls) - 1}")
    return KIND(rows)
'''


def driver(tmp_path: Path, kind: str, files: dict[str, str], *args: str) -> subprocess.CompletedProcess:
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
    command = [sys.executable, str(DRIVER), "--input", str(data), "--output", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env)


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
    assert last == "pkgc-batch: run() of mini-batch 2/3 raised ValueError: cannot score bad.csv on bad.csv"
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("args, message", [(["--mini-batch-size", "0"], "at least 1"),
                                           (["--output-file-name", "../x"], "plain file name")])  # fmt: skip
def test_bad_arguments_exit_2(tmp_path, args, message):
    proc = driver(tmp_path, "list", {"a.csv": "1"}, *args)
    assert proc.returncode == 2 and message in proc.stderr
