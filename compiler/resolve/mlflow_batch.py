"""The scoring code of an MLflow model in a batch deployment without one, as Azure ML generates it.

templates/mlflow/batch_score.py (init() loads the model with mlflow.pyfunc; run() reads CSV and
Parquet files and returns ``row, prediction, file`` rows) and the model's folder name, written once
per content under the cache (content-addressed, so the same model gives the same code tree).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from compiler.resolve.types import ResolvedCode
from compiler.resources import templates_dir

FOLDER = "mlflow_batch_scoring"
SCRIPT = "batch_score.py"


def batch_scoring_files(model_subdir: str) -> dict[str, bytes]:
    return {
        SCRIPT: (templates_dir() / "mlflow" / SCRIPT).read_bytes(),
        "pkgc_mlflow.json": json.dumps({"model_subdir": model_subdir}, indent=2).encode() + b"\n",
    }


def generate_batch_scoring(model_subdir: str, cache_dir: Path) -> ResolvedCode:
    """Write the scoring folder under ``cache_dir/generated/<digest>`` (once) and return it as the code."""
    files = batch_scoring_files(model_subdir)
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data + b"\0" for name, data in sorted(files.items())))
    final = cache_dir / "generated" / f"batch-{digest.hexdigest()[:32]}"
    if not final.exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final.parent))
        (staging / FOLDER).mkdir()
        for name, data in files.items():
            (staging / FOLDER / name).write_bytes(data)
        try:
            os.rename(staging, final)
        except OSError:  # another build wrote the same content first
            shutil.rmtree(staging, ignore_errors=True)
    return ResolvedCode(directory=final / FOLDER, scoring_script=SCRIPT)
