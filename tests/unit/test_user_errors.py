"""Bad input that is the user's never says "internal error": config files (pkgc.toml, pyproject.toml),
``pkgc model create`` paths, spec paths that cannot be read; and quoted values are cut short."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import SpecError, excerpt
from compiler.options import load_options
from tests.conftest import package_spec


def options_error(folder: Path, name: str, text: str | bytes) -> str:
    (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as err:
        load_options(None, folder, environ={})
    (line,) = err.value.lines()
    return line.removeprefix(str(folder / name))


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("pkgc.toml", 'registries = "x"\n', ':1: registries: must be a table of NAME = "/path/to/registry" entries'),
        ("pkgc.toml", "[registries]\ncorp = 5\n", ":2: registries.corp: must be a folder path as a string (got 5)"),
        ("pkgc.toml", "[registries]\ncorp = ''\n", ":2: registries.corp: must be a folder path as a string (got '')"),
        ("pkgc.toml", '[registries]\nx = "a\\u0000b"\n', ":2: registries.x: is not a usable path (got 'a\\x00b')"),
        ("pkgc.toml", "a = [\n1,,\n", ":2: invalid TOML: Invalid value"),
        ("pkgc.toml", "colour = 1\n", ":1: colour: unknown key (known: workspace, registries, mlflow_base_image, slim, bytecode, conda_default_channels, allow_missing_libraries, compression, platforms, cache, cache_mode)"),
        ("pkgc.toml", b"workspace = 'caf\xe9'\n", ":1: is not valid UTF-8 (byte 0xe9): save it as UTF-8"),
        ("pkgc.toml", "mlflow_base_image = 3\n", ":1: mlflow_base_image: must be an image name as a string (got 3)"),
        ("pkgc.toml", 'slim = "yes"\n', ":1: slim: must be true or false (got 'yes')"),
        ("pyproject.toml", 'tool = "x"\n', ":1: tool: must be a table"),
        ("pyproject.toml", "[tool]\npkgc = 1\n", ":2: tool.pkgc: must be a table"),
        ("pyproject.toml", "[tool.pkgc]\nregistries = [1]\n", ':2: tool.pkgc.registries: must be a table of NAME = "/path/to/registry" entries'),
    ],
)
def test_config_file_problems_name_file_line_and_key(tmp_path, name, text, expected):
    assert options_error(tmp_path, name, text) == expected


def test_registry_paths_resolve_against_the_config_folder_and_expand_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir("/")
    (tmp_path / "pkgc.toml").write_text('workspace = "ws"\n[registries]\ncorp = "shared/reg"\nmine = "~/reg"\nabs = "/srv/reg"\n')
    options = load_options(None, tmp_path, environ={})
    assert options.registries == {"corp": tmp_path / "shared" / "reg", "mine": tmp_path / "home" / "reg", "abs": Path("/srv/reg")}
    assert options.workspace == tmp_path / "ws"
    assert load_options("cli-ws", tmp_path, environ={}).workspace == Path("cli-ws")  # the command line's stays as given


def test_pyproject_without_a_pkgc_section_is_ignored(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_options(None, tmp_path, environ={}).registries == {}


def test_a_bad_config_beside_the_spec_is_exit_2_through_the_cli(tmp_path, capsys):
    (tmp_path / "pkgc.toml").write_text('registries = "x"\n')
    (tmp_path / "package.yml").write_text(package_spec("p", "e"))
    assert main(["build", str(tmp_path / "package.yml"), "--emit", "spec"]) == 2
    assert capsys.readouterr().err == f"pkgc: error: {tmp_path / 'pkgc.toml'}:1: registries: must be a table of NAME = \"/path/to/registry\" entries\n"


def create(tmp_path: Path, path: str | bytes, capsys) -> tuple[int, str]:
    workspace = tmp_path / "ws"
    code = main(["--workspace", str(workspace), "-q", "model", "create", "--name", "m", "--path", os.fsdecode(path)])
    return code, capsys.readouterr().err


def test_model_create_with_a_non_utf8_name_is_refused_before_any_write(tmp_path, capsys):
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, b"w.pkl"), "wb") as fh:
        fh.write(b"w")
    code, err = create(tmp_path, folder, capsys)
    assert code == 2 and err.startswith("pkgc: error: --path '") and err.endswith("the name is not valid UTF-8; rename it\n")
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("kind", ["link-loop", "dangling-link", "too-long", "fifo"])
def test_model_create_paths_users_get_wrong_are_exit_2(tmp_path, capsys, kind):
    target = tmp_path / "model"
    if kind == "link-loop":
        target.symlink_to("model")
    elif kind == "dangling-link":
        target.symlink_to("nowhere")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target = tmp_path / ("m" * 300)
    code, err = create(tmp_path, str(target), capsys)
    assert code == 2, err
    assert err.startswith("pkgc: error: ") and err.count("\n") == 1 and "internal error" not in err
    assert not list((tmp_path / "ws").glob("models/*/*.json"))


def test_model_create_through_a_link_to_a_file_works(tmp_path, capsys):
    (tmp_path / "w.pkl").write_bytes(b"w")
    (tmp_path / "link.pkl").symlink_to("w.pkl")
    code, err = create(tmp_path, str(tmp_path / "link.pkl"), capsys)
    assert code == 0, err


def test_a_spec_path_that_is_a_link_loop_is_exit_2(tmp_path, capsys):
    (tmp_path / "package.yml").symlink_to("package.yml")
    assert main(["build", str(tmp_path / "package.yml"), "--emit", "spec"]) == 2
    assert capsys.readouterr().err == f"pkgc: error: {tmp_path / 'package.yml'}: cannot read package spec: Too many levels of symbolic links\n"


def test_excerpt_keeps_error_lines_short_and_single():
    assert excerpt("x" * 1_000_000) == "x" * 97 + "..."
    assert excerpt("a\nb\x00c\u2028") == "a\\nb\\x00c\\u2028"
    assert excerpt("é模型") == "é模型"
    assert excerpt(12) == "12" and len(excerpt(["y" * 500])) == 100


def test_model_image_flags_on_a_copy_package_are_refused_before_any_build_work(tmp_path, capsys, monkeypatch):
    """--model-output names a readonly_mount package's model image: a copy package says so after
    resolving (the mode is known), before locking, fetching or building anything."""
    example = Path(__file__).resolve().parents[2] / "examples" / "sklearn-regression"
    workspace, out = tmp_path / "ws", tmp_path / "model-out"
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PKGC_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--workspace", str(workspace), "-q", "environment", "create", "--file",
                 str(example / "environment" / "sklearn-regression-env.yml")]) == 0  # fmt: skip
    spec = tmp_path / "package.yml"
    spec.write_text((example / "package-azure-app.yml").read_text().replace("code: src", f"code: {example / 'src'}"))
    capsys.readouterr()
    code = main(["--workspace", str(workspace), "build", str(spec), "--model", str(example / "model"), "--model-output", f"oci:{out}"])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"pkgc: error: {spec}:12: model_configuration.mode: is copy: the model is inside the image; "
        "--model-output/--model-push are for readonly_mount packages"
    )
    assert not out.exists() and not (tmp_path / "package.conda-lock.yml").exists() and not (tmp_path / "cache" / "oci").exists()
