"""Source parser: the dependencies an MLflow model declares, and what serving it needs.

MLflow's own rule: the virtualenv form (python_env.yaml + requirements.txt) when present, else the
conda.yaml. The recorded Python becomes a ``python==X.Y.*`` requirement of the model's source, so
a different Python in the base environment is a merge conflict naming both files.
"""

from __future__ import annotations

from dataclasses import replace

from compiler.deps.conda_file import parse_conda_file
from compiler.deps.specs import RequirementSyntaxError, parse_conda, parse_pip
from compiler.deps.types import DepSet, Requirement, Source
from compiler.errors import SpecError, SpecProblem
from compiler.mlflow.mlmodel import MLflowModel
from compiler.spec.yamldoc import read_text

# mlflow-skinny has pyfunc and every flavour's loader; the full mlflow adds the tracking server,
# UI, and their dependencies, none of which serving needs. pyfunc itself needs pandas and numpy.
SERVING_EXTRAS = ("pandas", "numpy")


def _requirements_file(model: MLflowModel, source: Source) -> list[Requirement]:
    reqs = []
    for number, line in enumerate(read_text(model.requirements, "requirements.txt").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            reqs.append(parse_pip(line, source))
        except RequirementSyntaxError as exc:
            raise SpecError(SpecProblem(model.requirements, f"line {number}", str(exc), number)) from None
    return reqs


def _to_skinny(req: Requirement, source: Source) -> Requirement:
    if req.name != "mlflow":
        return req
    return replace(req, name="mlflow-skinny", raw=f"mlflow-skinny{req.specifier} (for '{req.raw}')", source=source)


def mlflow_depsets(model: MLflowModel, label: str, python_override: str | None = None) -> list[DepSet]:
    """The model's own requirements and the serving additions, each its own source."""
    if model.virtualenv_env and model.requirements:
        source = Source("mlflow_model", f"MLflow model {label} ({model.requirements.name})", str(model.requirements))
        reqs = _requirements_file(model, source)
        channels: tuple[str, ...] = ()
    elif model.conda_env:
        source = Source("mlflow_model", f"MLflow model {label} ({model.conda_env.name})", str(model.conda_env))
        parsed = parse_conda_file(model.conda_env, source.label)
        reqs = [replace(r, source=source) for r in parsed.requirements if r.name != "python"]
        channels = parsed.channels
    else:
        source = Source("mlflow_model", f"MLflow model {label} (MLmodel)", str(model.mlmodel))
        reqs, channels = [], ()
    python = python_override or model.python_minor
    if python:
        reqs.append(parse_conda(f"python={python}", source))
    serving = Source("mlflow_model", "MLflow serving (pyfunc with mlflow-skinny)")
    reqs = [_to_skinny(r, serving) if r.name == "mlflow" else r for r in reqs]
    if not any(r.name == "mlflow-skinny" for r in reqs):
        version = f"=={model.mlflow_version}" if model.mlflow_version else ""
        reqs.append(parse_pip(f"mlflow-skinny{version}", serving))
    extras = DepSet(serving, tuple(parse_pip(name, serving) for name in SERVING_EXTRAS))
    return [DepSet(source, tuple(reqs), channels), extras]
