"""Asset references in every form the seeds use."""

import pytest

from compiler.spec.refs import AssetRef, RefSyntaxError, looks_like_reference, parse_ref


@pytest.mark.parametrize(
    "text, expected",
    [
        ("azureml:local-multimodel:3", AssetRef("models", "local-multimodel", "3")),
        ("azureml:sklearn-regression@latest", AssetRef("models", "sklearn-regression", label="latest")),
        ("sklearn-regression:1", AssetRef("models", "sklearn-regression", "1")),
        ("sklearn-regression@latest", AssetRef("models", "sklearn-regression", label="latest")),
        (
            "azureml://registries/azureml-meta/models/Meta-Llama-3-8B-Instruct/versions/2",
            AssetRef("models", "Meta-Llama-3-8B-Instruct", "2", registry="azureml-meta"),
        ),
        (
            "azureml://registries/shared/models/m/labels/latest",
            AssetRef("models", "m", label="latest", registry="shared"),
        ),
        (
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/models/m/versions/4",
            AssetRef("models", "m", "4", workspace="ws"),
        ),
        ("models:/diabetes/2", AssetRef("models", "diabetes", "2", mlflow=True)),
        ("models:/diabetes@champion", AssetRef("models", "diabetes", label="champion", mlflow=True)),
    ],
)
def test_model_reference_forms(text, expected):
    assert parse_ref(text, "models") == expected


def test_environment_long_id():
    ref = parse_ref(
        "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/registries/org/environments/env/versions/7",
        "environments",
    )
    assert (ref.name, ref.version, ref.registry) == ("env", "7", "org")
    assert str(ref) == "azureml://registries/org/environments/env/versions/7"


@pytest.mark.parametrize("text", ["azureml:", "azureml:name", "a b:1", "azureml://registries/r/models/m"])
def test_bad_references(text):
    with pytest.raises(RefSyntaxError):
        parse_ref(text, "models")


def test_kind_mismatch_is_reported():
    with pytest.raises(RefSyntaxError, match="refers to environments"):
        parse_ref("azureml://registries/r/environments/e/versions/1", "models")


def test_paths_are_not_references():
    assert not looks_like_reference("./model")
    assert not looks_like_reference("model/sklearn.pkl")
    assert looks_like_reference("azureml:m:1")
