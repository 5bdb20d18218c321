"""Train the MLflow example: a scikit-learn Ridge regression on the bundled diabetes data, saved
with MLflow (signature and pinned requirements) and, when MLFLOW_TRACKING_URI is set, registered
in that model registry as 'diabetes' with the alias 'champion'.

Usage: python train.py [OUTPUT_FOLDER]     (default: ./model)
"""

import os
import sys
from pathlib import Path

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

REQUIREMENTS = [
    "mlflow==3.17.2",
    "scikit-learn==1.9.1",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "scipy==1.17.1",
    "skops==0.16.0",
]


def train(output: Path) -> Path:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.5).fit(X, y)
    signature = infer_signature(X, model.predict(X))
    mlflow.sklearn.save_model(model, str(output), signature=signature, pip_requirements=REQUIREMENTS)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", signature=signature, pip_requirements=REQUIREMENTS,
                registered_model_name="diabetes",
            )
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("diabetes", "champion", info.registered_model_version)
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "model"
    print(train(target))
