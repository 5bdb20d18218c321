"""The installers' own warnings during the host-side environment build are one-line notes in the run's
log, never raw RuntimeWarning text on the terminal: a real wheel that ships a ``__pycache__`` folder
(pypa installer skips it with a RuntimeWarning), installed in worker processes, and log records as
py-rattler emits them."""

from __future__ import annotations

import base64
import hashlib
import logging
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from compiler.envbuild.notes import NOTE_LIMIT, caught_notes, summary
from compiler.envbuild.venv import VenvTarget, assemble_venv
from tests.conftest import ROOT


def wheel_with_pycache(folder: Path, dist: str) -> Path:
    """A real wheel that wrongly ships ``__pycache__/*.pyc`` files (as some build back ends did)."""
    info = f"{dist}-1.0.dist-info"
    files = {
        f"{dist}/__init__.py": b"VALUE = 1\n",
        f"{dist}/__pycache__/__init__.cpython-311.pyc": b"\x00" * 16,
        f"{dist}/__pycache__/other.cpython-311.pyc": b"\x01" * 16,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
                     for name, data in files.items())  # fmt: skip
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{dist}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


SCRIPT = """
import sys
from pathlib import Path
from compiler.envbuild.venv import VenvTarget, assemble_venv
folder = Path(sys.argv[1])
wheels = sorted(folder.glob("*.whl"))
root = assemble_venv(wheels, VenvTarget("/opt/pkgc/venv", "3.11", "/usr/bin"), folder / "staging", workers=2, log=print)
"""


def test_a_wheel_shipping_pycache_is_installed_without_raw_warnings(tmp_path):
    """In a real process (workers in a process pool): stderr stays empty, the notes go to the log."""
    for dist in ("pkgc_pyc_one", "pkgc_pyc_two"):
        wheel_with_pycache(tmp_path, dist)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no "RuntimeWarning:", no "warnings.warn(" source line
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note from the wheel installer")]
    assert len(notes) == 4 and all("RuntimeWarning: Skip installing" in n and "__pycache__" in n for n in notes), proc.stdout
    site = tmp_path / "staging/opt/pkgc/venv/lib/python3.11/site-packages"
    assert (site / "pkgc_pyc_one/__init__.py").is_file() and not (site / "pkgc_pyc_one/__pycache__").exists()


def test_in_process_the_notes_reach_the_log_function(tmp_path, capfd):
    wheel = wheel_with_pycache(tmp_path, "pkgc_pyc_solo")
    said: list[str] = []
    assemble_venv([wheel], VenvTarget("/opt/pkgc/venv", "3.11", "/usr/bin"), tmp_path / "staging", log=said.append)
    assert len(said) == 2 and all(line.startswith("note from the wheel installer: RuntimeWarning: Skip installing") for line in said)
    assert "Warning" not in capfd.readouterr().err


def test_log_records_and_warnings_become_one_line_notes(capfd):
    notes: list[str] = []
    with caught_notes(notes):
        logging.getLogger("rattler.install").warning("clobbering %s\nfrom two packages", "lib/x.so")
        logging.getLogger("rattler.install").info("not a note")
        warnings.warn("first\nsecond line", RuntimeWarning, stacklevel=1)
    assert notes == ["rattler.install (warning): clobbering lib/x.so from two packages", "RuntimeWarning: first second line"]
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError), caught_notes(notes):  # kept when the block fails too
        warnings.warn("before failing", UserWarning, stacklevel=1)
        raise ValueError("x")
    assert notes[-1] == "UserWarning: before failing"
    assert logging.getLogger().handlers == [] or all(h.__class__.__name__ != "_Collect" for h in logging.getLogger().handlers)


def test_summary_bounds_the_lines_shown():
    notes = [f"RuntimeWarning: skip {i}" for i in range(12)] + ["RuntimeWarning: skip 0"]
    lines = summary(notes, "rattler")
    assert len(lines) == NOTE_LIMIT + 1 and lines[-1] == "note from rattler: 7 more notes like these"
    assert summary([], "rattler") == []
