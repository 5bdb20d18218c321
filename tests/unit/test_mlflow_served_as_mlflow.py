"""MLflow models served as MLflow serves them (issue 17.5/17.6, 16.7), on models saved by the real
mlflow package: request params reach predict() and are checked against the signature's params schema;
the environment file decides the Python; --python-version overrides the whole environment; conda
files without channels get the default channels, untrusted model channels are refused; flavour
versions are compared with the lock; the model's serving_input_example.json is verify's request."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import pandas
import pytest
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from compiler.deps.conda_file import parse_conda_file
from compiler.deps.merge import merge
from compiler.deps.python_override import override_python
from compiler.environment.strategy import choose_strategy
from compiler.errors import ResolveError, SpecError, StrategyError
from compiler.labels import MLFLOW_SERVING_INPUT
from compiler.mlflow.deps import mlflow_depsets
from compiler.mlflow.example import example_labels, example_request
from compiler.mlflow.mlmodel import read_mlflow_model
from compiler.mlflow.versions import version_drift
from compiler.options import load_options
from compiler.resolve.types import BaseImageFacts
from tests.conftest import run_pkgc
from tests.unit.test_mlflow_scoring import answer, load_score, server_on_path  # noqa: F401 - a fixture

BASE_311 = BaseImageFacts("pkgc/base-debian-bookworm:latest", "3.11", False, "recipe")
FRAME = pandas.DataFrame({"x": [1.0, 2.5, -4.0]})
PARAMS = {"scale": 1.0, "shift": 0, "tag": "a"}


class Scaled(mlflow.pyfunc.PythonModel):
    """Answers x * scale + shift, tagged: every param changes the answer."""

    def predict(self, context, model_input, params=None):
        p = {**PARAMS, **(params or {})}
        return [f"{p['tag']}:{x * p['scale'] + p['shift']}" for x in model_input["x"]]


@pytest.fixture(scope="module")
def scaled(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "model"
    signature = infer_signature(FRAME, ["a:1.0"], params=PARAMS)
    mlflow.pyfunc.save_model(str(path), python_model=Scaled(), signature=signature,
                             input_example=(FRAME.head(2), {"scale": 2.0, "tag": "ex"}),
                             pip_requirements=["mlflow==3.17.2", "pandas"])  # fmt: skip
    return path


@pytest.fixture(scope="module")
def score(scaled, server_on_path):  # noqa: F811 - the fixture imported above
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield load_score(scaled, scaled.parent / "scoring", monkeypatch)


@pytest.fixture(scope="module")
def host(scaled):
    return mlflow.pyfunc.load_model(str(scaled))


SPLIT = {"columns": ["x"], "data": FRAME.values.tolist()}


@pytest.mark.parametrize("params", [{"scale": 3.0}, {"shift": 5, "tag": "t"}, {"scale": 2, "shift": -1}, {}])
@pytest.mark.parametrize(
    "shape",
    [
        lambda p: {"dataframe_split": SPLIT, "params": p},
        lambda p: {"dataframe_records": FRAME.to_dict(orient="records"), "params": p},
        lambda p: {"inputs": {"x": FRAME["x"].tolist()}, "params": p},
        lambda p: {"instances": FRAME.to_dict(orient="records"), "params": p},
        lambda p: {"input_data": {"columns": ["x"], "data": FRAME.values.tolist()}, "params": p},
    ],
)
def test_params_reach_predict_as_on_the_host(score, host, shape, params):
    assert answer(score, shape(params)) == (200, host.predict(FRAME, params=params))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"scale": "abc"}, "'scale'"),  # a string for a double: MLflow's own check, a 400 naming the param
        ({"shift": 1.5}, "'shift'"),  # 1.5 is not a long
        ({"tag": 3}, "'tag'"),
    ],
)
def test_a_param_of_the_wrong_type_is_a_400_naming_it(score, host, params, words):
    status, body = answer(score, {"dataframe_split": SPLIT, "params": params})
    assert status == 400 and words in body["error"]
    with pytest.raises(mlflow.exceptions.MlflowException, match=words):
        host.predict(FRAME, params=params)  # the host refuses the same params


def test_params_that_are_not_an_object_are_a_400(score):
    assert answer(score, {"dataframe_split": SPLIT, "params": [1, 2]}) == (
        400, {"error": "'params' must be a JSON object of parameter names and values"})  # fmt: skip


def test_swagger_describes_the_params(scaled):
    from compiler.mlflow.scoring import generated_files

    swagger = json.loads(generated_files(read_mlflow_model(scaled), "model")["swagger2.json"])
    params = swagger["definitions"]["ServiceInput"]["properties"]["params"]["properties"]
    assert params == {"scale": {"type": "number", "format": "double", "default": 1.0},
                      "shift": {"type": "integer", "format": "int64", "default": 0},
                      "tag": {"type": "string", "default": "a"}}  # fmt: skip


# --- the serving input example is verify's request ----------------------------------------------


def test_the_serving_input_example_answers_like_the_host(scaled, score, host):
    model = read_mlflow_model(scaled)
    labels = example_labels(model, generated_scoring=True)
    body = example_request("img", labels)
    example = json.loads((scaled / "serving_input_example.json").read_text())
    assert json.loads(body) == example and example["params"] == {"scale": 2.0, "tag": "ex"}
    expected = host.predict(FRAME.head(2), params=example["params"])
    assert answer(score, json.loads(body)) == (200, expected)
    assert example_labels(model, generated_scoring=False) == {}  # the user's own score.py may want another shape


@pytest.mark.parametrize("value", ["[1, 2]", "{nope", "x" * 40000])
def test_a_bad_example_label_is_one_line(value):
    with pytest.raises(ResolveError, match=f"image 'img': label {MLFLOW_SERVING_INPUT}="):
        example_request("img", {MLFLOW_SERVING_INPUT: value})


def test_a_large_example_is_not_carried(scaled, tmp_path):
    big = tmp_path / "big"
    shutil.copytree(scaled, big)
    (big / "serving_input_example.json").write_text(json.dumps({"dataframe_split": {"data": [[1.0]] * 9000}}))
    model = read_mlflow_model(big)
    assert model.serving_example is None and "larger than 32 KiB" in model.serving_example_note


# --- the environment file decides the Python ----------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory) -> Path:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("sk") / "model"
    mlflow.sklearn.save_model(Ridge().fit(X, y), str(path), pip_requirements=["mlflow==3.17.2", "scikit-learn==1.9.1"])
    return path


def old_form(saved: Path, target: Path, conda_python: str, mlmodel_python: str) -> Path:
    """The model as MLflow < 1.26 saved it: ``env: conda.yaml``, no python_env.yaml; the two Pythons set."""
    shutil.copytree(saved, target)
    text = (target / "MLmodel").read_text()
    text = text.replace("    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n", "    env: conda.yaml\n")
    (target / "MLmodel").write_text(text.replace("python_version: 3.11.7", f"python_version: {mlmodel_python}"))
    (target / "python_env.yaml").unlink()
    conda = (target / "conda.yaml").read_text()
    (target / "conda.yaml").write_text(conda.replace("- python=3.11.7", f"- python={conda_python}"))
    return target


def test_conda_yaml_python_wins_over_mlmodel_and_the_message_names_it(sklearn_model, tmp_path):
    model = read_mlflow_model(old_form(sklearn_model, tmp_path / "old", "3.12.4", "3.7.6"))
    merged = merge(mlflow_depsets(model, "old:1"))
    (python,) = merged.python.constraints
    assert python.specifier == "==3.12.*" and str(python.source) == "MLflow model old:1 (conda.yaml)"
    assert python.raw == "python=3.12.4"
    with pytest.raises(StrategyError, match=r"^MLflow model old:1 \(conda\.yaml\) records Python 3\.12 but base image"):
        choose_strategy(merged, BASE_311, conda_available=False)


def test_python_env_yaml_python_wins_over_mlmodel(sklearn_model, tmp_path):
    target = tmp_path / "venv"
    shutil.copytree(sklearn_model, target)
    (target / "python_env.yaml").write_text((target / "python_env.yaml").read_text().replace("python: 3.11.7", "python: 3.10.2"))
    (python,) = merge(mlflow_depsets(read_mlflow_model(target), "m:1")).python.constraints
    assert python.specifier == "==3.10.*" and str(python.source) == "MLflow model m:1 (python_env.yaml)"


def test_mlmodel_python_only_when_the_file_names_none(sklearn_model, tmp_path):
    target = old_form(sklearn_model, tmp_path / "nopy", "3.11", "3.11.7")
    (target / "conda.yaml").write_text((target / "conda.yaml").read_text().replace("- python=3.11\n", ""))
    (python,) = merge(mlflow_depsets(read_mlflow_model(target), "m:1")).python.constraints
    assert python.specifier == "==3.11.*" and str(python.source) == "MLflow model m:1 (MLmodel)"


def test_python_version_overrides_the_base_environment_too(sklearn_model, tmp_path):
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six\n")
    base = parse_conda_file(tmp_path / "conda.yaml", "conda file 'conda.yaml' of environment e:1")
    model = mlflow_depsets(read_mlflow_model(old_form(sklearn_model, tmp_path / "m", "3.12", "3.12.1")), "m:1")
    with pytest.raises(Exception, match="python"):
        merge([base, *model])  # 3.11 and 3.12: a conflict naming both files
    depsets, note = override_python([base, *model], "3.10")
    (python,) = merge(depsets).python.constraints
    assert python.raw == "python=3.10" and str(python.source) == "--python-version 3.10"
    assert "'python=3.11' from conda file 'conda.yaml' of environment e:1" in note
    assert "'python=3.12' from MLflow model m:1 (conda.yaml)" in note  # as the file writes it
    with pytest.raises(SpecError, match="--python-version: '3.1x' is not a Python version X.Y"):
        override_python(depsets, "3.1x")


# --- conda files: channels and pip pins ---------------------------------------------------------


def with_conda(saved: Path, target: Path, conda_yaml: str) -> Path:
    old_form(saved, target, "3.11", "3.11.7")
    (target / "conda.yaml").write_text(conda_yaml)
    return target


def test_a_model_channel_the_user_did_not_configure_is_refused(sklearn_model, tmp_path):
    text = ("channels:\n  - conda-forge\n  - http://evil.example/chan\ndependencies:\n  - python=3.11\n"
            "  - libgomp\n  - pip\n  - pip:\n    - scikit-learn==1.9.1\n")  # fmt: skip
    model = read_mlflow_model(with_conda(sklearn_model, tmp_path / "m", text))
    with pytest.raises(SpecError) as caught:
        mlflow_depsets(model, "m:1", trusted_channels=("conda-forge",))
    (line,) = str(caught.value).splitlines()
    assert "/m/conda.yaml:3: channels[1]:" in line and "'http://evil.example/chan' is not a channel you configured" in line
    ok = mlflow_depsets(model, "m:1", trusted_channels=("conda-forge", "http://evil.example/chan"))
    assert ok[0].channels == ("conda-forge", "http://evil.example/chan")


def test_a_per_package_channel_is_checked_too(sklearn_model, tmp_path):
    text = "dependencies:\n  - python=3.11\n  - file:///tmp/x::libgomp\n  - pip\n"
    model = read_mlflow_model(with_conda(sklearn_model, tmp_path / "m", text))
    with pytest.raises(SpecError, match=r"dependencies\[1\].*'file:///tmp/x' is not a channel you configured"):
        mlflow_depsets(model, "m:1", trusted_channels=("defaults",))


def test_channels_of_a_venv_only_model_never_reach_the_solver(sklearn_model, tmp_path):
    """MLflow writes conda-forge into every conda.yaml; with python and pip only it is never asked."""
    text = "channels: [http://evil.example]\ndependencies:\n  - python=3.11\n  - pip<=23.2.1\n  - pip:\n    - six\n"
    depsets = mlflow_depsets(read_mlflow_model(with_conda(sklearn_model, tmp_path / "m", text)), "m:1", ("defaults",))
    assert depsets[0].channels == () and merge(depsets).channels == ("defaults",)


def test_no_channels_means_the_configured_default_channels(tmp_path):
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - libgomp\n")
    depset = parse_conda_file(tmp_path / "conda.yaml", "c")
    assert merge([depset]).channels == ("defaults",)
    (tmp_path / "pkgc.toml").write_text('conda_default_channels = ["file:///srv/conda", "conda-forge"]\n')
    options = load_options(config_dir=tmp_path, environ={})
    assert options.conda_default_channels == ("file:///srv/conda", "conda-forge")
    assert merge([depset], options.conda_default_channels).channels == ("file:///srv/conda", "conda-forge")
    strategy = choose_strategy(merge([depset], options.conda_default_channels), BASE_311, conda_available=True)
    assert strategy.kind == "conda" and strategy.channels == ("file:///srv/conda", "conda-forge")


@pytest.mark.parametrize("value", ['"conda-forge"', "[]", '["ok", "bad channel"]', "[1]"])
def test_a_bad_default_channels_setting_is_one_line(tmp_path, value):
    (tmp_path / "pkgc.toml").write_text(f"slim = false\nconda_default_channels = {value}\n")
    with pytest.raises(SpecError) as caught:
        load_options(config_dir=tmp_path, environ={})
    assert str(caught.value).count("\n") == 0 and "pkgc.toml:2: conda_default_channels: must be a list" in str(caught.value)


@pytest.mark.parametrize(
    ("conda_yaml", "pip_line"),
    [
        ("dependencies:\n  - python=3.11\n  - pip<22.0\n  - pip:\n    - six\n", "pip<22.0"),
        ("dependencies:\n  - python=3.11\n  - pip>=21\n  - pip:\n    - pip<22.0\n", "pip<22.0,>=21"),
        ("dependencies:\n  - python=3.11\n  - pip:\n    - pip<22.0\n", "pip<22.0"),
    ],
)
def test_a_pip_pin_is_never_dropped(tmp_path, conda_yaml, pip_line):
    (tmp_path / "conda.yaml").write_text(conda_yaml)
    strategy = choose_strategy(merge([parse_conda_file(tmp_path / "conda.yaml", "c")]), BASE_311, conda_available=False)
    assert strategy.kind == "venv" and pip_line in strategy.pip


def test_an_unpinned_conda_pip_adds_nothing(tmp_path):
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six\n")
    strategy = choose_strategy(merge([parse_conda_file(tmp_path / "conda.yaml", "c")]), BASE_311, conda_available=False)
    assert strategy.pip == ("six",)


# --- flavour versions against the lock ----------------------------------------------------------


def test_flavor_versions_are_read_from_mlmodel(sklearn_model, scaled):
    import cloudpickle
    import sklearn

    (sk,) = read_mlflow_model(sklearn_model).flavor_versions
    assert (sk.flavor, sk.key, sk.package, sk.version) == ("sklearn", "sklearn_version", "scikit-learn", sklearn.__version__)
    (cp,) = read_mlflow_model(scaled).flavor_versions
    assert (cp.package, cp.version) == ("cloudpickle", cloudpickle.__version__)


def test_a_pickle_saved_with_another_version_is_said_at_build_time(sklearn_model):
    import sklearn

    recorded = read_mlflow_model(sklearn_model).flavor_versions
    assert version_drift(recorded, {"scikit_learn": sklearn.__version__}, "m:1") == []
    (line,) = version_drift(recorded, {"scikit-learn": "1.1.2"}, "m:1")
    assert line.startswith(f"MLflow model m:1: flavor sklearn recorded scikit-learn {sklearn.__version__} (sklearn_version), "
                           "the lock installs 1.1.2: the saved model may fail to load")  # fmt: skip
    (major,) = version_drift(recorded, {"scikit-learn": "0.24.2"}, "m:1")
    assert "(major version differs)" in major
    (missing,) = version_drift(recorded, {"numpy": "2.4.6"}, "m:1")
    assert "the lock has no scikit-learn" in missing


# --- a spec with its own environment and scoring script -----------------------------------------


def test_a_spec_with_its_own_environment_and_script_does_not_merge_the_model(sklearn_model, tmp_path):
    env = dict(os.environ, PKGC_WORKSPACE=str(tmp_path / "ws"), PKGC_CACHE_DIR=str(tmp_path / "cache"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - joblib==1.5.2\n")
    (tmp_path / "env.yml").write_text("name: own\nimage: pkgc/base-debian-bookworm:latest\nconda_file: conda.yaml\n")
    assert run_pkgc("environment", "create", "--file", str(tmp_path / "env.yml"), env=env).returncode == 0
    shutil.copytree(sklearn_model, tmp_path / "model")
    common = ("target_environment: own\nmodel: {path: model, type: mlflow_model}\n"
              "base_environment_source: {type: environment_asset, resource_id: azureml:own@latest}\n")  # fmt: skip
    (tmp_path / "both.yml").write_text(common + "inferencing_server:\n  type: azureml_online\n"
                                       "  code_configuration: {code: src, scoring_script: score.py}\n")  # fmt: skip
    (tmp_path / "env-only.yml").write_text(common + "inferencing_server: {type: azureml_online}\n")
    both = run_pkgc("-q", "build", str(tmp_path / "both.yml"), "--emit", "deps", env=env)
    assert both.returncode == 0, both.stderr
    assert "joblib==1.5.2" in both.stdout and "scikit-learn" not in both.stdout and "mlflow" not in both.stdout
    merged = run_pkgc("-q", "build", str(tmp_path / "env-only.yml"), "--emit", "deps", env=env)
    assert merged.returncode == 0, merged.stderr
    assert "scikit-learn==1.9.1" in merged.stdout and "joblib==1.5.2" in merged.stdout


def test_slim_keeps_a_pinned_pip(tmp_path):
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip<22.0\n  - pip:\n    - six\n")
    assert merge([parse_conda_file(tmp_path / "conda.yaml", "c")]).pinned_installers() == ("six", "pip")
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six\n")
    assert merge([parse_conda_file(tmp_path / "conda.yaml", "c")]).pinned_installers() == ("six",)


@pytest.mark.parametrize("channel", ["bad channel", "x\\n", "", "-c"])
def test_a_channel_that_is_no_name_or_url_is_refused_where_it_is_written(tmp_path, channel):
    (tmp_path / "conda.yaml").write_text(f"channels:\n  - {json.dumps(channel)}\ndependencies:\n  - python=3.11\n")
    with pytest.raises(SpecError, match=r"conda.yaml:2: channels\[0\]: .* is not a conda channel name or URL"):
        parse_conda_file(tmp_path / "conda.yaml", "c")


def test_python_env_yaml_dependencies_decide(sklearn_model, tmp_path):
    """The file the flavour names: its ``dependencies`` (``-r FILE`` and lines of its own), not a fixed requirements.txt."""
    target = tmp_path / "deps"
    shutil.copytree(sklearn_model, target)
    (target / "requirements.txt").unlink()
    (target / "reqs-extra.txt").write_text("mlflow==3.17.2\nscikit-learn==1.9.1\n")
    (target / "python_env.yaml").write_text("python: 3.11.7\ndependencies:\n  - -r reqs-extra.txt\n  - six==1.17.0\n")
    model_set, _ = mlflow_depsets(read_mlflow_model(target), "m:1")
    sources = {r.name: str(r.source) for r in model_set.requirements}
    assert sources["scikit-learn"] == "MLflow model m:1 (reqs-extra.txt)" and sources["six"] == "MLflow model m:1 (python_env.yaml)"
    (target / "python_env.yaml").write_text("python: 3.11.7\ndependencies:\n  - -r ../../etc/passwd\n")
    with pytest.raises(SpecError, match=r"python_env.yaml:3: dependencies\[0\]: '../../etc/passwd' leaves the model folder"):
        read_mlflow_model(target)
    (target / "python_env.yaml").write_text("python: 3.11.7\ndependencies:\n  - -c constraints.txt\n")
    with pytest.raises(SpecError, match=r"python_env.yaml: dependencies\[0\]: pip option '-c' is not supported"):
        mlflow_depsets(read_mlflow_model(target), "m:1")


def test_a_distribution_under_another_name_counts():
    from compiler.mlflow.versions import FlavorVersion

    recorded = (FlavorVersion("tensorflow", "keras_version", "tensorflow", "2.16.1"),)
    assert version_drift(recorded, {"tensorflow-cpu": "2.16.1"}, "m:1") == []
    assert "the lock installs 2.15.0" in version_drift(recorded, {"tensorflow_cpu": "2.15.0"}, "m:1")[0]
