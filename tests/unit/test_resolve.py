"""Resolve stage: model precedence, local models, registries, and the plan's model layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.options import load_options
from compiler.resolve import resolve_package
from compiler.spec import load_package_spec
from compiler.workspace import Workspace
from tests.conftest import run_pkgc

SPEC = """\
base_environment_source: {type: environment_asset, resource_id: "azureml:env@latest"}
target_environment_name: pkg
inferencing_server:
  type: azureml_online
  code_configuration: {code: src, entry_script: score.py}
"""


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init(): pass\n")
    (tmp_path / "weights.pkl").write_bytes(b"spec model")
    (tmp_path / "conda.yaml").write_text("dependencies: [python=3.11, pip]\n")
    (tmp_path / "env.yml").write_text("name: env\nimage: pkgc/base-debian-bookworm:latest\nconda_file: conda.yaml\n")
    ws = Workspace(tmp_path / "ws")
    from compiler.workspace.envfile import create_environment_from_file

    create_environment_from_file(tmp_path / "env.yml", ws)
    folder = tmp_path / "models" / "model_1" / "v1"
    folder.mkdir(parents=True)
    (folder / "sample_m1.pkl").write_bytes(b"registered")
    ws.create_model("multi", tmp_path / "models")
    return tmp_path, ws


def test_cli_model_wins_over_the_spec(setup):
    tmp_path, ws = setup
    (tmp_path / "package.yml").write_text(SPEC + "model: {path: weights.pkl, name: spec-model}\n")
    spec = load_package_spec(tmp_path / "package.yml")
    options = load_options(str(ws.root), tmp_path, environ={})
    from_spec = resolve_package(spec, None, ws, options)
    assert (from_spec.model.name, from_spec.model.root_name) == ("spec-model", "weights.pkl")
    from_cli = resolve_package(spec, "azureml:multi:1", ws, options)
    assert (from_cli.model.name, from_cli.model.version) == ("multi", "1")
    assert (from_cli.model.tree_path / "models" / "model_1" / "v1" / "sample_m1.pkl").read_bytes() == b"registered"
    assert from_cli.model_dir == "/var/azureml-app/azureml-models/multi/1"


def test_unknown_model_reference_names_the_key(setup):
    tmp_path, ws = setup
    (tmp_path / "package.yml").write_text(SPEC + "model: azureml:ghost@latest\n")
    spec = load_package_spec(tmp_path / "package.yml")
    with pytest.raises(SpecError) as err:
        resolve_package(spec, None, ws, load_options(str(ws.root), tmp_path, environ={}))
    assert f"{tmp_path / 'package.yml'}:6: model: model 'ghost' is not registered" in str(err.value)


def test_registry_from_pkgc_toml(setup, tmp_path_factory):
    tmp_path, ws = setup
    registry = Workspace(tmp_path_factory.mktemp("registry"))
    registry.create_model("shared", tmp_path / "weights.pkl")
    (tmp_path / "pkgc.toml").write_text(f'[registries]\ncorp = "{registry.root}"\n')
    (tmp_path / "package.yml").write_text(SPEC + "model: azureml://registries/corp/models/shared/versions/1\n")
    spec = load_package_spec(tmp_path / "package.yml")
    pkg = resolve_package(spec, None, ws, load_options(str(ws.root), tmp_path, environ={}))
    assert (pkg.model.name, pkg.model.root_name) == ("shared", "weights.pkl")


def test_mount_path_overrides_the_model_dir(setup):
    tmp_path, ws = setup
    (tmp_path / "package.yml").write_text(SPEC + "model_configuration: {mode: readonly_mount, mount_path: /models/m}\n")
    spec = load_package_spec(tmp_path / "package.yml")
    pkg = resolve_package(spec, "azureml:multi:1", ws, load_options(str(ws.root), tmp_path, environ={}))
    assert pkg.model_dir == "/models/m"


def test_schema_command_prints_the_spec_schema():
    proc = run_pkgc("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert "target_environment" in schema["properties"] and "$schema" in schema["properties"]
    assert schema["additionalProperties"] is False


def test_inline_model_trees_take_their_own_versions(tmp_path):
    """Two different trees under one inline name are two versions (as Azure registers inline models);
    the same tree again is the version it already has."""
    from compiler.resolve.models import resolve_local_model
    from compiler.spec.model import LocalModel

    workspace = Workspace(tmp_path / "ws")
    for folder, text in (("a", "1"), ("b", "2")):
        (tmp_path / folder / "model").mkdir(parents=True)
        (tmp_path / folder / "model" / "weights.txt").write_text(text)
    first = resolve_local_model(LocalModel(path="a/model"), tmp_path, workspace)
    second = resolve_local_model(LocalModel(path="b/model"), tmp_path, workspace)
    again = resolve_local_model(LocalModel(path="a/model"), tmp_path, workspace)
    assert (first.name, first.version) == ("model", "1") and (second.name, second.version) == ("model", "2")
    assert again.version == "1" and again.tree_digest == first.tree_digest != second.tree_digest
    assert [r.version for r in workspace.list_models()] == ["1", "2"]
    pinned = resolve_local_model(LocalModel(path="b/model", version="7"), tmp_path, workspace)
    assert pinned.version == "7"  # a version the spec names is the spec's


def test_a_spec_inside_its_own_model_or_code_folder_is_locked_in_the_workspace(setup):
    """A YAML beside its model (``model: {path: .}``) would write its lock into the model it packages,
    changing that model on the next build: the lock goes to the workspace instead."""
    from compiler.pipeline import lock_path_for, package_lock_path

    tmp_path, ws = setup
    project = tmp_path / "project"  # the model folder, holding its YAML (the workspace lies elsewhere)
    (project / "src").mkdir(parents=True)
    (project / "src" / "score.py").write_text("def init(): pass\n")
    (project / "package.yml").write_text(SPEC + "model: {path: ., name: here}\n")
    options = load_options(str(ws.root), tmp_path, environ={})
    pkg = resolve_package(load_package_spec(project / "package.yml"), None, ws, options)
    moved = package_lock_path(project / "package.yml", None, pkg, ws.root)
    assert moved == ws.root / "locks" / "pkg" / "package.conda-lock.yml"
    assert package_lock_path(project / "package.yml", tmp_path / "mine.yml", pkg, ws.root) == tmp_path / "mine.yml"
    (tmp_path / "elsewhere.yml").write_text(SPEC + "model: {path: weights.pkl}\n")
    beside = resolve_package(load_package_spec(tmp_path / "elsewhere.yml"), None, ws, options)
    assert package_lock_path(tmp_path / "elsewhere.yml", None, beside, ws.root) == lock_path_for(tmp_path / "elsewhere.yml", None)
    inner = tmp_path / "src" / "package.yml"  # a spec inside its code folder (code: .)
    inner.write_text(SPEC.replace("code: src", "code: .") + "model: {path: ../weights.pkl}\n")
    in_code = resolve_package(load_package_spec(inner), None, ws, options)
    assert package_lock_path(inner, None, in_code, ws.root).is_relative_to(ws.root / "locks")
