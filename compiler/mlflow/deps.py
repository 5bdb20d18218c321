"""Source parser: the dependencies an MLflow model declares, and what serving it needs.

MLflow's own rule (``mlflow.utils.virtualenv._get_python_env``): the virtualenv form
(python_env.yaml and the files its ``dependencies`` name, ``-r requirements.txt``) when present, else
the conda.yaml; the Python is the one THAT
file names (MLmodel's ``python_version`` only when the file names none). It becomes a ``python=X.Y``
requirement whose source names the file, so a different Python in the base environment or the base
image is a message naming the file that set it.

The model's conda.yaml is untrusted input: its channels reach the solver only when its conda
packages need the conda path, and then only channels the user trusts (the base environment's conda
file, ``conda_default_channels`` in pkgc.toml); another channel is refused, naming it and its line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from compiler.deps.conda_file import load_conda_file
from compiler.deps.specs import RequirementSyntaxError, parse_conda, parse_pip
from compiler.deps.types import DepSet, Requirement, Source
from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.mlflow.mlmodel import MLflowModel, minor
from compiler.spec.yamldoc import YamlDocument, read_text

# mlflow-skinny has pyfunc and every flavour's loader; the full mlflow adds the tracking server,
# UI, and their dependencies, none of which serving needs. pyfunc itself needs pandas and numpy.
SERVING_EXTRAS = ("pandas", "numpy")
INSTALLERS = {"python", "pip"}  # conda packages a venv provides itself (as compiler/environment/strategy.py reads them)


def _requirements_file(path: Path, source: Source) -> list[Requirement]:
    reqs = []
    for number, line in enumerate(read_text(path, path.name).splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            reqs.append(parse_pip(line, source))
        except RequirementSyntaxError as exc:
            raise SpecError(SpecProblem(path, f"line {number}", str(exc), number)) from None
    return reqs


def _virtualenv_form(model: MLflowModel, label: str) -> tuple[Source, list[Requirement]]:
    """python_env.yaml's ``dependencies`` (``-r requirements.txt`` as MLflow writes it, or lines of
    their own); requirements.txt when it lists none."""
    venv = Source("mlflow_model", f"MLflow model {label} ({model.virtualenv_env.name})", str(model.virtualenv_env))
    if model.virtualenv_dependencies is None:
        source = Source("mlflow_model", f"MLflow model {label} ({model.requirements.name})", str(model.requirements))
        return source, _requirements_file(model.requirements, source)
    reqs, main = [], venv
    for line, named, index in model.virtualenv_dependencies:
        if named is not None:
            if not named.is_file():
                raise SpecError(SpecProblem(model.virtualenv_env, f"dependencies[{index}]", f"{named.name} not found in the model"))
            source = Source("mlflow_model", f"MLflow model {label} ({named.name})", str(named))
            main = source if main is venv else main
            reqs += _requirements_file(named, source)
            continue
        try:
            reqs.append(parse_pip(line, venv))
        except RequirementSyntaxError as exc:
            raise SpecError(SpecProblem(model.virtualenv_env, f"dependencies[{index}]", str(exc))) from None
    return main, reqs


def _to_skinny(req: Requirement, source: Source) -> Requirement:
    if req.name != "mlflow":
        return req
    return replace(req, name="mlflow-skinny", raw=f"mlflow-skinny{req.specifier} (for '{req.raw}')", source=source)


def _python_requirement(version: str, source: Source, written: str) -> Requirement:
    """``python=X.Y`` of the file's version (the base image's patch release serves the model); its
    text is as the file wrote it, for messages."""
    return replace(parse_conda(f"python={minor(version)}", source), raw=written)


def _conda_python(python: Requirement | None, source: Source) -> Requirement | None:
    """conda.yaml's python, reduced to X.Y when it pins a version (``python=3.12.1`` -> ``python=3.12``)."""
    if python is None or not python.specifier:
        return None  # an unpinned python (MLflow refuses it): MLmodel's python_version decides
    spec = python.specifier
    if spec.startswith("==") and "," not in spec:
        version = spec[2:].removesuffix(".*")
        if version.replace(".", "").isdigit():
            return _python_requirement(version, source, python.raw)
    return replace(python, source=source)


def _untrusted_channels(doc: YamlDocument, depset: DepSet, trusted: tuple[str, ...]) -> list[SpecProblem]:
    """The model's channels (listed or per package, ``channel::name``) that the user did not configure."""
    allowed = {c.rstrip("/") for c in trusted}
    why = (f"is not a channel you configured ({', '.join(trusted) or 'none'}); to trust it, add it to "
           "conda_default_channels in pkgc.toml or to your base environment's conda file")  # fmt: skip
    problems = [doc.problem(("channels", i), f"conda channel '{excerpt(c)}' {why}")
                for i, c in enumerate(depset.channels) if c.rstrip("/") not in allowed]  # fmt: skip
    data = doc.data.get("dependencies") if isinstance(doc.data, dict) else None
    for i, item in enumerate(data if isinstance(data, list) else []):
        channel = str(item).split("::", 1)[0].strip() if isinstance(item, str) and "::" in item else None
        if channel is not None and channel.rstrip("/") not in allowed:
            problems.append(doc.problem(("dependencies", i), f"conda channel '{excerpt(channel)}' {why}"))
    return problems


def _conda_form(model: MLflowModel, label: str, trusted: tuple[str, ...]) -> tuple[list[Requirement], Requirement | None, tuple[str, ...]]:
    """(requirements, python, channels) of the conda.yaml; its channels only when its packages need them."""
    path = model.conda_env
    source = Source("mlflow_model", f"MLflow model {label} ({path.name})", str(path))
    parsed, doc = load_conda_file(path, source.label)
    reqs = [replace(r, source=source) for r in parsed.requirements if r.name != "python"]
    python = _conda_python(next((r for r in parsed.requirements if r.name == "python"), None), source)
    needs_conda = any(r.manager == "conda" and r.name not in INSTALLERS for r in parsed.requirements)
    if not needs_conda:
        return reqs, python, ()  # python and pip only: a venv, no channel is ever asked
    problems = _untrusted_channels(doc, parsed, trusted)
    if problems:
        raise SpecError(problems)
    return reqs, python, parsed.channels


def mlflow_depsets(model: MLflowModel, label: str, trusted_channels: tuple[str, ...] = ("defaults",)) -> list[DepSet]:
    """The model's own requirements and the serving additions, each its own source."""
    python: Requirement | None = None
    channels: tuple[str, ...] = ()
    if model.virtualenv_env and (model.virtualenv_dependencies is not None or model.requirements):
        source, reqs = _virtualenv_form(model, label)
        if model.virtualenv_python:
            venv = Source("mlflow_model", f"MLflow model {label} ({model.virtualenv_env.name})", str(model.virtualenv_env))
            python = _python_requirement(model.virtualenv_python, venv, f"python: {model.virtualenv_python}")
    elif model.conda_env:
        reqs, python, channels = _conda_form(model, label, trusted_channels)
        source = Source("mlflow_model", f"MLflow model {label} ({model.conda_env.name})", str(model.conda_env))
    else:
        source = Source("mlflow_model", f"MLflow model {label} (MLmodel)", str(model.mlmodel))
        reqs = []
    if python is None and model.python_version:  # the file names no Python: the one MLmodel records
        mlmodel = Source("mlflow_model", f"MLflow model {label} (MLmodel)", str(model.mlmodel))
        python = _python_requirement(model.python_version, mlmodel, f"python_version: {model.python_version}")
    if python is not None:
        reqs.append(python)
    serving = Source("mlflow_model", "MLflow serving (pyfunc with mlflow-skinny)")
    reqs = [_to_skinny(r, serving) if r.name == "mlflow" else r for r in reqs]
    if not any(r.name == "mlflow-skinny" for r in reqs):
        version = f"=={model.mlflow_version}" if model.mlflow_version else ""
        reqs.append(parse_pip(f"mlflow-skinny{version}", serving))
    extras = DepSet(serving, tuple(parse_pip(name, serving) for name in SERVING_EXTRAS))
    return [DepSet(source, tuple(reqs), channels), extras]
