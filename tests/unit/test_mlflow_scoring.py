"""The generated MLflow scoring script, run in-process on the host with real MLflow models whose
signatures mix long, double, string and boolean columns, and the real Azure ML server's AMLResponse.

Values arrive as the JSON type a client would naturally use; every request shape casts them to the
signature's types as MLflow's scoring server does, and never loses information doing so."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import pandas
import pytest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from compiler.servers.azureml_online import AZUREML_SERVER_VERSION
from compiler.mlflow.mlmodel import read_mlflow_model
from compiler.mlflow.scoring import generated_files

COLUMNS = ["n", "x", "s", "flag"]
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("long", "n"), ColSpec("double", "x"), ColSpec("string", "s"), ColSpec("boolean", "flag")])
)
REQS = ["mlflow==3.17.2", "pandas", "scikit-learn==1.9.1"]


class Echo(mlflow.pyfunc.PythonModel):
    """Answers each row as the Python values the model received, so casts are seen exactly."""

    def predict(self, context, model_input, params=None):
        return [f"{r.n!r}|{r.x!r}|{r.s!r}|{r.flag!r}" for r in model_input.itertuples()]


@pytest.fixture(scope="module")
def server_on_path(tmp_path_factory):
    """The real azureml-inference-server-http wheel on sys.path (its AMLResponse needs only flask)."""
    folder = tmp_path_factory.mktemp("server")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(folder),
         f"azureml-inference-server-http=={AZUREML_SERVER_VERSION}"],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = folder.glob("*.whl")
    sys.path.insert(0, str(wheel))
    yield
    sys.path.remove(str(wheel))
    for name in [m for m in sys.modules if m.startswith("azureml_inference_server_http")]:
        del sys.modules[name]


def load_score(model_dir: Path, folder: Path, monkeypatch):
    """score.py as pkgc generates it, beside its settings, imported and initialised like the server does."""
    folder.mkdir()
    for name, data in generated_files(read_mlflow_model(model_dir), model_dir.name).items():
        (folder / name).write_bytes(data)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir.parent))
    spec = importlib.util.spec_from_file_location(f"pkgc_score_{folder.name}", folder / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


@pytest.fixture(scope="module")
def echo(tmp_path_factory, server_on_path):
    path = tmp_path_factory.mktemp("echo") / "model"
    mlflow.pyfunc.save_model(str(path), python_model=Echo(), signature=SIGNATURE, pip_requirements=REQS)
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield load_score(path, path.parent / "scoring", monkeypatch)


def shapes(rows: list[list]) -> dict[str, object]:
    """One request in each accepted shape."""
    records = [dict(zip(COLUMNS, row)) for row in rows]
    return {
        "input_data": {"input_data": {"columns": COLUMNS, "index": list(range(len(rows))), "data": rows}},
        "list of rows": rows,
        "list of records": records,
        "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": rows}},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: [row[i] for row in rows] for i, c in enumerate(COLUMNS)}},
    }


def answer(score, payload) -> tuple[int, object]:
    out = score.run(json.dumps(payload))
    if hasattr(out, "status_code"):  # an AMLResponse: the errors
        return out.status_code, json.loads(out.get_data())
    return 200, out["predictions"] if isinstance(out, dict) else out


@pytest.mark.parametrize(
    ("rows", "seen"),
    [
        ([[1, 1.5, "a", True]], ["1|1.5|'a'|True"]),
        ([[1, 1.5, 7, True]], ["1|1.5|'7'|True"]),  # a number for a string column
        ([["2", "1.5", "a", True]], ["2|1.5|'a'|True"]),  # numbers sent as strings
        ([[3.0, 2, "a", True]], ["3|2.0|'a'|True"]),  # a whole float for a long, an int for a double
        ([[1, 1.5, "a", 0], [1, 1.5, "a", 1]], ["1|1.5|'a'|False", "1|1.5|'a'|True"]),
        ([[1, 1.5, "a", "true"], [1, 1.5, "a", "False"]], ["1|1.5|'a'|True", "1|1.5|'a'|False"]),
        ([[1, None, "a", True]], ["1|nan|'a'|True"]),  # null in a double is NaN, as in MLflow
    ],
)
def test_every_shape_casts_json_values_to_the_signature(echo, rows, seen):
    for shape, payload in shapes(rows).items():
        assert answer(echo, payload) == (200, seen), shape


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([[1, "abc", "a", True]], "column 'x' expects double: \"abc\" (row 0) is not a number"),
        ([[1, 1.5, "a", True], [1.5, 1.5, "a", True]], "column 'n' expects long: 1.5 (row 1) is not a whole number"),
        ([[2**63, 1.5, "a", True]], f"column 'n' expects long: {2**63} (row 0) is out of the long range"),
        ([[1, 1.5, "a", "yes"]], "column 'flag' expects boolean: \"yes\" (row 0) is not a boolean (true/false, 0/1)"),
        ([[1, 1.5, "a", 2]], "column 'flag' expects boolean: 2 (row 0) is not a boolean (true/false, 0/1)"),
        ([[1, 1.5, {"k": 1}, True]], "column 's' expects string: {\"k\": 1} (row 0) is not a string"),
        ([[None, 1.5, "a", True]], "column 'n' expects long: null (row 0) for a required column"),
    ],
)
def test_a_value_that_cannot_be_converted_is_a_400_naming_it(echo, rows, error):
    for shape, payload in shapes(rows).items():
        assert answer(echo, payload) == (400, {"error": error}), shape


def test_azure_index_labels_name_the_row(echo):
    payload = {"input_data": {"columns": COLUMNS, "index": ["first", "second"], "data": [[1, 1.5, "a", 1], [1, "x", "a", 1]]}}
    assert answer(echo, payload) == (400, {"error": "column 'x' expects double: \"x\" (row second) is not a number"})


def test_signature_enforcement_still_reports_missing_columns_and_bad_shapes(echo):
    status, body = answer(echo, {"input_data": {"columns": ["n", "x"], "data": [[1, 1.5]]}})
    assert status == 400 and "s" in body["error"] and "flag" in body["error"]
    status, body = answer(echo, {"dataframe_split": {"columns": COLUMNS, "data": [[1, 1.5, "a", True]]}, "inputs": {}})
    assert (status, body) == (400, {"error": "use exactly one of dataframe_split, dataframe_records, instances, inputs; the request has dataframe_split, inputs"})
    assert answer(echo, {"dataframe_split": [[1]]})[0] == 400
    assert answer(echo, "not a request")[0] == 400


def test_a_classifier_with_a_string_column_scores_a_numeric_request_like_the_host(tmp_path, server_on_path, monkeypatch):
    """The issue's case: a category typed as a string column, sent by the client as a number."""
    train = pandas.DataFrame(
        {"n": [1, 5, 2, 8, 3, 9], "x": [0.1, 2.5, 0.3, 3.1, 0.2, 2.9], "s": ["1", "2", "1", "2", "3", "2"],
         "flag": [True, False, True, False, True, False]}
    )  # fmt: skip
    labels = [0, 1, 0, 1, 0, 1]
    encode = ColumnTransformer([("s", OneHotEncoder(handle_unknown="ignore"), ["s"])], remainder="passthrough")
    classifier = make_pipeline(encode, LogisticRegression()).fit(train, labels)
    path = tmp_path / "classifier"
    mlflow.sklearn.save_model(classifier, str(path), signature=SIGNATURE, pip_requirements=REQS)
    score = load_score(path, tmp_path / "scoring", monkeypatch)
    request = {"input_data": {"columns": COLUMNS, "index": [0, 1], "data": [[2, 0.3, 1, 1], [7, 3.0, 2, 0]]}}
    expected = classifier.predict(
        pandas.DataFrame({"n": [2, 7], "x": [0.3, 3.0], "s": ["1", "2"], "flag": [True, False]})
    ).tolist()
    assert answer(score, request) == (200, expected)
    assert answer(score, {"dataframe_records": [dict(zip(COLUMNS, [7, "3.0", 2, "false"]))]}) == (200, expected[1:])
