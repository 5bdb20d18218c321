"""``--write-deployment FILE``: the deployment YAML that uses the built package, shaped like Azure's own.

Azure ML's sample (how-to-package-models): ``environment: azureml:<package>@latest`` and no ``model``
or ``code_configuration`` ("all of them are part of the package"). pkgc writes the exact version it
built. The deployment's other keys (instance type and count, request settings, probes, scaling,
tags...) are kept as written; ``environment_variables`` and ``model_mount_path`` are in the package.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.spec.batch_deployment import is_batch_deployment
from compiler.spec.deployment import DROPPED_BY_PACKAGE, is_deployment
from compiler.spec.load import load_spec_document
from compiler.spec.overrides import Overrides
from compiler.workspace.trees import write_file_atomic


def check_write_target(source: Path, target: Path, overrides: Overrides | None = None) -> Path:
    """Refuse, before any build work, a target that is the input itself or whose folder is missing."""
    if source.resolve() == target.resolve():
        raise SpecError(SpecProblem("--write-deployment", "", f"'{excerpt(str(target))}' is the input file; name another file"))
    if not target.parent.resolve().is_dir():
        raise SpecError(SpecProblem("--write-deployment", "", f"folder '{excerpt(str(target.parent))}' does not exist"))
    if target.is_dir():
        raise SpecError(SpecProblem("--write-deployment", "", f"'{excerpt(str(target))}' is a folder; name a file"))
    doc = load_spec_document(source, overrides)
    if not (is_deployment(doc.data) or is_batch_deployment(doc.data)):
        raise SpecError(SpecProblem("--write-deployment", "", f"'{excerpt(str(source))}' is not an online-deployment YAML (nor a batch-deployment one)"))
    return target


def deployment_using(source: Path, package: str, overrides: Overrides | None = None) -> dict:
    """The deployment document of ``source`` (``--set`` applied) with ``environment: azureml:<package>`` (NAME:VERSION)."""
    doc = load_spec_document(source, overrides)
    data = {key: value for key, value in doc.data.items() if key not in DROPPED_BY_PACKAGE}
    out: dict = {}
    for key in ("$schema", "name", "endpoint_name"):
        if key in data:
            out[key] = data.pop(key)
    out["environment"] = f"azureml:{package}"
    out.update(data)
    return out


def write_deployment(source: Path, package: str, target: Path, overrides: Overrides | None = None) -> Path:
    """Write the deployment that uses ``package`` to ``target`` (all at once); return the path."""
    text = yaml.safe_dump(deployment_using(source, package, overrides), sort_keys=False, allow_unicode=True)
    write_file_atomic(target, text.encode("utf-8"))
    return target
