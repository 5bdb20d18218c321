"""Names and values users choose reach the running package byte for byte (issue 8, item 5).

One lean build: a code folder, a model folder (with a file and a link inside), a mount path and
environment values full of non-ASCII, ``[`` ``]`` ``$``, spaces, quotes and backslashes; the package
is started with ``pkgc run`` and its own score.py reports what it sees inside the container.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from compiler.runtime.http import request
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.engine

TRICKY = "ünï 中文 [x] $HOME ${PATH} 'q' \"dq\" back\\slash"
CODE_FOLDER = f"cödé {TRICKY}"
MODEL_FOLDER = f"mödel {TRICKY}"
MODEL_FILE = "wéights [1] $X.txt"
MOUNT_PATH = f"/var/azureml-app/models {TRICKY}"
ENVIRONMENT = {
    "UNICODE": "ünïcödé 中文 😀",
    "EXPANSION": "[a] $HOME ${PATH} $ \\$ $(id) `id`",
    "QUOTES": "it's \"quoted\" '' \"",
    "BACKSLASHES": "C:\\path\\to\\ \\\\server\\ end\\",
    "WHITESPACE": "  lead\ttab\rcr  ",
    "COMMENT": "# not a comment",
    "EMPTY": "",
}

SCORE = '''
import json, os

def init():
    pass

def run(raw_data):
    keys = json.loads(raw_data)["keys"]
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    folder = os.path.join(model_dir, os.listdir(model_dir)[0])
    return {
        "env": {k: os.environ.get(k) for k in keys},
        "model_dir": model_dir,
        "model_dir_entries": os.listdir(model_dir),
        "model_files": {n: open(os.path.join(folder, n), encoding="utf-8").read() for n in sorted(os.listdir(folder))},
        "links": [n for n in os.listdir(folder) if os.path.islink(os.path.join(folder, n))],
        "cwd": os.getcwd(),
        "cwd_score": os.path.realpath("score.py"),
        "script": os.path.abspath(__file__),
        "app_root": os.environ.get("AML_APP_ROOT"),
    }
'''


@pytest.fixture
def tricky_package(tmp_path, registered, session_env, engine):
    code = tmp_path / CODE_FOLDER
    code.mkdir()
    (code / "score.py").write_text(SCORE)
    model = tmp_path / MODEL_FOLDER
    model.mkdir()
    (model / MODEL_FILE).write_text("weights ✓\n", encoding="utf-8")
    os.symlink(MODEL_FILE, model / "läst [link]")  # a link inside the tree: stored as the file it names
    spec = {
        "base_environment_source": {"type": "environment_asset", "resource_id": "azureml:sklearn-regression-env@latest"},
        "target_environment": "pkgc-hb-escaping",
        "inferencing_server": {"type": "azureml_online", "code_configuration": {"code": CODE_FOLDER, "scoring_script": "score.py"}},
        "model_configuration": {"mode": "copy", "mount_path": MOUNT_PATH},
        "model": {"path": MODEL_FOLDER, "name": "escaping-model", "version": "1"},
        "environment_variables": ENVIRONMENT,
    }
    spec_path = tmp_path / "package.yml"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    proc = run_pkgc("build", str(spec_path), "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    yield result
    for tag in {result["image"], result.get("content_tag")} - {None}:
        engine.remove_image(tag)


def test_tricky_names_and_values_arrive_byte_for_byte(tricky_package, session_env, engine):
    port = free_port()
    name = "pkgc-hb-escaping"
    proc = run_pkgc("run", tricky_package["image"], "--port", str(port), "--name", name, "--detach", "--json", env=session_env)
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        body = json.dumps({"keys": sorted(ENVIRONMENT)}).encode()
        response = request(f"http://127.0.0.1:{port}/score", data=body)
        assert response.status == 200
        seen = json.loads(response.body)
    finally:
        engine.stop(name)
    assert seen["env"] == ENVIRONMENT
    assert seen["model_dir"] == MOUNT_PATH
    assert seen["model_dir_entries"] == [MODEL_FOLDER]
    assert seen["model_files"] == {"läst [link]": "weights ✓\n", MODEL_FILE: "weights ✓\n"}
    assert seen["links"] == []  # dereferenced when stored
    container_code = f"/var/azureml-app/{CODE_FOLDER}"
    # the code folder is read-only: the server starts in a writable folder showing its entries (README)
    assert seen["app_root"] == container_code and seen["cwd"] == "/tmp/pkgc-work"
    assert seen["cwd_score"] == f"{container_code}/score.py"
    assert seen["script"] == f"{container_code}/score.py"
    labels = engine.image_info(tricky_package["image"]).labels
    assert labels["io.pkgc.model.dir"] == MOUNT_PATH
