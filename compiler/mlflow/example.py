"""The model's own smoke test: MLflow 2.12+ saves ``serving_input_example.json`` beside MLmodel (a
request in MLflow's scoring format, params included). A package whose scoring script pkgc generated
carries it in a label, and ``pkgc verify`` / ``pkgc build --verify`` POST it when given no
``--request-file``. The label is read back as untrusted input: bounded, a JSON object, or refused."""

from __future__ import annotations

import json
from collections.abc import Mapping

from compiler.errors import ResolveError, excerpt
from compiler.labels import MLFLOW_SERVING_INPUT
from compiler.mlflow.mlmodel import SERVING_EXAMPLE_MAX_BYTES, MLflowModel


def example_labels(model: MLflowModel | None, generated_scoring: bool) -> dict[str, str]:
    """The label holding the model's serving input example, when pkgc's scoring script answers it."""
    if model is None or not generated_scoring or model.serving_example is None:
        return {}
    return {MLFLOW_SERVING_INPUT: model.serving_example}


def example_request(image: str, extra: Mapping[str, str]) -> bytes | None:
    """The request body the label holds, or None when the image has none."""
    text = extra.get(MLFLOW_SERVING_INPUT)
    if text is None:
        return None
    data = text.encode("utf-8", "surrogateescape")
    try:
        if len(data) > SERVING_EXAMPLE_MAX_BYTES:
            raise ValueError(f"is larger than {SERVING_EXAMPLE_MAX_BYTES // 1024} KiB")
        if not isinstance(json.loads(data), dict):
            raise ValueError("is not a JSON object")
    except (ValueError, RecursionError) as exc:
        why = str(exc) if str(exc).startswith("is ") else "is not valid JSON"
        raise ResolveError(f"image '{excerpt(image)}': label {MLFLOW_SERVING_INPUT}={excerpt(text, 40)!r} {why}") from None
    return data
