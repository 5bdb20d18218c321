"""The generated corpus of malformed specs (tests/fuzz/malformed.py): every case ends with exit 0 or 2,
at most 5 short lines, never "internal error" or a traceback, in under 2 s, and writes nothing to the
workspace. In-process for all cases, through the real command line for a sample, and with a full
``pkgc build`` (no --emit) for a sample whose resolution fails before any engine work."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import run_pkgc
from tests.fuzz.malformed import Case, cases

CASES = cases()
FAMILIES = sorted({c.id.split("/")[0] for c in CASES})
SAMPLE = CASES[::75]  # ~10 cases across every family, through the real command line
FULL_BUILD_SAMPLE = [c for c in CASES if c.expect != "ok" and not c.id.startswith(("config/", "file/"))][::25]


def check_answer(case: Case, code: int, stdout: str, stderr: str, seconds: float) -> None:
    where = f"case {case.id}: exit {code}, stderr:\n{stderr[:2000]}"
    assert code in (0, 2), where
    assert "internal error" not in stderr and "Traceback" not in stderr, where
    lines = stderr.splitlines()
    assert len(lines) <= 5, where
    assert all(len(line) <= 300 for line in lines), where
    assert seconds < 2.0, f"case {case.id} took {seconds:.2f} s"
    if case.expect == "error":
        assert code == 2, where
        assert stdout == "", where
        assert all(line.startswith("pkgc: error: ") for line in lines), where
        if case.mentions:
            assert case.mentions in stderr, where
    elif case.expect == "ok":
        assert code == 0 and stderr == "", where


@pytest.fixture
def case_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("c", numbered=True)


def _run_in_process(case: Case, folder: Path, capsys) -> str | None:
    """Run one case with ``--emit spec``; return what is wrong with its answer, or None."""
    spec = case.write(folder)
    workspace = folder / "ws"
    start = time.process_time()  # CPU seconds: the work a case costs, whatever else the machine runs
    code = main(["--workspace", str(workspace), "build", str(spec), "--emit", "spec"])
    seconds = time.process_time() - start
    out, err = capsys.readouterr()
    try:
        check_answer(case, code, out, err, seconds)
        assert not workspace.exists(), f"case {case.id} wrote to the workspace"
    except AssertionError as exc:
        return str(exc).splitlines()[0] + " | " + err.strip()[:300]
    return None


@pytest.mark.parametrize("family", FAMILIES)
def test_malformed_specs_in_process(family, tmp_path, capsys):
    """Every case of one family (one test per family keeps the few hundred cases fast); all failures are listed."""
    family_cases = [c for c in CASES if c.id.split("/")[0] == family]
    failures = [f for i, case in enumerate(family_cases) if (f := _run_in_process(case, tmp_path / str(i), capsys))]
    assert not failures, f"{len(failures)} of {len(family_cases)} cases failed:\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def startup_seconds(tmp_path_factory) -> float:
    """What starting the command line takes here (a valid spec, --emit spec), not counted in a case's 2 s."""
    spec = CASES[0].write(tmp_path_factory.mktemp("startup"))
    assert CASES[0].id == "valid/new-spelling"
    start = time.monotonic()
    assert run_pkgc("build", str(spec), "--emit", "spec").returncode == 0
    return time.monotonic() - start


@pytest.mark.parametrize("case", SAMPLE, ids=[c.id for c in SAMPLE])
def test_malformed_spec_through_the_command_line(case, case_dir, startup_seconds):
    spec = case.write(case_dir)
    env = dict(os.environ, PKGC_WORKSPACE=str(case_dir / "ws"))
    start = time.monotonic()
    proc = run_pkgc("build", str(spec), "--emit", "spec", env=env)
    seconds = time.monotonic() - start
    # starting Python is not the case's work, and on a loaded machine it varies: allow it twice over
    check_answer(case, proc.returncode, proc.stdout, proc.stderr, seconds - 2 * startup_seconds)
    assert not (case_dir / "ws").exists()


@pytest.fixture(scope="module")
def model_only_workspace(tmp_path_factory) -> Path:
    """A workspace holding the model the specs name (fuzz-model:1) but not their base environment."""
    root = tmp_path_factory.mktemp("fullws") / "ws"
    source = root.parent / "model.pkl"
    source.write_bytes(b"model bytes")
    assert main(["--workspace", str(root), "-q", "model", "create", "--name", "fuzz-model", "--path", str(source)]) == 0
    return root


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "trees" not in p.relative_to(root).parts}


@pytest.mark.parametrize("case", FULL_BUILD_SAMPLE, ids=[c.id for c in FULL_BUILD_SAMPLE])
def test_full_build_of_a_malformed_spec_stops_before_the_engine(case, case_dir, model_only_workspace, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/pkgc-no-engine.sock")  # reaching the engine would be exit 5
    spec = case.write(case_dir)
    before = _listing(model_only_workspace)
    start = time.monotonic()
    code = main(["--workspace", str(model_only_workspace), "build", str(spec)])
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    check_answer(case, code, out, err.replace("pkgc resolving package.yml\n", ""), seconds)
    assert code == 2, f"case {case.id}: exit {code}\n{err}"
    assert _listing(model_only_workspace) == before, f"case {case.id} left records behind"


def test_the_corpus_is_large_and_covers_every_family():
    assert len(CASES) >= 300
    assert set(FAMILIES) >= {"type", "unicode", "huge", "bomb", "path", "name", "encoding", "key", "tag", "config", "file"}
    assert len(SAMPLE) >= 8 and len(FULL_BUILD_SAMPLE) >= 10
