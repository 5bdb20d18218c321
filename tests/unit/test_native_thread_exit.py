"""A rattler fetch that fails while its sibling request is still in flight finishes on a tokio thread
after ``main`` returned. The ``pkgc`` command must still exit with ``main``'s code (2, one line), never
abort in the interpreter's finalization (exit -6, "PyGILState_Release"), as it did under load in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_entry_keeps_exit_code_output_and_exit_handlers_with_rattler_loaded(tmp_path):
    """With rattler loaded, ``entry`` skips finalization but not what Python code asked for at exit."""
    marker = tmp_path / "atexit-ran"
    script = (
        "import atexit, pathlib, sys, rattler\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "sys.argv = ['pkgc', '--workspace', sys.argv[1], 'cache', 'du']\n"
        "from compiler.cli import entry\n"
        "entry()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "ws")], capture_output=True,
                          text=True, env=_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "stdout was not flushed before the exit"
    assert marker.read_text() == "yes"


def test_entry_exit_code_is_mains_without_rattler(tmp_path):
    """Without a native threaded module loaded the command exits normally, with main's code."""
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "--workspace", str(tmp_path), "lock",
                           str(tmp_path / "missing.yml")], capture_output=True, text=True, env=_env(),
                          timeout=120)  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "missing.yml" in errors[0], proc.stderr


UNREACHABLE = """\
name: blue
endpoint_name: ep
model:
  path: model
code_configuration:
  code: src
  scoring_script: score.py
environment:
  conda_file: conda.yaml
  image: pkgc/base-debian-bookworm:latest
"""


def test_unreachable_conda_channel_under_load_always_exits_2(tmp_path):
    """The CI failure, reproduced: 4 of 60 such runs aborted with 4 in parallel before the fix."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    # a host name that cannot resolve (RFC 6761 .invalid): both channel subdirs fail, at different moments
    (tmp_path / "conda.yaml").write_text(
        "channels: [https://conda.pkgc.invalid/forge]\ndependencies:\n- python=3.11\n- numpy\n")
    (tmp_path / "dep.yml").write_text(UNREACHABLE)

    def once(i: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "compiler.cli", "--workspace", str(tmp_path / f"ws{i % 4}"),
                               "lock", "dep.yml", "--lock-file", str(tmp_path / f"l{i}.yml")],
                              cwd=tmp_path, capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(once, range(24)))
    bad = [p for p in runs if p.returncode != 2 or "cannot fetch conda channel" not in p.stderr]
    assert not bad, f"{len(bad)} of {len(runs)}: exit {bad[0].returncode}\n{bad[0].stderr[-1500:]}"
