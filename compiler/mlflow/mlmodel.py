"""Read an MLflow model's MLmodel file: flavours, environment files, Python version, signature."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from compiler.errors import SpecError, SpecProblem
from compiler.spec.yamldoc import load_yaml


@dataclass(frozen=True)
class MLflowModel:
    """What packaging needs to know of an MLflow model folder."""

    root: Path
    flavors: tuple[str, ...]
    loader_module: str | None
    python_version: str | None  # as recorded, e.g. "3.11.7"
    conda_env: Path | None
    virtualenv_env: Path | None
    requirements: Path | None
    signature_inputs: tuple[dict, ...] | None
    mlflow_version: str | None

    @property
    def python_minor(self) -> str | None:
        if not self.python_version:
            return None
        return ".".join(self.python_version.split(".")[:2])

    @property
    def mlmodel(self) -> Path:
        return self.root / "MLmodel"


def _env_files(root: Path, pyfunc: dict) -> tuple[Path | None, Path | None]:
    """(conda.yaml, python_env.yaml) from the new two-file or the old single-file ``env`` form."""
    env = pyfunc.get("env")
    if isinstance(env, str):
        return root / env, None
    if isinstance(env, dict):
        conda = root / env["conda"] if env.get("conda") else None
        venv = root / env["virtualenv"] if env.get("virtualenv") else None
        return conda, venv
    return (root / "conda.yaml" if (root / "conda.yaml").is_file() else None), None


def _python_from(venv: Path | None, pyfunc: dict) -> str | None:
    if venv and venv.is_file():
        data = yaml.safe_load(venv.read_text()) or {}
        if data.get("python"):
            return str(data["python"])
    return str(pyfunc["python_version"]) if pyfunc.get("python_version") else None


def read_mlflow_model(root: Path) -> MLflowModel:
    """Parse ``root/MLmodel``; a model without a python_function flavour cannot be served."""
    doc = load_yaml(root / "MLmodel", "MLmodel file")
    data = doc.data if isinstance(doc.data, dict) else {}
    flavors = data.get("flavors")
    if not isinstance(flavors, dict) or "python_function" not in flavors:
        raise SpecError(doc.problem(("flavors",), "an MLflow model needs the python_function flavour to be served"))
    pyfunc = flavors["python_function"] or {}
    conda, venv = _env_files(root, pyfunc)
    for path, key in ((conda, "conda"), (venv, "virtualenv")):
        if path is not None and not path.is_file():
            raise SpecError(doc.problem(("flavors", "python_function", "env", key), f"{path.name} not found in the model"))
    requirements = root / "requirements.txt"
    signature = (data.get("signature") or {}).get("inputs")
    inputs = None
    if signature:
        try:
            inputs = tuple(json.loads(signature))
        except ValueError:
            raise SpecError(SpecProblem(doc.path, "signature.inputs", "is not valid JSON", doc.line_of(("signature",)))) from None
    return MLflowModel(
        root=root,
        flavors=tuple(flavors),
        loader_module=pyfunc.get("loader_module"),
        python_version=_python_from(venv, pyfunc),
        conda_env=conda,
        virtualenv_env=venv,
        requirements=requirements if requirements.is_file() else None,
        signature_inputs=inputs,
        mlflow_version=str(data["mlflow_version"]) if data.get("mlflow_version") else None,
    )
