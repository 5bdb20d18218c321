"""MLflow model reading and dependency inference, on models saved by the real mlflow package."""

from __future__ import annotations

import mlflow.sklearn
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from compiler.deps.merge import merge
from compiler.deps.python_override import override_python
from compiler.environment.strategy import choose_strategy
from compiler.errors import StrategyError
from compiler.mlflow.deps import mlflow_depsets
from compiler.mlflow.mlmodel import read_mlflow_model
from compiler.mlflow.scoring import generated_files
from compiler.resolve.types import BaseImageFacts


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("m") / "model"
    reqs = ["mlflow==3.17.2", "scikit-learn==1.9.1", "six==1.17.0"]
    mlflow.sklearn.save_model(Ridge().fit(X, y), str(path), pip_requirements=reqs, input_example=X.head(2))
    return path


def test_two_file_form_is_read(saved):
    model = read_mlflow_model(saved)
    assert model.virtualenv_env.name == "python_env.yaml" and model.conda_env.name == "conda.yaml"
    assert model.python_minor == "3.11" and model.loader_module == "mlflow.sklearn"


def test_requirements_become_a_source_with_mlflow_skinny(saved):
    model_set, serving = mlflow_depsets(read_mlflow_model(saved), "m:1")
    names = {r.name: r for r in model_set.requirements}
    assert set(names) >= {"mlflow-skinny", "scikit-learn", "six", "python"}
    assert "mlflow" not in names
    assert names["python"].specifier == "==3.11.*" and names["python"].source.kind == "mlflow_model"
    assert str(names["six"].source) == "MLflow model m:1 (requirements.txt)"
    assert {r.name for r in serving.requirements} == {"pandas", "numpy"}


def test_old_single_file_env_form(saved, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(saved, old)
    text = (old / "MLmodel").read_text()
    text = text.replace("    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n", "    env: conda.yaml\n")
    (old / "MLmodel").write_text(text)
    (old / "python_env.yaml").unlink()
    model = read_mlflow_model(old)
    assert model.virtualenv_env is None and model.conda_env == old / "conda.yaml"
    model_set, _ = mlflow_depsets(model, "old:1")
    assert {"six", "scikit-learn", "python"} <= {r.name for r in model_set.requirements}


def test_python_mismatch_with_base_image_stops_with_a_hint(saved):
    merged = merge(mlflow_depsets(read_mlflow_model(saved), "m:1"))
    facts = BaseImageFacts("python:3.12-slim", "3.12", False, "recipe")
    with pytest.raises(StrategyError, match=r"MLflow model m:1 \(python_env\.yaml\) records Python 3\.11 but base image python:3\.12-slim provides Python 3\.12.*--python-version 3\.12"):
        choose_strategy(merged, facts, conda_available=True)
    depsets, note = override_python(mlflow_depsets(read_mlflow_model(saved), "m:1"), "3.12")
    assert note == ("--python-version 3.12 overrides the environment's Python: 'python: 3.11.7' from MLflow model m:1 "
                    "(python_env.yaml); check that the model and code run on Python 3.12")  # fmt: skip
    assert choose_strategy(merge(depsets), facts, conda_available=True).kind == "venv"


def test_generated_scoring_is_deterministic(saved):
    model = read_mlflow_model(saved)
    assert generated_files(model, "model") == generated_files(model, "model")
    assert b'"model_subdir": "model"' in generated_files(model, "model")["pkgc_mlflow.json"]


@pytest.mark.parametrize(
    "mlmodel, extra, words",
    [
        ("    env:\n      conda: ../../../etc/passwd\n", {}, "env.conda: '../../../etc/passwd' leaves the model folder"),
        ("    env: /etc/hostname\n", {}, "leaves the model folder"),
        ("    env: [1, 2]\n", {}, "must be a file name or a mapping"),
        ("    python_version: '3.11; rm -rf /'\n", {}, "is not a Python version"),
        ("    env: {virtualenv: python_env.yaml}\n", {"python_env.yaml": b"python: [3]\n"}, "is not a Python version"),
        ("    env: {virtualenv: python_env.yaml}\n", {"python_env.yaml": b"python: 3.11.7\n", "requirements.txt": b"\xff\xfe\x00"}, "requirements.txt"),
    ],
)
def test_hostile_mlflow_models_are_one_clear_line(tmp_path, mlmodel, extra, words):
    """A model folder is untrusted input: what its MLmodel names stays inside it and is checked."""
    from compiler.errors import SpecError

    (tmp_path / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n" + mlmodel)
    for name, data in extra.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(SpecError) as caught:
        model = read_mlflow_model(tmp_path)
        mlflow_depsets(model, "m:1")
    assert words in str(caught.value)
