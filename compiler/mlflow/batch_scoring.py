"""The scoring code of an MLflow model in a batch deployment without one, as Azure ML generates it.

templates/mlflow/batch_score.py (init() loads the model with mlflow.pyfunc; run() reads CSV and
Parquet files and returns ``row, prediction, file`` rows) and the model's folder name, written once
per content under the cache (content-addressed, so the same model gives the same code tree).
"""

from __future__ import annotations

import json
from pathlib import Path

from compiler.mlflow.scoring import GeneratedCode
from compiler.resources import templates_dir
from compiler.workspace.generated import generated_folder

FOLDER = "mlflow_batch_scoring"
SCRIPT = "batch_score.py"


def batch_scoring_files(model_subdir: str) -> dict[str, bytes]:
    return {
        SCRIPT: (templates_dir() / "mlflow" / SCRIPT).read_bytes(),
        "pkgc_mlflow.json": json.dumps({"model_subdir": model_subdir}, indent=2).encode() + b"\n",
    }


def generate_batch_scoring(model_subdir: str, cache_dir: Path) -> GeneratedCode:
    """Write the scoring folder under ``cache_dir/generated/<digest>`` (once) and return it as the code."""
    folder = generated_folder(batch_scoring_files(model_subdir), cache_dir / "generated", FOLDER, prefix="batch-")
    return GeneratedCode(directory=folder, scoring_script=SCRIPT)
