"""Azure ML environment YAML (``name``, ``version``, ``image``, ``conda_file``, ``description``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compiler.deps.conda_file import parse_conda_file
from compiler.errors import SpecError, excerpt
from compiler.spec.model import AssetName, HostPath, Line, Text
from compiler.spec.yamldoc import load_yaml
from compiler.workspace.records import EnvironmentRecord
from compiler.workspace.store import Workspace


class EnvironmentFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    name: AssetName
    version: AssetName | None = None
    image: Line
    conda_file: HostPath | None = None
    description: Text = ""
    tags: dict[Text, Text] = Field(default_factory=dict)


def create_environment_from_file(path: Path, workspace: Workspace) -> EnvironmentRecord:
    """Validate the environment YAML and its conda file, then register a new version."""
    doc = load_yaml(path, "environment file")
    if not isinstance(doc.data, dict):
        raise SpecError(doc.problem((), "an environment file must be a YAML mapping"))
    try:
        env = EnvironmentFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple("$schema" if p == "schema_" else p for p in err["loc"])
            message = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"], err["msg"])
            message = message.removeprefix("Value error, ")
            if "input" in err and not isinstance(err["input"], (dict, list)):
                message += f" (got {excerpt(err['input'])!r})"
            problems.append(doc.problem(loc, message))
        raise SpecError(problems) from None
    conda_digest = conda_name = None
    if env.conda_file:
        conda_path = (path.parent / env.conda_file).resolve()
        if not conda_path.is_file():
            raise SpecError(doc.problem(("conda_file",), f"conda file '{excerpt(env.conda_file)}' not found ({excerpt(str(conda_path))})"))
        parse_conda_file(conda_path, f"conda file {conda_path.name}")
        conda_digest = workspace.store_blob(conda_path.read_bytes())
        conda_name = conda_path.name
    record = EnvironmentRecord(
        name=env.name,
        version=env.version or "0",
        image=env.image,
        conda_file=conda_digest,
        conda_file_name=conda_name,
        description=env.description,
        tags=env.tags,
    )
    return workspace.create_environment(record, explicit_version=env.version is not None)
