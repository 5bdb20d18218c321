"""Generate the scoring code folder of an MLflow package: score.py, its settings, and swagger
documents whose input schema reflects the model signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from compiler.mlflow.mlmodel import MLflowModel
from compiler.resources import templates_dir
from compiler.workspace.generated import generated_folder

FOLDER = "mlflow_scoring"
_TYPES = {
    "double": ("number", "double"), "float": ("number", "float"), "long": ("integer", "int64"),
    "integer": ("integer", "int32"), "boolean": ("boolean", None), "string": ("string", None),
    "binary": ("string", "binary"), "datetime": ("string", "date-time"),
}  # fmt: skip


class GeneratedCode(NamedTuple):
    """A scoring folder pkgc wrote (content-addressed under the cache) and its script's name in it."""

    directory: Path
    scoring_script: str


def params_schema(model: MLflowModel) -> dict | None:
    """The JSON schema of the request's ``params``: the signature's params with their types and defaults."""
    if not model.signature_params:
        return None
    properties = {}
    for param in model.signature_params:
        kind, fmt = _TYPES.get(str(param.get("type", "")), ("string", None))
        item = {"type": kind, **({"format": fmt} if fmt else {})}
        if param.get("shape"):
            item = {"type": "array", "items": item}
        properties[str(param.get("name", ""))] = {**item, **({"default": param["default"]} if "default" in param else {})}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def input_schema(model: MLflowModel) -> dict:
    """The JSON schema of {"input_data": {"columns", "index", "data"}, "params"} for the signature."""
    params = params_schema(model)
    if not model.signature_inputs:
        return {"type": "object", "example": {}, **({"properties": {"params": params}} if params else {})}
    columns = [c.get("name", f"col{i}") for i, c in enumerate(model.signature_inputs)]
    items = []
    for column in model.signature_inputs:
        kind, fmt = _TYPES.get(column.get("type", ""), ("string", None))
        items.append({"type": kind, **({"format": fmt} if fmt else {})})
    row = {"type": "array", "items": items, "minItems": len(items), "maxItems": len(items)}
    return {
        "type": "object",
        "required": ["input_data"],
        "properties": {
            "input_data": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string", "enum": columns}, "example": columns},
                    "index": {"type": "array", "items": {"type": "integer"}},
                    "data": {"type": "array", "items": row},
                },
            },
            **({"params": params} if params else {}),
        },
    }


def _swagger(version: str, schema: dict) -> dict:
    output = {"type": "array", "items": {}}
    paths = {"/score": {"post": {"summary": "Score the MLflow model", "operationId": "RunMLService"}}}
    if version == "2":
        return {"swagger": "2.0", "info": {"title": "pkgc MLflow package", "version": "1.0"}, "paths": paths,
                "definitions": {"ServiceInput": schema, "ServiceOutput": output}}  # fmt: skip
    return {"openapi": "3.0.1", "info": {"title": "pkgc MLflow package", "version": "1.0"}, "paths": paths,
            "components": {"schemas": {"ServiceInput": schema, "ServiceOutput": output}}}  # fmt: skip


def import_first(model: MLflowModel) -> list[str]:
    """Modules the model's loader needs that score.py imports before mlflow, because their own import
    costs grow with the number of modules already loaded: skops.io looks up the module of each numpy
    and scipy ufunc in every loaded module (0.17-0.32 s before mlflow's ~2,900 modules, 0.85-1.23 s
    after them, measured in the package image with ``python -X importtime``; the names it finds are
    the same)."""
    if model.loader_module == "mlflow.sklearn" and model.sklearn_format == "skops":
        return ["skops.io"]
    return []


def generated_files(model: MLflowModel, model_subdir: str) -> dict[str, bytes]:
    schema = input_schema(model)
    settings = {"model_subdir": model_subdir, "import_first": import_first(model)}
    return {
        "score.py": (templates_dir() / "mlflow" / "score.py").read_bytes(),
        "pkgc_mlflow.json": json.dumps(settings, indent=2).encode() + b"\n",
        "swagger2.json": json.dumps(_swagger("2", schema), indent=2).encode() + b"\n",
        "swagger3.json": json.dumps(_swagger("3", schema), indent=2).encode() + b"\n",
    }


def is_generated(code_dir: Path | None) -> bool:
    """Is ``code_dir`` the scoring folder :func:`generate_scoring` wrote (not the user's own)?"""
    return code_dir is not None and code_dir.name == FOLDER and code_dir.parent.parent.name == "generated"


def generate_scoring(model: MLflowModel, model_subdir: str, cache_dir: Path) -> GeneratedCode:
    """Write the scoring folder content-addressed under ``cache_dir``; the same model gives the same folder."""
    folder = generated_folder(generated_files(model, model_subdir), cache_dir / "generated", FOLDER)
    return GeneratedCode(directory=folder, scoring_script="score.py")
