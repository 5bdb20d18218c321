"""Read an MLflow model's MLmodel file: flavours, environment files, Python version, signature."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.spec.yamldoc import YamlDocument, load_yaml


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


PYTHON_VERSION = re.compile(r"^[23]\.[0-9]{1,2}(\.[0-9]{1,3})?$")
ENV_KEY = ("flavors", "python_function", "env")


def _model_file(doc: YamlDocument, root: Path, value: object, key: tuple) -> Path:
    """A file the MLmodel names: a relative path that stays inside the model folder."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise SpecError(doc.problem(key, "must be a file name inside the model folder"))
    path = (root / value).resolve()
    if not path.is_relative_to(root.resolve()):
        raise SpecError(doc.problem(key, f"'{excerpt(value)}' leaves the model folder"))
    return path


def _env_files(doc: YamlDocument, root: Path, pyfunc: dict) -> tuple[Path | None, Path | None]:
    """(conda.yaml, python_env.yaml) from the new two-file or the old single-file ``env`` form."""
    env = pyfunc.get("env")
    if isinstance(env, str):
        return _model_file(doc, root, env, ENV_KEY), None
    if isinstance(env, dict):
        conda = _model_file(doc, root, env["conda"], ENV_KEY + ("conda",)) if env.get("conda") else None
        venv = _model_file(doc, root, env["virtualenv"], ENV_KEY + ("virtualenv",)) if env.get("virtualenv") else None
        return conda, venv
    if env is not None:
        raise SpecError(doc.problem(ENV_KEY, "must be a file name or a mapping of conda/virtualenv file names"))
    return (root / "conda.yaml" if (root / "conda.yaml").is_file() else None), None


def _python_from(doc: YamlDocument, venv: Path | None, pyfunc: dict) -> str | None:
    recorded, where = pyfunc.get("python_version"), (doc, ("flavors", "python_function", "python_version"))
    if venv and venv.is_file():
        venv_doc = load_yaml(venv, "python_env.yaml")
        data = venv_doc.data if isinstance(venv_doc.data, dict) else {}
        if data.get("python"):
            recorded, where = data["python"], (venv_doc, ("python",))
    if recorded is None or recorded == "":
        return None
    if not PYTHON_VERSION.match(str(recorded)):
        raise SpecError(where[0].problem(where[1], f"'{excerpt(str(recorded))}' is not a Python version (X.Y or X.Y.Z)"))
    return str(recorded)


def read_mlflow_model(root: Path) -> MLflowModel:
    """Parse ``root/MLmodel``; a model without a python_function flavour cannot be served."""
    doc = load_yaml(root / "MLmodel", "MLmodel file")
    data = doc.data if isinstance(doc.data, dict) else {}
    flavors = data.get("flavors")
    if not isinstance(flavors, dict) or "python_function" not in flavors:
        raise SpecError(doc.problem(("flavors",), "an MLflow model needs the python_function flavour to be served"))
    pyfunc = flavors["python_function"] or {}
    if not isinstance(pyfunc, dict):
        raise SpecError(doc.problem(("flavors", "python_function"), "must be a mapping"))
    conda, venv = _env_files(doc, root, pyfunc)
    for path, key in ((conda, "conda"), (venv, "virtualenv")):
        if path is not None and not path.is_file():
            raise SpecError(doc.problem(("flavors", "python_function", "env", key), f"{path.name} not found in the model"))
    requirements = root / "requirements.txt"
    signature = data.get("signature") or {}
    signature = signature.get("inputs") if isinstance(signature, dict) else None
    inputs = None
    if signature:
        try:
            inputs = tuple(json.loads(str(signature)))
            if not all(isinstance(item, dict) for item in inputs):
                raise ValueError("not a list of columns")
        except (ValueError, TypeError, RecursionError):
            raise SpecError(SpecProblem(doc.path, "signature.inputs", "is not valid JSON", doc.line_of(("signature",)))) from None
    return MLflowModel(
        root=root,
        flavors=tuple(flavors),
        loader_module=pyfunc.get("loader_module"),
        python_version=_python_from(doc, venv, pyfunc),
        conda_env=conda,
        virtualenv_env=venv,
        requirements=requirements if requirements.is_file() else None,
        signature_inputs=inputs,
        mlflow_version=str(data["mlflow_version"]) if data.get("mlflow_version") else None,
    )
