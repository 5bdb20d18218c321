"""Azure ML model YAML (``az ml model create -f model.yml``): name, version, path, type, properties."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compiler.errors import SpecError, excerpt
from compiler.spec.model import AssetName, HostPath, PropertyValue, Text
from compiler.spec.yamldoc import load_yaml


@dataclass(frozen=True)
class ModelArgs:
    """What ``pkgc model create`` registers; from flags, a model YAML, or both (flags win)."""

    name: str | None = None
    version: str | None = None
    path: str | None = None
    type: str | None = None
    description: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    name: AssetName
    version: AssetName | None = None
    path: HostPath
    type: Literal["custom_model", "mlflow_model"] | None = None
    description: Text | None = None
    tags: dict[Text, Text] = Field(default_factory=dict)
    properties: dict[Text, PropertyValue] = Field(default_factory=dict)
    stage: Text | None = None


def model_args(path: Path, flags: ModelArgs) -> ModelArgs:
    """The model YAML at ``path`` (its ``path`` relative to the file), overridden by the flags given."""
    doc = load_yaml(path, "model file")
    if not isinstance(doc.data, dict):
        raise SpecError(doc.problem((), "a model file must be a YAML mapping"))
    data = dict(doc.data)
    data.update({k: v for k, v in (("name", flags.name), ("version", flags.version)) if v is not None})
    try:
        model = ModelFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple("$schema" if p == "schema_" else p for p in err["loc"])
            message = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"], err["msg"])
            if "input" in err and not isinstance(err["input"], (dict, list)) and err["type"] != "missing":
                message += f" (got {excerpt(err['input'])!r})"
            problems.append(doc.problem(loc, message.removeprefix("Value error, ")))
        raise SpecError(problems) from None
    from_file = ModelArgs(
        model.name, model.version, str(path.parent / model.path), model.type, model.description, dict(model.properties)
    )
    return replace(
        from_file,
        path=flags.path or from_file.path,
        type=flags.type or from_file.type,
        description=flags.description or from_file.description,
        properties={**from_file.properties, **flags.properties},
    )
