"""Every documented command runs: the ``bash`` blocks of README.md and docs/*.md, in document order,
each in its own ``bash -e -o pipefail``, in a copy of the repository. ``pkgc`` is this tree
(installed with ``pip install -e`` into a venv layered over the test's own packages, so nothing is
downloaded), with the real engine, skopeo, podman and jq, and a loopback registry where the docs name
a remote one. ``docs_blocks.PLANS`` lists, for every block, each substitution and each block not run,
with the reason; a block without an entry fails.

Carried between blocks as a reader's shell would carry them: the working directory (the copy's root)
and ``PKGC_WORKSPACE`` (README's *Using it* exports it; the later blocks register and build in it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from tests.e2e.docs_blocks import NOT_RUN_ELSEWHERE, PLANS, ROOT, Block, blocks
from tests.e2e.registry import start_registry

pytestmark = pytest.mark.engine

BLOCKS = blocks()
TIMEOUT = 1500  # seconds for one block (run-example.sh builds two packages)
LEFT_BEHIND = {"docker": ["sklearn:1"], "podman": ["docker.io/library/sk-pkg:1"]}  # images the docs' commands create


def _copy_ignore(folder: str, names: list[str]) -> set[str]:
    """What a fresh clone does not have: caches, venvs, workspaces, locks made by earlier builds."""
    skip = {n for n in names if n in {".git", ".pkgc", "__pycache__", ".pytest_cache", ".benchmarks"} or n.startswith(".venv")}
    skip |= {n for n in names if n.endswith(".conda-lock.yml")}
    if Path(folder) == ROOT / "examples" / "mlflow-diabetes":
        skip |= {"model", "mlflow.db", "mlruns"} & set(names)
    if Path(folder) == ROOT / "bench":
        skip |= {"results"} & set(names)
    return skip


def _layered_venv(venv: Path, project: Path) -> None:
    """A venv that sees the test's own site-packages (a .pth line) and holds pkgc from ``project``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    parents = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "_pkgc_docs_parent.pth").write_text("\n".join(parents) + "\n")
    pip = venv / "bin" / "pip"
    pip.write_text(f'#!/bin/sh\nexec "{venv}/bin/python" -m pip "$@"\n')
    pip.chmod(pip.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "-e", str(project)], check=True, capture_output=True)  # fmt: skip
    # setup.sh's stamp: pkgc of this checkout and its test dependencies are installed, so the
    # run-example.sh block's setup skips `pip install -e ".[test]"` (a minute of resolving with nothing
    # to install; .ci/run's first step runs that install for real)
    digest = hashlib.sha256((project / "pyproject.toml").read_bytes()).hexdigest()
    version = subprocess.run([str(venv / "bin" / "python"), "-V"], capture_output=True, text=True, check=True).stdout.strip()
    (venv / ".pkgc-setup").write_text(f"{digest} {project} {version}\n")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, base_image) -> dict:
    top = tmp_path_factory.mktemp("docs")
    root = top / "repo"
    shutil.copytree(ROOT, root, ignore=_copy_ignore)
    _layered_venv(top / "venv", root)
    registry = start_registry(top / "registry", free_port())
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PKGC_VENV"}}
    env["PATH"] = f"{top / 'venv' / 'bin'}:{env['PATH']}"
    env["PKGC_WORKSPACE"] = str(root / ".pkgc" / "workspace")
    try:
        yield {"root": root, "env": env, "values": {"root": str(root), "registry": registry.host, "venv": str(top / "venv")}}
    finally:
        registry.stop()
        for tool, images in LEFT_BEHIND.items():
            if shutil.which(tool):
                listed = subprocess.run([tool, "images", "--format", "{{.Repository}} {{.ID}}"], capture_output=True, text=True)
                pulled = [line.split()[1] for line in listed.stdout.splitlines() if line.startswith(f"{registry.host}/")]
                subprocess.run([tool, "rmi", "-f", *images, *pulled], capture_output=True)


def _containers_on(ports: tuple[int, ...]) -> set[str]:
    found: set[str] = set()
    for port in ports:
        proc = subprocess.run(["docker", "ps", "-q", "--filter", f"publish={port}"], capture_output=True, text=True)
        found |= set(proc.stdout.split())
    return found


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.document}:{b.line}" for b in BLOCKS])
def test_documented_commands_run(block: Block, sandbox):
    plan = PLANS.get(block.key)
    assert plan is not None, f"{block.document}:{block.line}: add how it runs to tests/e2e/docs_blocks.py PLANS[{block.key!r}]"
    root, values = sandbox["root"], sandbox["values"]
    if plan.output_of:  # the block is output: compare it with what the command prints now
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", plan.output_of.format(**values)], cwd=root,
                              env=sandbox["env"], capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        missing = plan.matches(plan.script(block, **values), proc.stdout)
        assert missing == [], f"{block.document}:{block.line}: not in the output of {plan.output_of}:\n{proc.stdout}"
        return
    if plan.not_run:
        pytest.skip(f"not run: {plan.not_run}")
    for name, content in plan.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    script = plan.script(block, **values)
    env = {**sandbox["env"], **{k: v.format(**values) for k, v in plan.env.items()}}
    before = _containers_on(plan.ports)
    try:
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", f"{plan.prepare}\n{script}"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    finally:
        left = _containers_on(plan.ports) - before  # a detached package the block started
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True)
    assert proc.returncode == 0, (f"{block.document}:{block.line} exited {proc.returncode}\n--- ran\n{script}"
                                  f"\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-4000:]}")  # fmt: skip


@pytest.mark.parametrize("where", sorted(NOT_RUN_ELSEWHERE), ids=lambda w: f"{w[0]}: {w[1]}")
def test_documented_commands_not_run_here(where):
    """Listed so a CI log (-ra) names them: what is not run, and why."""
    assert where[1] in (ROOT / where[0]).read_text()
    pytest.skip(f"not run: {NOT_RUN_ELSEWHERE[where]}")
