"""The CLI's output contract: every ``--json`` the README's command table lists is accepted (and
prints JSON), and output into a pipe whose reader went away (``pkgc schema | head -1``) ends quietly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from compiler.cli import build_parser
from tests.conftest import EXAMPLE, ROOT, run_pkgc


def _subparsers(parser) -> dict:
    for action in parser._actions:  # argparse keeps its sub-commands here
        if action.__class__.__name__ == "_SubParsersAction":
            return action.choices
    return {}


def readme_json_commands() -> list[tuple[str, ...]]:
    """Every command path (``("model", "show")``) the README's command table says takes ``--json``."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("### Commands") :]
    table = table[: table.index("\n\n", table.index("|---|"))]
    top = _subparsers(build_parser())
    found: list[tuple[str, ...]] = []
    for row in table.splitlines()[2:]:
        cell = re.split(r"(?<!\\)\|", row)[1]
        each = "(each `[--json]`)" in cell
        for segment in re.findall(r"`(pkgc [^`]*)`", cell):
            words = segment.split()
            if words[1] not in top or not (each or "--json" in segment):
                continue
            verbs = _subparsers(top[words[1]])
            if not verbs:
                found.append((words[1],))
                continue
            named = [words[2]] + re.findall(r"\\\|([a-z-]+)", segment)
            found += [(words[1], verb) for verb in named if verb in verbs]
    return found


def test_the_readme_lists_json_for_the_commands_it_should():
    listed = readme_json_commands()
    for path in [("build",), ("lock",), ("model", "show"), ("model", "list"), ("environment", "show"), ("invoke",),
                 ("verify",), ("attestations", "verify"), ("base-image", "build"), ("model", "package"), ("run",)]:  # fmt: skip
        assert path in listed, path


@pytest.mark.parametrize("path", readme_json_commands(), ids="-".join)
def test_every_json_flag_the_readme_lists_is_accepted(path):
    parser = build_parser()
    for word in path:
        parser = _subparsers(parser)[word]
    assert any("--json" in action.option_strings for action in parser._actions), f"pkgc {' '.join(path)} refuses --json"


def test_model_and_environment_show_print_json(tmp_path, monkeypatch):
    monkeypatch.setenv("PKGC_WORKSPACE", str(tmp_path / "ws"))
    model = EXAMPLE / "model" / "sklearn_regression_model.pkl"
    assert run_pkgc("model", "create", "-n", "m", "-p", str(model)).returncode == 0
    env = run_pkgc("environment", "create", "-n", "e", "--image", "pkgc/base-debian-bookworm:latest", "--json")
    assert env.returncode == 0, env.stderr
    assert json.loads(env.stdout)["name"] == "e"
    for asset in ("model", "environment"):
        listed = run_pkgc(asset, "list", "--json")
        assert listed.returncode == 0 and [r["name"] for r in json.loads(listed.stdout)] == [asset[0]]
    for asset, ref in (("model", "m:1"), ("environment", "e:1")):
        with_flag, without = run_pkgc(asset, "show", ref, "--json"), run_pkgc(asset, "show", ref)
        assert with_flag.returncode == 0 and with_flag.stdout == without.stdout, with_flag.stderr
        record = json.loads(with_flag.stdout)
        assert record["name"] == ref.split(":")[0] and record["version"] == "1"


def _closed_reader(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run pkgc with a stdout whose reader closed before pkgc writes (what ``| head -1`` does early)."""
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", *args], stdout=write, stderr=subprocess.PIPE,
                          env=env, text=True, timeout=120, check=False)  # fmt: skip
    os.close(write)
    return proc


@pytest.mark.parametrize("args", [["schema"], ["schema", "deployment"], ["model", "list"], ["model", "list", "--json"],
                                  ["model", "show", "m:1"], ["--help"], ["build", "--help"]])  # fmt: skip
def test_output_into_a_closed_pipe_ends_quietly(tmp_path, args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PKGC_WORKSPACE": str(tmp_path / "ws")}
    model = EXAMPLE / "model" / "sklearn_regression_model.pkl"
    created = subprocess.run([sys.executable, "-m", "compiler.cli", "model", "create", "-n", "m", "-p", str(model)],
                             env=env, capture_output=True, check=False)  # fmt: skip
    assert created.returncode == 0
    proc = _closed_reader(args, env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_head_reads_the_first_line_and_pkgc_exits_zero(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PKGC_WORKSPACE": str(tmp_path / "ws")}
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} -m compiler.cli schema | head -1"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "{\n" and proc.stderr == "", proc.stderr


def test_a_broken_pipe_that_is_not_stdout_is_still_an_internal_error(tmp_path):
    """A BrokenPipeError from elsewhere (a socket, a subprocess) while stdout is fine is not hidden."""
    script = ("import sys\nfrom compiler import cli\nfrom compiler.commands import assets\n"
              "def boom(args, options, reporter):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
              "assets.schema = boom\nsys.exit(cli.main(['schema']))\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PKGC_WORKSPACE": str(tmp_path / "ws")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "internal error: BrokenPipeError" in proc.stderr
