"""Spec stage: both key spellings, defaults, and errors naming file, key and line."""

from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.spec import load_package_spec
from compiler.spec.model import ModelMode


def write(tmp_path: Path, text: str, code: bool = True) -> Path:
    if code:
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / "score.py").write_text("def init(): pass\ndef run(x): return x\n")
    path = tmp_path / "package.yml"
    path.write_text(text)
    return path


OLD_STYLE = """\
$schema: http://azureml/sdk-2-0/ModelVersionPackage.json
base_environment_source:
    type: environment_asset
    resource_id: azureml:sklearn-regression-env@latest
target_environment_name: sklearn-regression-online-pkg
inferencing_server:
    type: azureml_online
    code_configuration:
      code: src
      entry_script: score.py
"""

NEW_STYLE = """\
base_environment_source:
    type: environment_asset
    resource_id: azureml:sklearn-regression-env:1
target_environment: sklearn-regression-online-pkg
target_environment_version: 3
inferencing_server:
    type: azureml_online
    code_configuration:
      code: src
      scoring_script: score.py
model_configuration:
    mode: copy
tags: {team: ml, build: 7}
environment_variables: {WORKER_COUNT: 2}
"""


def test_old_spelling_is_read_with_defaults(tmp_path):
    spec = load_package_spec(write(tmp_path, OLD_STYLE)).spec
    assert spec.target_environment == "sklearn-regression-online-pkg"
    assert spec.code_configuration.scoring_script == "score.py"
    assert spec.mode is ModelMode.READONLY_MOUNT
    assert spec.schema_ == "http://azureml/sdk-2-0/ModelVersionPackage.json"


def test_new_spelling_and_extra_attributes(tmp_path):
    spec = load_package_spec(write(tmp_path, NEW_STYLE)).spec
    assert spec.target_environment_version == "3"
    assert spec.mode is ModelMode.COPY
    assert spec.tags == {"team": "ml", "build": "7"}
    assert spec.environment_variables == {"WORKER_COUNT": "2"}


def test_download_mode_behaves_as_readonly_mount(tmp_path):
    spec = load_package_spec(write(tmp_path, OLD_STYLE + "model_configuration:\n  mode: download\n")).spec
    assert spec.mode is ModelMode.READONLY_MOUNT


def test_both_spellings_at_once_is_an_error(tmp_path):
    path = write(tmp_path, OLD_STYLE + "target_environment: other\n")
    with pytest.raises(SpecError) as err:
        load_package_spec(path)
    assert err.value.lines() == [f"{path}:5: target_environment_name: give either 'target_environment_name' or 'target_environment', not both"]


@pytest.mark.parametrize(
    "extra, key, line, words",
    [
        ("colour: blue\n", "colour", 11, "unknown key"),
        ("model_configuration:\n  mode: mirror\n", "model_configuration.mode", 12, "'readonly_mount', 'copy' or 'download'"),
        ("tags: [a, b]\n", "tags", 11, "dictionary"),
        ("environment_variables: {'1BAD': x}\n", "environment_variables", 11, "not a valid environment variable"),
    ],
)
def test_errors_name_file_key_and_line(tmp_path, extra, key, line, words):
    path = write(tmp_path, OLD_STYLE + extra)
    with pytest.raises(SpecError) as err:
        load_package_spec(path)
    (message,) = err.value.lines()
    assert message.startswith(f"{path}:{line}: {key}:")
    assert words in message


def test_all_problems_are_reported_together(tmp_path):
    path = write(tmp_path, "inferencing_server:\n  type: azureml_online\n  colour: 1\nfoo: 2\n")
    with pytest.raises(SpecError) as err:
        load_package_spec(path)
    text = "\n".join(err.value.lines())
    assert "target_environment: required key is missing" in text
    assert "inferencing_server.colour: unknown key" in text
    assert "foo: unknown key" in text


def test_missing_scoring_script(tmp_path):
    path = write(tmp_path, OLD_STYLE.replace("entry_script: score.py", "entry_script: nope.py"))
    with pytest.raises(SpecError) as err:
        load_package_spec(path)
    assert "inferencing_server.code_configuration.scoring_script: scoring script 'nope.py' not found" in str(err.value)
    assert f"{path}:10:" in str(err.value)


def test_duplicate_keys_are_refused(tmp_path):
    path = write(tmp_path, OLD_STYLE + "target_environment_name: again\n")
    with pytest.raises(SpecError, match="duplicate key 'target_environment_name'"):
        load_package_spec(path)


def test_custom_server_and_no_code(tmp_path):
    text = """target_environment: tfs
base_environment_source: {type: environment_asset, resource_id: "azureml:tfs:1"}
inferencing_server:
  type: custom
  inference_configuration:
    scoring_route: {port: 8501, path: /v1/models/m:predict}
    liveness_route: {port: 8501, path: /v1/models/m}
"""
    spec = load_package_spec(write(tmp_path, text, code=False)).spec
    assert spec.inferencing_server.type == "custom"
    assert spec.inferencing_server.inference_configuration.scoring_route.port == 8501
