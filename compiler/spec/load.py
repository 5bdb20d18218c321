"""Load package.yml: YAML with positions -> alias renaming -> pydantic validation -> file checks.

All problems found are reported together, each naming the file, the key path and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from compiler.errors import Collected, SpecError, SpecProblem
from compiler.spec.model import SERVER_TYPES, PackageSpec
from compiler.spec.yamldoc import KeyPath, YamlDocument, load_yaml

# (parent path, old spelling, canonical spelling)
ALIASES: tuple[tuple[KeyPath, str, str], ...] = (
    ((), "target_environment_name", "target_environment"),
    (("inferencing_server", "code_configuration"), "entry_script", "scoring_script"),
)


@dataclass(frozen=True)
class SpecFile:
    """A validated package spec together with where it came from."""

    path: Path
    spec: PackageSpec
    doc: YamlDocument

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def problem(self, key: KeyPath, message: str) -> SpecProblem:
        return self.doc.problem(key, message)


def _rename_aliases(doc: YamlDocument, collected: Collected) -> Any:
    data = doc.data
    for parent_path, old, new in ALIASES:
        parent: Any = data
        for part in parent_path:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or old not in parent:
            continue
        if new in parent:
            collected.problems.append(
                doc.problem(parent_path + (old,), f"give either '{old}' or '{new}', not both")
            )
            continue
        parent[new] = parent.pop(old)
        doc.lines.setdefault(parent_path + (new,), doc.lines.get(parent_path + (old,), 0))
    return data


def _describe(error: dict, doc: YamlDocument) -> SpecProblem:
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part in SERVER_TYPES))
    loc = tuple("$schema" if part == "schema_" else part for part in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid":
        loc = loc + ("type",)
        message = f"must be one of {error['ctx']['expected_tags']} (got '{error['ctx']['tag']}')"
    elif kind == "union_tag_not_found":
        loc = loc + ("type",)
        message = f"required key is missing (one of {', '.join(SERVER_TYPES)})"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and not isinstance(error["input"], (dict, list)):
            message += f" (got {error['input']!r})"
    return doc.problem(loc, message)


def load_package_spec(path: Path) -> SpecFile:
    """Read and validate package.yml; raise SpecError listing every problem found."""
    path = Path(path)
    doc = load_yaml(path, "package spec")
    if not isinstance(doc.data, dict):
        raise SpecError(SpecProblem(path, "", "the package spec must be a YAML mapping", doc.line_of(())))
    collected = Collected()
    data = _rename_aliases(doc, collected)
    collected.raise_if_any()
    try:
        spec = PackageSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_describe(err, doc) for err in exc.errors()]) from None
    spec_file = SpecFile(path=path.resolve(), spec=spec, doc=doc)
    check_files(spec_file)
    return spec_file


def check_files(spec_file: SpecFile) -> None:
    """The code folder and the scoring script must exist (paths are relative to package.yml)."""
    code = spec_file.spec.code_configuration
    if code is None:
        return
    key = ("inferencing_server", "code_configuration")
    code_dir = (spec_file.base_dir / code.code).resolve()
    if not code_dir.is_dir():
        raise SpecError(spec_file.problem(key + ("code",), f"code folder '{code.code}' not found ({code_dir})"))
    if code.scoring_script is None:
        return
    script = (code_dir / code.scoring_script).resolve()
    if not script.is_file():
        raise SpecError(
            spec_file.problem(
                key + ("scoring_script",), f"scoring script '{code.scoring_script}' not found in '{code.code}'"
            )
        )
    if code_dir not in script.parents:
        raise SpecError(spec_file.problem(key + ("scoring_script",), "scoring script must be inside the code folder"))
