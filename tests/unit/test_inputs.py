"""``inputs:`` (Azure SDK ModelPackageInput): loaded, stored like models, planned after the model (copy) or
as read-only mounts (labels, entrypoint variable), and read back from labels as untrusted input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import ResolveError, SpecError
from compiler.fetch.cache import FetchedFiles
from compiler.labels import PackageLabels
from compiler.lock.types import Lock, LockedPackage
from compiler.options import Options
from compiler.package_inputs import INPUTS, INPUTS_MODE, from_labels
from compiler.plan import ContextFile, plan_image
from compiler.resolve import resolve_package
from compiler.runtime.run import input_mounts
from compiler.spec import load_package_spec
from compiler.workspace import Workspace
from tests.conftest import EXAMPLE, package_spec

INPUTS_YAML = """inputs:
  - type: uri_file
    path: assets/labels.json
    mode: readonly_mount
    mount_path: /var/azureml-app/inputs/labels.json
  - type: uri_folder
    path:
      input_path_type: url
      url: assets/tokenizer
    mount_path: /var/azureml-app/inputs/tokenizer
"""


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copytree(EXAMPLE / "src", tmp_path / "src")
    (tmp_path / "assets" / "tokenizer").mkdir(parents=True)
    (tmp_path / "assets" / "labels.json").write_text('{"0": "cat"}')
    (tmp_path / "assets" / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    env = tmp_path / "env.yml"
    env.write_text(f"name: e\nimage: pkgc/base-debian-bookworm:latest\nconda_file: {EXAMPLE / 'environment' / 'conda.yaml'}\n")
    from compiler.workspace.envfile import create_environment_from_file

    ws = Workspace(tmp_path / "ws")
    create_environment_from_file(env, ws)
    ws.create_model("m", EXAMPLE / "model")
    return tmp_path


def write_spec(project: Path, mode: str, inputs: str = INPUTS_YAML) -> Path:
    spec = project / "package.yml"
    spec.write_text(package_spec("inputs-pkg", "e", mode) + "model: azureml:m:1\n" + inputs)
    return spec


def plan(project: Path, mode: str, inputs: str = INPUTS_YAML):
    spec_file = load_package_spec(write_spec(project, mode, inputs))
    options = Options(workspace=project / "ws", cache_dir=project / "cache")
    pkg = resolve_package(spec_file, None, Workspace(project / "ws"), options)
    wheel = LockedPackage("joblib", "1.6.0", "pip", "https://f/joblib-1.6.0-py3-none-any.whl", "joblib-1.6.0-py3-none-any.whl", "cd" * 32)
    strategy = EnvironmentStrategy("venv", "3.11", "test", ("joblib==1.6.0",))
    return pkg, plan_image(pkg, strategy, Lock("venv", "3.11", "ef" * 32, (wheel,)), ContextFile("pkgc/conda-lock.yml", data=b""),
                           FetchedFiles({wheel.sha256: project / wheel.filename}), "pkgc/inputs-pkg:1")  # fmt: skip


def test_copy_mode_copies_each_input_after_the_model(project):
    pkg, image = plan(project, "copy")
    assert [c.kind for c in image.copies] == ["environment", "runtime", "runtime", "runtime", "model", "inputs", "inputs", "code"]
    copies = [c for c in image.copies if c.kind == "inputs"]
    assert [c.dest for c in copies] == ["/var/azureml-app/inputs/labels.json", "/var/azureml-app/inputs/tokenizer"]
    assert [c.src for c in copies] == ["inputs/0/content", "inputs/1/content"]  # pkgc's names in the context
    sources = {f.dest: f.source for f in image.files}
    assert sources["inputs/0/content"].read_text() == '{"0": "cat"}' and (sources["inputs/1/content"] / "vocab.txt").is_file()
    assert "PKGC_INPUT_PATHS" not in image.config.env
    mode, places = from_labels("img", image.config.labels)
    assert mode == "copy" and [p.type for p in places] == ["uri_file", "uri_folder"]


def test_readonly_mount_expects_mounts_and_pkgc_run_mounts_stored_trees(project):
    pkg, image = plan(project, "readonly_mount")
    assert "inputs" not in [c.kind for c in image.copies]
    assert image.config.env["PKGC_INPUT_PATHS"] == "/var/azureml-app/inputs/labels.json,/var/azureml-app/inputs/tokenizer"
    labels = PackageLabels.from_labels("img", image.config.labels)
    mounts = input_mounts("img", labels, Workspace(project / "ws"))
    assert [(m.target, m.read_only) for m in mounts] == [
        ("/var/azureml-app/inputs/labels.json", True), ("/var/azureml-app/inputs/tokenizer", True)]
    assert mounts[0].source.read_text() == '{"0": "cat"}' and mounts[1].source.is_dir()


def test_a_missing_stored_input_is_refused(project):
    _, image = plan(project, "readonly_mount")
    labels = PackageLabels.from_labels("img", image.config.labels)
    with pytest.raises(ResolveError, match="is not in workspace"):
        input_mounts("img", labels, Workspace(project / "empty-ws"))


@pytest.mark.parametrize("value", ["uri_file:sha256:" + "a" * 64 + ":/etc/passwd", "uri_file:sha256:" + "a" * 64 + ":relative",
                                   "uri_dir:sha256:" + "a" * 64 + ":/var/azureml-app/x", "uri_file:sha256:../../x:/var/azureml-app/x"])  # fmt: skip
def test_hostile_input_labels_are_refused(value):
    with pytest.raises(ResolveError, match="label io.pkgc.inputs"):
        from_labels("img", {INPUTS: value, INPUTS_MODE: "readonly_mount"})


BAD = {
    "type mismatch": ("  - type: uri_file\n    path: assets/tokenizer\n    mount_path: /var/azureml-app/t\n",
                      "inputs[0].path: 'assets/tokenizer' is not a file (uri_file needs a file)"),
    "missing": ("  - type: uri_folder\n    path: assets/nothing\n    mount_path: /var/azureml-app/t\n",
                "inputs[0].path: 'assets/nothing' does not exist"),
    "over the model": ("  - type: uri_folder\n    path: assets/tokenizer\n    mount_path: /var/azureml-app/azureml-models\n",
                       "inputs[0].mount_path: must not be inside or above the model's folder"),
    "system folder": ("  - type: uri_folder\n    path: assets/tokenizer\n    mount_path: /etc/x\n",
                      "inputs[0].mount_path: must not be inside or above /etc"),
    "code folder": ("  - type: uri_folder\n    path: assets/tokenizer\n    mount_path: /var/azureml-app/src/t\n",
                    "inputs[0].mount_path: must not be inside or above the code folder"),
    "two at one place": ("  - type: uri_folder\n    path: assets/tokenizer\n    mount_path: /var/azureml-app/t\n"
                         "  - type: uri_file\n    path: assets/labels.json\n    mount_path: /var/azureml-app/t/l.json\n",
                         "inputs[1].mount_path: must not be inside or above another input"),
    "data asset": ("  - type: uri_folder\n    path:\n      input_path_type: path_id\n      resource_id: azureml:data:1\n"
                   "    mount_path: /var/azureml-app/t\n", "inputs[0].path: data assets (path_id, path_version) are not in pkgc's workspace"),
    "bad mode": ("  - type: uri_folder\n    path: assets/tokenizer\n    mode: rw_mount\n    mount_path: /var/azureml-app/t\n",
                 "inputs[0].mode"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_name_the_key_and_line(project, case):
    inputs, message = BAD[case]
    with pytest.raises(SpecError) as caught:
        plan(project, "copy", "inputs:\n" + inputs)
    line = caught.value.lines()[0]
    where, _, rest = line.partition(": ")
    assert message in rest and where.startswith(f"{project / 'package.yml'}:") and where.rsplit(":", 1)[1].isdigit(), line


def test_deploy_settings_mount_the_inputs_read_only(project):
    from compiler.deploy.settings import app_service, deploy_facts, kubernetes

    _, image = plan(project, "readonly_mount")
    facts = deploy_facts("img", image.config.labels)
    pod = kubernetes(facts).data["objects"][0]["spec"]["template"]["spec"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert mounts[1:] == [
        {"name": "input-0", "mountPath": "/var/azureml-app/inputs/labels.json", "readOnly": True, "subPath": "labels.json"},
        {"name": "input-1", "mountPath": "/var/azureml-app/inputs/tokenizer", "readOnly": True}]
    assert [v["persistentVolumeClaim"]["readOnly"] for v in pod["volumes"]] == [True, True, True]
    assert sum("--custom-id input" in c for c in app_service(facts).data["commands"]) == 2
    _, copied = plan(project, "copy")
    assert "volumes" not in kubernetes(deploy_facts("img", copied.config.labels)).data["objects"][0]["spec"]["template"]["spec"]
