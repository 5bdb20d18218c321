"""Read an MLflow model's MLmodel file: flavours and the package versions they record, environment
files and their Python, signature (inputs and params), and the serving input example."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.mlflow.versions import FlavorVersion, flavor_versions
from compiler.spec.yamldoc import YamlDocument, load_yaml

SERVING_EXAMPLE = "serving_input_example.json"  # what MLflow 2.12+ writes beside MLmodel
SERVING_EXAMPLE_MAX_BYTES = 32 * 1024  # it travels in an image label (the default smoke-test request)


@dataclass(frozen=True)
class MLflowModel:
    """What packaging needs to know of an MLflow model folder."""

    root: Path
    flavors: tuple[str, ...]
    loader_module: str | None
    python_version: str | None  # MLmodel's python_function.python_version, e.g. "3.11.7"
    conda_env: Path | None
    virtualenv_env: Path | None
    requirements: Path | None
    signature_inputs: tuple[dict, ...] | None
    mlflow_version: str | None
    virtualenv_python: str | None = None  # python_env.yaml's ``python``
    virtualenv_dependencies: tuple[tuple[str, Path | None, int], ...] | None = None  # (line, ``-r`` file, index)
    signature_params: tuple[dict, ...] | None = None
    flavor_versions: tuple[FlavorVersion, ...] = ()
    serving_example: str | None = None  # serving_input_example.json as compact JSON, when small enough
    serving_example_note: str | None = None  # why the model's example is not used, when it has one
    sklearn_format: str | None = None  # the sklearn flavour's serialization_format (skops, cloudpickle, pickle)

    @property
    def python_minor(self) -> str | None:
        return minor(self.python_version)

    @property
    def mlmodel(self) -> Path:
        return self.root / "MLmodel"


PYTHON_VERSION = re.compile(r"^[23]\.[0-9]{1,2}(\.[0-9]{1,3})?$")
ENV_KEY = ("flavors", "python_function", "env")


def minor(version: str | None) -> str | None:
    """``3.11.7`` -> ``3.11``."""
    return ".".join(version.split(".")[:2]) if version else None


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


def _checked_python(doc: YamlDocument, key: tuple, recorded: object) -> str | None:
    if recorded is None or recorded == "":
        return None
    if not PYTHON_VERSION.match(str(recorded)):
        raise SpecError(doc.problem(key, f"'{excerpt(str(recorded))}' is not a Python version (X.Y or X.Y.Z)"))
    return str(recorded)


def _virtualenv(root: Path, venv: Path | None) -> tuple[str | None, tuple | None]:
    """python_env.yaml's ``python`` and ``dependencies`` (each line, with the file a ``-r FILE`` names)."""
    if not (venv and venv.is_file()):
        return None, None
    venv_doc = load_yaml(venv, "python_env.yaml")
    data = venv_doc.data if isinstance(venv_doc.data, dict) else {}
    python = _checked_python(venv_doc, ("python",), data.get("python"))
    deps = data.get("dependencies")
    if deps is None:
        return python, None
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise SpecError(venv_doc.problem(("dependencies",), "must be a list of requirement lines"))
    lines = []
    for index, line in enumerate(deps):
        named = line.strip()[2:].strip() if line.strip().startswith("-r") else None
        lines.append((line, _model_file(venv_doc, root, named, ("dependencies", index)) if named is not None else None, index))
    return python, tuple(lines)


def _json_list(doc: YamlDocument, signature: dict, key: str) -> tuple[dict, ...] | None:
    """``signature.inputs``/``signature.params``: a JSON list of objects, as MLflow writes it."""
    text = signature.get(key)
    if not text:
        return None
    try:
        items = tuple(json.loads(str(text)))
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("not a list of objects")
    except (ValueError, TypeError, RecursionError):
        raise SpecError(SpecProblem(doc.path, f"signature.{key}", "is not valid JSON", doc.line_of(("signature", key)))) from None
    return items


def _serving_example(doc: YamlDocument, root: Path, data: dict) -> tuple[str | None, str | None]:
    """(the serving input example as compact JSON, or why it is not used); (None, None): there is none."""
    info = data.get("saved_input_example_info")
    named = info.get("serving_input_path") if isinstance(info, dict) else None
    key = ("saved_input_example_info", "serving_input_path")
    path = _model_file(doc, root, named, key) if named is not None else root / SERVING_EXAMPLE
    if not path.is_file():
        return None, None
    with open(path, "rb") as fh:
        raw = fh.read(SERVING_EXAMPLE_MAX_BYTES + 1)
    if len(raw) > SERVING_EXAMPLE_MAX_BYTES:
        return None, f"{path.name} is larger than {SERVING_EXAMPLE_MAX_BYTES // 1024} KiB"
    try:
        example = json.loads(raw)
    except (ValueError, RecursionError):
        return None, f"{path.name} is not valid JSON"
    if not isinstance(example, dict):
        return None, f"{path.name} is not a JSON object"
    return json.dumps(example, separators=(",", ":")), None  # key order kept: "inputs" columns keep theirs


def _sklearn_format(flavors: dict) -> str | None:
    sklearn = flavors.get("sklearn")
    value = sklearn.get("serialization_format") if isinstance(sklearn, dict) else None
    return value if isinstance(value, str) else None


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
    signature = data.get("signature") if isinstance(data.get("signature"), dict) else {}
    example, example_note = _serving_example(doc, root, data)
    virtualenv_python, virtualenv_dependencies = _virtualenv(root, venv)
    return MLflowModel(
        root=root,
        flavors=tuple(flavors),
        loader_module=pyfunc.get("loader_module"),
        python_version=_checked_python(doc, ("flavors", "python_function", "python_version"), pyfunc.get("python_version")),
        conda_env=conda,
        virtualenv_env=venv,
        requirements=requirements if requirements.is_file() else None,
        signature_inputs=_json_list(doc, signature, "inputs"),
        mlflow_version=str(data["mlflow_version"]) if data.get("mlflow_version") else None,
        virtualenv_python=virtualenv_python,
        virtualenv_dependencies=virtualenv_dependencies,
        signature_params=_json_list(doc, signature, "params"),
        flavor_versions=flavor_versions(flavors),
        serving_example=example,
        serving_example_note=example_note,
        sklearn_format=_sklearn_format(flavors),
    )
