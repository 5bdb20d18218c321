"""Workspace: versions count up, files are content-addressed and immutable, writes are atomic."""

import pytest

from compiler.errors import ResolveError, SpecError
from compiler.workspace import Workspace
from compiler.workspace.envfile import create_environment_from_file


def test_model_versions_count_up_and_are_content_addressed(tmp_path):
    ws = Workspace(tmp_path / "ws")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"abc")
    first = ws.create_model("m", folder)
    second = ws.create_model("m", folder)
    assert (first.version, second.version) == ("1", "2")
    assert first.tree == second.tree  # same bytes, one stored tree
    stored = ws.tree_path(first.tree) / "model" / "w.bin"
    assert stored.read_bytes() == b"abc"
    assert not stored.stat().st_mode & 0o222  # read-only
    assert ws.get_model("m", label="latest").version == "2"


def test_single_file_model_sits_directly_in_the_tree(tmp_path):
    ws = Workspace(tmp_path / "ws")
    model = tmp_path / "sample_m1.pkl"
    model.write_bytes(b"x")
    record = ws.create_model("single", model)
    assert (ws.tree_path(record.tree) / "sample_m1.pkl").is_file()
    assert record.root_name == "sample_m1.pkl"


def test_explicit_versions_are_immutable(tmp_path):
    ws = Workspace(tmp_path / "ws")
    model = tmp_path / "m.pkl"
    model.write_bytes(b"x")
    ws.create_model("m", model, version="7")
    with pytest.raises(ResolveError, match="already exists"):
        ws.create_model("m", model, version="7")


def test_unknown_assets_are_clear_errors(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ResolveError, match="model 'nope' is not registered"):
        ws.get_model("nope", "1")
    model = tmp_path / "m.pkl"
    model.write_bytes(b"x")
    ws.create_model("m", model)
    with pytest.raises(ResolveError, match="has no version 3"):
        ws.get_model("m", "3")


def test_environment_file_with_conda_file(tmp_path):
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n")
    env_file = tmp_path / "env.yml"
    env_file.write_text("name: e\nimage: pkgc/base-debian-bookworm:latest\nconda_file: conda.yaml\n")
    ws = Workspace(tmp_path / "ws")
    record = create_environment_from_file(env_file, ws)
    assert (record.name, record.version) == ("e", "1")
    assert ws.blob_path(record.conda_file).read_text().startswith("dependencies")
    assert create_environment_from_file(env_file, ws).version == "2"


def test_environment_file_errors(tmp_path):
    env_file = tmp_path / "env.yml"
    env_file.write_text("name: e\nimage: x\nconda_file: missing.yaml\nbuild: {path: .}\n")
    with pytest.raises(SpecError) as err:
        create_environment_from_file(env_file, Workspace(tmp_path / "ws"))
    assert f"{env_file}:4: build: unknown key" in err.value.lines()


def test_names_and_versions_never_leave_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    (tmp_path / "1.json").write_text("{}")
    for name, version in (("..", "1"), ("m", "../1"), ("a/b", None)):
        with pytest.raises(ResolveError, match="not a valid model name"):
            ws.get_model(name, version)
    assert ws.stored_tree("../" + "a" * 61) is None and ws.stored_tree("/etc") is None
