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


# -- values that become names and paths in the image are checked at load time (issue 8) ------------
def first_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_package_spec(path)
    return err.value.lines()[0].removeprefix(str(path))


@pytest.mark.parametrize("version", ["..", ".", "../x", "a/b", "-1", "1 2", "x" * 65, "v\u00e9", '"a\\0b"'])
def test_target_environment_version_must_be_tag_and_path_safe(tmp_path, version):
    line = first_error(tmp_path, NEW_STYLE.replace("target_environment_version: 3", f"target_environment_version: {version}"))
    assert line.startswith(":5: target_environment_version: must be 1-64 letters, digits")


@pytest.mark.parametrize(
    "mount_path, why",
    [
        ("/", "must not be '/'"),
        ("models", "must be an absolute path"),
        ("/etc", "inside or above /etc"),
        ("/usr/local/models", "inside or above /usr"),
        ("/opt/pkgc/models", "inside or above /opt/pkgc"),
        ("/opt", "inside or above /opt/pkgc"),
        ("/var/lib/models", "inside the system folder /var"),
        ("/var/azureml-app", "must not be /var/azureml-app itself"),
        ("/var/azureml-app/src", "inside or above the code folder /var/azureml-app/src"),
        ("/var/azureml-app/src/model", "inside or above the code folder"),
        ("/models/../etc", "normalised"),
        ("/models/", "normalised"),
        ('"/models\\nx"', "control characters"),
        ('"/models\\0"', "control characters"),
        ("/" + "m" * 300, "path part longer than 255"),
        ("/models:ro", "must not hold ':' or ','"),
    ],
)
def test_mount_path_is_refused(tmp_path, mount_path, why):
    line = first_error(tmp_path, NEW_STYLE.replace("mode: copy\n", f"mode: copy\n    mount_path: {mount_path}\n"))
    assert line.startswith(":13: model_configuration.mount_path: ") and why in line


@pytest.mark.parametrize("mount_path", ["/var/azureml-app/models", "/models", "/mnt/models/m1", "/modèles"])
def test_mount_path_accepted(tmp_path, mount_path):
    spec = load_package_spec(write(tmp_path, NEW_STYLE.replace("mode: copy\n", f"mode: copy\n    mount_path: {mount_path}\n"))).spec
    assert spec.model_configuration.mount_path == mount_path


@pytest.mark.parametrize("key", ["name", "version"])
@pytest.mark.parametrize("value", ["../../x", "..", "a/b", "", "x" * 65])
def test_local_model_name_and_version_are_path_safe(tmp_path, key, value):
    (tmp_path / "weights.pkl").write_bytes(b"w")
    line = first_error(tmp_path, OLD_STYLE + f"model: {{path: weights.pkl, {key}: '{value}'}}\n")
    assert line.startswith(f":11: model.{key}: must be 1-64 letters, digits")


@pytest.mark.parametrize(
    "field, value, why",
    [
        ("scoring_script", "/etc/passwd", "must be a path relative to the code folder"),
        ("scoring_script", "../package.yml", "must not leave the code folder"),
        ("scoring_script", '"score.py\\0"', "control characters"),
        ("code", '"src\\n"', "control characters"),
        ("code", "/", "must not be the filesystem root"),
        ("code", "a" * 300, "path part longer than 255 bytes"),
    ],
)
def test_code_and_script_paths(tmp_path, field, value, why):
    text = NEW_STYLE.replace("code: src", f"code: {value}") if field == "code" else NEW_STYLE.replace("scoring_script: score.py", f"scoring_script: {value}")
    line = first_error(tmp_path, text)
    assert f"inferencing_server.code_configuration.{field}: " in line and why in line


def test_nul_in_a_tag_is_refused_and_everything_else_kept(tmp_path):
    line = first_error(tmp_path, OLD_STYLE + 'tags: {team: "x\\0y"}\n')
    assert line == ":11: tags.team: must not hold a NUL character (got 'x\\x00y')"
    spec = load_package_spec(write(tmp_path, OLD_STYLE + 'tags: {team: "é\\nline two $HOME \\\\"}\n')).spec
    assert spec.tags == {"team": "é\nline two $HOME \\"}


def test_an_environment_value_reaches_the_image_so_a_newline_is_refused_too(tmp_path):
    why = "must not hold a newline or NUL: it reaches the image, and no Dockerfile line can carry one"
    assert first_error(tmp_path, OLD_STYLE + 'environment_variables: {A: "x\\0y"}\n') == f":11: environment_variables.A: {why} (got 'x\\x00y')"
    assert first_error(tmp_path, OLD_STYLE + 'environment_variables: {A: "x\\ny"}\n') == f":11: environment_variables.A: {why} (got 'x\\ny')"
    spec = load_package_spec(write(tmp_path, OLD_STYLE + 'environment_variables: {A: "é\\tline two $HOME \\\\"}\n')).spec
    assert spec.environment_variables == {"A": "é\tline two $HOME \\"}


def test_quoted_values_are_cut_to_100_characters(tmp_path):
    line = first_error(tmp_path, OLD_STYLE.replace("sklearn-regression-online-pkg", "x" * 1_000_000))
    assert line.startswith(":5: target_environment_name: must be 1-64") and len(line) < 250
    assert line.endswith("xxx...')")


def test_a_date_where_text_is_expected_says_to_quote_it(tmp_path):
    line = first_error(tmp_path, NEW_STYLE.replace("target_environment_version: 3", "target_environment_version: 2024-01-02"))
    assert line == ":5: target_environment_version: Input should be a valid string (got 2024-01-02, which YAML reads as a date: quote it)"


def test_code_folder_link_loop_is_a_clear_line(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    line = first_error(tmp_path, NEW_STYLE.replace("code: src", "code: loop"))
    assert line.startswith(":9: inferencing_server.code_configuration.code: cannot follow")


def test_the_spec_accepts_no_model_place_that_pkgc_run_would_refuse():
    """The image label io.pkgc.model.dir is read back with compiler/labels.py's rule: at least as strict here."""
    from compiler import labels
    from compiler.spec.values import container_path_problem

    candidates = ["/", "/etc", "/opt", "/opt/x", "/opt/pkgc/x", "/var", "/var/x", "/var/azureml-app", "/home", "/srv",
                  "/mnt", "/tmp/x", "/lib64/x", "/models", "/mnt/m", "/var/azureml-app/m", "/m\n", "/a/../b", "/ü [x] $H",
                  "/m:ro", "/a,b", "/" + "x" * 2000]  # fmt: skip
    for path in candidates:
        if container_path_problem(path) is None:
            assert labels.container_path_problem(path) is None, path
