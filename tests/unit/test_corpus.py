"""The corpus of broken specs (package.yml, or deployment.yml for online-deployment YAMLs): each gets its
one-line error naming file, key and line, exit 2, no traceback, and nothing written to the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_pkgc

CORPUS = ROOT / "tests" / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory) -> dict:
    import os

    env = dict(os.environ)
    env["PKGC_WORKSPACE"] = str(tmp_path_factory.mktemp("corpus") / "workspace")
    shared = CORPUS / "_shared"
    assert run_pkgc("model", "create", "--name", "m", "--path", str(shared / "src" / "score.py"), env=env).returncode == 0
    for name in ("env-ok.yml", "env-conflict.yml"):
        proc = run_pkgc("environment", "create", "--file", str(shared / "env" / name), env=env)
        assert proc.returncode == 0, proc.stderr
    env["_BASELINE"] = repr(_written(Path(env["PKGC_WORKSPACE"])))
    return env


def _written(workspace: Path) -> tuple:
    """What the workspace holds: environment names, model names and stored trees."""
    return tuple(sorted(str(p.relative_to(workspace)) for kind in ("environments", "models", "trees")
                        if (workspace / kind).is_dir() for p in (workspace / kind).iterdir()))  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_broken_spec_gets_one_clear_line(case, corpus_env):
    folder = CORPUS / case
    expected = (folder / "expected.txt").read_text().strip()
    spec = "deployment.yml" if (folder / "deployment.yml").is_file() else "package.yml"
    proc = run_pkgc("build", str(folder / spec), env=corpus_env)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
    assert len(lines) == 1, proc.stderr
    if expected.startswith(spec):
        expected = str(folder / spec) + expected.removeprefix(spec)
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert repr(_written(Path(corpus_env["PKGC_WORKSPACE"]))) == corpus_env["_BASELINE"]
    assert not list(folder.glob("*.conda-lock.yml"))
