"""Environment variables pkgc sets (AZUREML_MODEL_DIR, PKGC_MODEL_MODE, ...) cannot be set by a spec, a
deployment YAML or a custom server's configuration: refused at load time in one line naming the
file, the key and its line, before any resolve or lock work."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.spec import load_package_spec
from compiler.spec.reserved_env import RESERVED_NAMES, reserved_env_problem
from tests.conftest import run_pkgc

PACKAGE = """target_environment: t
inferencing_server:
  type: azureml_online
  code_configuration:
    code: src
    scoring_script: score.py
model:
  path: model
environment_variables:
  FOO: bar
  {name}: /somewhere
"""

CUSTOM = """target_environment: t
inferencing_server:
  type: custom
  inference_configuration:
    entry_script: mlserver start .
    configuration:
      MLSERVER_HTTP_PORT: "8080"
      {name}: x
model:
  path: model
"""

DEPLOYMENT = """$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
endpoint_name: my-endpoint
model:
  path: model
code_configuration:
  code: src
  scoring_script: score.py
environment:
  image: pkgc/base-debian-bookworm:latest
environment_variables:
  {name}: x
instance_type: Standard_DS3_v2
"""

PLANNER_SETS = ("AZUREML_MODEL_DIR", "PKGC_MODEL_MODE", "PKGC_MODEL_REF", "PKGC_SERVER", "PKGC_PORT",
                "AZUREML_ENTRY_SCRIPT", "AML_APP_ROOT", "PKGC_INPUT_PATHS", "PATH")  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
    path = tmp_path / "spec.yml"
    path.write_text(text)
    return path


def test_every_variable_the_planner_sets_is_reserved():
    for name in PLANNER_SETS:
        assert reserved_env_problem(name), name
    for name in ("FOO", "AZUREML_EXTRA", "SCORING_TIMEOUT_MS", "WORKER_COUNT", "PYTHONPATH", "MLSERVER_HTTP_PORT", "pkgc_mine", "Path"):
        assert reserved_env_problem(name) is None, name


@pytest.mark.parametrize("server", ["azureml_online", "azureml_batch", "triton", "custom"])
@pytest.mark.parametrize("mode", ["readonly_mount", "copy"])
def test_every_variable_a_real_plan_sets_is_reserved(tmp_path, server, mode):
    """Plan a package (no I/O): each variable pkgc itself puts in the image is a reserved name, so no
    spec can replace it; what remains are the spec's own variables and plain defaults."""
    from compiler.spec.model import ModelMode
    from tests.golden.test_golden import SERVERS, make_plan

    chosen = SERVERS[server]
    plan = make_plan(tmp_path, ModelMode(mode), {"MY_SETTING": "1"}, chosen)
    own = {key for key in plan.config.env if key not in ("MY_SETTING", "PYTHONUNBUFFERED") and key not in dict(chosen.environment)}
    assert own and all(reserved_env_problem(key) for key in own), own
    assert "AZUREML_MODEL_DIR" in own and "PKGC_MODEL_MODE" in own


@pytest.mark.parametrize("template, line, key", [(PACKAGE, 11, "environment_variables"),
                                                 (CUSTOM, 8, "inferencing_server.inference_configuration.configuration"),
                                                 (DEPLOYMENT, 12, "environment_variables")])  # fmt: skip
@pytest.mark.parametrize("name", ["AZUREML_MODEL_DIR", "PKGC_MODEL_MODE", "PATH"])
def test_a_reserved_name_is_refused_with_file_key_and_line(tmp_path, template, line, key, name):
    path = _write(tmp_path, template.format(name=name))
    with pytest.raises(SpecError) as raised:
        load_package_spec(path)
    problems = raised.value.problems
    assert len(problems) == 1 and problems[0].line == line and problems[0].key == f"{key}.{name}", problems
    assert "is set by pkgc" in problems[0].message


def test_the_cli_says_it_in_one_line_before_any_work(tmp_path):
    path = _write(tmp_path, PACKAGE.format(name="PKGC_MODEL_MODE"))
    proc = run_pkgc("--workspace", str(tmp_path / "ws"), "build", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}:11: environment_variables.PKGC_MODEL_MODE: is set by pkgc" in lines[0], lines
    assert not (tmp_path / "ws").exists() and not (tmp_path / "spec.conda-lock.yml").exists()


def test_the_readme_lists_the_reserved_names():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in RESERVED_NAMES:
        assert f"`{name}`" in readme
    assert "`PKGC_*`" in readme
