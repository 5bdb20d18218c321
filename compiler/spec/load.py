"""Load package.yml: YAML with positions -> alias renaming -> pydantic validation -> file checks.

All problems found are reported together, each naming the file, the key path and the line.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from compiler.errors import Collected, SpecError, SpecProblem, excerpt
from compiler.spec.model import SERVER_TYPES, PackageSpec
from compiler.spec.values import APP_ROOT, ASSET_NAME, ASSET_NAME_RULE, container_path_problem, image_text_problem, line_problem
from compiler.spec.yamldoc import KeyPath, YamlDocument, load_yaml

if TYPE_CHECKING:
    from compiler.spec.deployment import DeploymentInfo
    from compiler.spec.overrides import Overrides

SPEC_MAX_BYTES = 1024 * 1024

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
    # A deployment YAML read as a package: what it states beyond the package, and its keys for ours.
    deployment: "DeploymentInfo | None" = None
    key_map: dict[KeyPath, KeyPath] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def problem(self, key: KeyPath, message: str) -> SpecProblem:
        return self.doc.problem(written_key(tuple(key), self.key_map), message)


def written_key(key: KeyPath, key_map: dict[KeyPath, KeyPath]) -> KeyPath:
    """``key`` of the package spec as the document wrote it (the longest mapped prefix wins)."""
    for canonical in sorted(key_map, key=len, reverse=True):
        if key[: len(canonical)] == canonical:
            return key_map[canonical] + key[len(canonical) :]
    return key


def _rename_aliases(doc: YamlDocument, collected: Collected) -> dict[KeyPath, KeyPath]:
    """Give old spellings their canonical names in ``doc.data``; return canonical path -> path as written."""
    renamed: dict[KeyPath, KeyPath] = {}
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
        renamed[parent_path + (new,)] = parent_path + (old,)
    return renamed


# Keys whose value is a tagged union: pydantic puts the tag after the key in an error's location.
UNION_KEYS = ("inferencing_server", "model", "environment")
NESTED_TAGS = {"path": ("local", "url")}  # a tagged union below the top level (inputs[i].path)


def _location(error: dict) -> tuple:
    loc = list(error["loc"])
    if len(loc) > 1 and loc[0] in UNION_KEYS and error["type"] not in ("union_tag_invalid", "union_tag_not_found"):
        del loc[1]
    for i in range(len(loc) - 1, 0, -1):
        if loc[i - 1] in NESTED_TAGS and loc[i] in NESTED_TAGS[loc[i - 1]]:
            del loc[i]
    if loc and loc[0] == "schema_":
        loc[0] = "$schema"
    if len(loc) > 2 and loc[-1] == "[key]":  # a bad key of a mapping (tags, environment_variables)
        loc.pop()
    return tuple(loc)


def _describe(error: dict, doc: YamlDocument, renamed: dict[KeyPath, KeyPath]) -> SpecProblem:
    loc = _location(error)
    for canonical, written in renamed.items():  # name the key as the user wrote it
        if loc[: len(canonical)] == canonical:
            loc = written + loc[len(canonical) :]
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid":
        loc = loc + ("type",)
        message = f"must be one of {error['ctx']['expected_tags']} (got '{excerpt(error['ctx']['tag'])}')"
    elif kind == "union_tag_not_found":
        loc = loc + ("type",)
        message = f"required key is missing (one of {', '.join(SERVER_TYPES)})"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and not isinstance(error["input"], (dict, list)) and error["loc"][-1:] != ("[key]",):  # a key: named already
            value = error["input"]
            if isinstance(value, datetime.date):
                message += f" (got {value.isoformat()}, which YAML reads as a date: quote it)"
            else:
                message += f" (got '{excerpt(value, 80)}')" if isinstance(value, str) else f" (got {excerpt(value, 80)})"
    return doc.problem(loc, message)


def load_spec_document(path: Path, overrides: "Overrides | None" = None) -> YamlDocument:
    """The spec's YAML with ``--set``/``--endpoint-name`` applied (``compiler.spec.overrides``)."""
    from compiler.spec.overrides import Overrides, check_text, fill_text, set_keys

    overrides = overrides or Overrides()
    used: frozenset[str] = frozenset()

    def fill(text: str) -> str:
        nonlocal used
        text, used = fill_text(text, overrides)
        if "{{" in text:
            check_text(text, path)
        return text

    doc = load_yaml(path, "package spec", max_bytes=SPEC_MAX_BYTES, transform=fill)
    if not isinstance(doc.data, dict):
        raise SpecError(SpecProblem(path, "", "the package spec must be a YAML mapping", doc.line_of(())))
    set_keys(doc, overrides, used)
    return doc


def load_package_spec(path: Path, target_environment: str | None = None, overrides: "Overrides | None" = None) -> SpecFile:
    """Read and validate package.yml, or an online- or batch-deployment YAML read as one
    (``compiler.spec.deployment``, ``compiler.spec.batch_deployment``); raise SpecError listing every
    problem found. ``target_environment`` overrides the package's name; ``overrides`` are ``--set``."""
    path = Path(path)
    if target_environment is not None and not ASSET_NAME.match(target_environment):
        raise SpecError(SpecProblem("--target-environment", "", f"'{excerpt(target_environment)}' {ASSET_NAME_RULE}"))
    doc = load_spec_document(path, overrides)
    from compiler.spec.kinds import is_batch_deployment, is_deployment
    from compiler.spec.overrides import check_values

    if is_batch_deployment(doc.data):
        check_values(doc)
        return _load_batch_deployment(path, doc, target_environment)
    if is_deployment(doc.data):
        check_values(doc)
        return _load_deployment(path, doc, target_environment)
    if overrides is not None and overrides.endpoint_name is not None:
        raise SpecError(SpecProblem("--endpoint-name", "", f"applies to deployment YAMLs; {path.name} is a package spec"))
    collected = Collected()
    renamed = _rename_aliases(doc, collected)
    collected.raise_if_any()
    if target_environment is not None:
        doc.data["target_environment"] = target_environment
    try:
        spec = PackageSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError([_describe(err, doc, renamed) for err in exc.errors()]) from None
    spec_file = SpecFile(path=path.resolve(), spec=spec, doc=doc)
    check_files(spec_file)
    return spec_file


def _load_batch_deployment(path: Path, doc: YamlDocument, target_environment: str | None) -> SpecFile:
    """A batch-deployment YAML: validated with its own schema, then translated into a PackageSpec."""
    from compiler.spec.batch_deployment import BatchDeployment, refuse_pipeline, translate_batch
    from compiler.spec.deployment import check_model_form

    refuse_pipeline(doc.data, doc)
    check_model_form(doc.data, doc)
    try:
        deployment = BatchDeployment.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError([_describe(err, doc, {}) for err in exc.errors()]) from None
    return _translated(path, doc, translate_batch(deployment, doc.data, doc, target_environment))


def _load_deployment(path: Path, doc: YamlDocument, target_environment: str | None) -> SpecFile:
    """A deployment YAML: validated with its own schema, then translated into a PackageSpec."""
    from compiler.spec.deployment import OnlineDeployment, check_model_form, translate

    check_model_form(doc.data, doc)
    try:
        deployment = OnlineDeployment.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError([_describe(err, doc, {}) for err in exc.errors()]) from None
    return _translated(path, doc, translate(deployment, doc.data, doc, target_environment))


def _translated(path: Path, doc: YamlDocument, translated) -> SpecFile:
    """The package spec a deployment was translated into, checked like any spec."""
    try:
        spec = PackageSpec.model_validate(translated.data)
    except ValidationError as exc:  # not expected: every value was checked by the deployment's schema
        raise SpecError([_describe(err, doc, translated.key_map) for err in exc.errors()]) from None
    spec_file = SpecFile(path=path.resolve(), spec=spec, doc=doc, deployment=translated.info, key_map=translated.key_map)
    check_files(spec_file)
    return spec_file


def check_files(spec_file: SpecFile) -> None:
    """The code folder and the scoring script must exist (paths are relative to package.yml), the
    script inside the folder; the model's place in the container must not be the code's. Names that
    reach the image (the spec's, a label; the code folder's, a folder) must be writable there."""
    if problem := image_text_problem(spec_file.path.name):
        raise SpecError(SpecProblem(excerpt(str(spec_file.path)), "", f"the spec's file name {problem} (label io.pkgc.spec)"))
    code = spec_file.spec.code_configuration
    if code is None:
        return
    key = ("inferencing_server", "code_configuration")
    code_dir = _resolved(spec_file, key + ("code",), spec_file.base_dir / code.code)
    if not _exists(spec_file, key + ("code",), code_dir, Path.is_dir):
        found = f"code folder '{excerpt(code.code)}' not found ({excerpt(str(code_dir))})"
        raise SpecError(spec_file.problem(key + ("code",), found))
    if code_dir == Path(code_dir.anchor):
        raise SpecError(spec_file.problem(key + ("code",), "the code folder must not be the filesystem root"))
    if problem := line_problem(code_dir.name):  # a link may lead to a name the spec did not write
        raise SpecError(spec_file.problem(key + ("code",), f"the code folder's name '{excerpt(code_dir.name)}' {problem}: it is a folder in the image"))
    if code.scoring_script is not None:  # a custom server's own folder need not hold one
        _check_script(spec_file, key, code_dir, code.code, code.scoring_script)
    mount_path = spec_file.spec.model_configuration.mount_path
    container_code_dir = f"{APP_ROOT}/{code_dir.name}"
    if mount_path is not None and (problem := container_path_problem(mount_path, container_code_dir)):
        raise SpecError(spec_file.problem(("model_configuration", "mount_path"), problem))
    for index, extra in enumerate(spec_file.spec.inputs):
        if problem := container_path_problem(extra.mount_path, container_code_dir):
            raise SpecError(spec_file.problem(("inputs", index, "mount_path"), problem))
    if mount_path is None and code_dir.name == "azureml-models":
        clash = f"a code folder named 'azureml-models' would hold the models ({APP_ROOT}/azureml-models)"
        raise SpecError(spec_file.problem(key + ("code",), clash))


def _check_script(spec_file: SpecFile, key: KeyPath, code_dir: Path, code: str, scoring_script: str) -> None:
    script = _resolved(spec_file, key + ("scoring_script",), code_dir / scoring_script)
    if not _exists(spec_file, key + ("scoring_script",), script, Path.is_file):
        raise SpecError(
            spec_file.problem(
                key + ("scoring_script",),
                f"scoring script '{excerpt(scoring_script)}' not found in '{excerpt(code)}'",
            )
        )
    if code_dir not in script.parents:
        raise SpecError(spec_file.problem(key + ("scoring_script",), "scoring script must be inside the code folder"))


def _resolved(spec_file: SpecFile, key: KeyPath, path: Path) -> Path:
    """``path`` with links followed; a link loop is the user's problem, named at ``key``."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        reason = getattr(exc, "strerror", None) or "a loop of symbolic links"
        raise SpecError(spec_file.problem(key, f"cannot follow '{excerpt(str(path))}': {reason}")) from None


def _exists(spec_file: SpecFile, key: KeyPath, path: Path, test) -> bool:
    """``test(path)`` (Path.is_dir, Path.is_file); a path that cannot be looked at is named at ``key``."""
    try:
        return test(path)
    except OSError as exc:
        raise SpecError(spec_file.problem(key, f"cannot read '{excerpt(str(path))}': {exc.strerror or exc}")) from None
