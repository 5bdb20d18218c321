"""The conda path end to end: a conda file naming a local file:// channel (packages made by the
test, no conda channel is reachable here) plus python, pip and a pip package; built by the real
``pkgc build`` on both back ends (the Dockerfile back end links it inside a builder stage, the OCI
back end on the host for the in-image prefix), run in the engine, and scored: the scoring script
imports the conda package, reads its data file and runs its entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from compiler.runtime.http import request as request_url, wait_ready
from tests.conftest import package_spec, run_pkgc
from tests.e2e.conda_channel import build_channel, demo_packages
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.engine

SCORE = '''"""Proves the conda package is installed: module, data file (another conda package), entry point."""
import json
import os
import subprocess
import sys

import pkgc_demo
import six

factor = None


def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "factor.txt")) as fh:
        factor = int(fh.read())


def run(raw_data):
    return {
        "origin": pkgc_demo.ORIGIN,
        "greeting": pkgc_demo.greeting(),
        "module": pkgc_demo.__file__,
        "entry_point": subprocess.run(["pkgc-demo"], capture_output=True, text=True).stdout.strip(),
        "six": six.__version__,
        "prefix": sys.prefix,
        "scaled": [factor * x for x in json.loads(raw_data)["data"]],
    }
'''



@pytest.fixture(scope="module")
def project(tmp_path_factory, base_image) -> Path:
    root = tmp_path_factory.mktemp("conda-path")
    channel = build_channel(root / "channel", demo_packages())
    (root / "env").mkdir()
    conda_file = {
        "name": "conda-demo",
        "channels": [channel.url],
        "dependencies": ["python=3.11", "pip", "pkgc-demo=1", {"pip": ["six==1.16.0"]}],
    }
    (root / "env" / "conda.yaml").write_text(json.dumps(conda_file, indent=2))
    (root / "env" / "env.yml").write_text(f"name: conda-demo-env\nimage: {base_image}\nconda_file: conda.yaml\n")
    (root / "model").mkdir()
    (root / "model" / "factor.txt").write_text("3\n")
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    (root / "package.yml").write_text(package_spec("conda-demo-pkg", "conda-demo-env"))
    return root


@pytest.fixture(scope="module")
def registered(project, session_env) -> tuple[str, str]:
    """The spec and the model reference, registered and locked (lock first, as a user would)."""
    model = run_pkgc("-q", "model", "create", "--name", "conda-demo", "--path", str(project / "model"), env=session_env)
    assert model.returncode == 0, model.stderr
    environment = run_pkgc("-q", "environment", "create", "--file", str(project / "env" / "env.yml"), env=session_env)
    assert environment.returncode == 0, environment.stderr
    spec, ref = str(project / "package.yml"), model.stdout.strip()
    locked = run_pkgc("lock", spec, "--model", ref, env=session_env)
    assert locked.returncode == 0, locked.stderr[-3000:]
    return spec, ref


def build(registered, session_env, *flags: str) -> dict:
    spec, ref = registered
    proc = run_pkgc("build", spec, "--model", ref, "--json", *flags, env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def conda_package(registered, session_env) -> dict:
    """Built by the Dockerfile back end: py-rattler links the environment inside the builder stage."""
    built = build(registered, session_env, "--builder", "docker")
    assert built["builder"] == "docker"
    return built


@pytest.fixture(scope="module")
def conda_package_oci(registered, session_env) -> dict:
    """Built by the OCI back end (the default): py-rattler links the environment on the host for /opt/pkgc/env."""
    built = build(registered, session_env)
    assert built["builder"] == "oci" and built["loaded"] is True
    return built


BOTH = pytest.mark.parametrize("built", ["conda_package", "conda_package_oci"])


@BOTH
def test_the_conda_package_serves_from_the_scoring_script(built, request, engine, containers):
    package = request.getfixturevalue(built)
    port = free_port()
    handle = engine.run(package["image"], 5001, port, [], {})
    containers.append(handle.container_id)
    wait_ready(f"http://127.0.0.1:{port}/", 90, lambda: engine.container_running(handle.container_id))
    response = request_url(f"http://127.0.0.1:{port}/score", data=json.dumps({"data": [1, 2]}).encode())
    assert response.status == 200, response.body[-2000:]
    answer = response.json()
    assert answer["origin"] == "conda"  # pkgc-demo 1.2.0, not 0.9.0 or 2.0.0
    assert answer["greeting"] == "hello from a conda package"  # the file of pkgc-demo-data, a conda dependency
    assert answer["entry_point"] == "hello from a conda package"  # bin/pkgc-demo made from the entry point
    assert answer["module"] == "/opt/pkgc/env/lib/python3.11/site-packages/pkgc_demo/__init__.py"
    assert answer["prefix"] == "/opt/pkgc/env" and answer["six"] == "1.16.0"
    assert answer["scaled"] == [3, 6]


def test_the_build_locks_the_conda_packages(conda_package, project):
    assert conda_package["environment_strategy"] == "conda" and conda_package["python"] == "3.11"
    lock = yaml.safe_load(Path(conda_package["lock_file"]).read_text())
    conda = {p["name"]: p for p in lock["package"] if p["manager"] == "conda"}
    assert set(conda) == {"pkgc-demo", "pkgc-demo-data"}  # python and pip: the base image's
    assert conda["pkgc-demo"]["version"] == "1.2.0" and conda["pkgc-demo"]["hash"]["md5"]
    assert any(p["name"] == "six" and p["manager"] == "pip" for p in lock["package"])


@BOTH
def test_the_image_holds_the_environment_but_not_the_installer(built, request, engine):
    script = (
        "ls /opt/pkgc/env/conda-meta && test ! -e /tmp/pkgc"
        " && ! /opt/pkgc/env/bin/python -c 'import rattler' 2>/dev/null && echo no-installer"
        " && head -1 /opt/pkgc/env/bin/pkgc-demo"
    )
    if built == "conda_package_oci":  # the Dockerfile back end leaves conda-meta root-only (0600)
        script += " && cat /opt/pkgc/env/conda-meta/pkgc-demo-1.2.0-pyh0_0.json"
    code, out = engine.run_command(request.getfixturevalue(built)["image"], ["sh", "-c", script])
    assert code == 0, out
    assert "pkgc-demo-1.2.0-pyh0_0.json" in out and "pkgc-demo-data-1.0-0.json" in out
    assert "no-installer\n#!/opt/pkgc/env/bin/python3.11\n" in out  # the entry point runs the in-image Python
    if built == "conda_package_oci":  # linked on the host: no host path of rattler's cache, the lock's URL
        assert "extracted_package_dir" not in out and '"url": "file://' in out


def test_the_oci_image_matches_the_docker_image(conda_package, conda_package_oci, engine):
    docker_info, oci_info = engine.image_info(conda_package["image"]), engine.image_info(conda_package_oci["image"])
    assert oci_info.labels == docker_info.labels and set(oci_info.env) == set(docker_info.env)


def test_an_unchanged_rebuild_reuses_the_image(conda_package, registered, session_env):
    again = build(registered, session_env, "--builder", "docker")
    assert again["reused"] and again["content_hash"] == conda_package["content_hash"]


def test_the_conda_environment_is_reassembled_bit_for_bit(conda_package_oci, registered, session_env):
    again = build(registered, session_env, "--no-cache")  # the environment layer linked again from scratch
    assert again["manifest_digest"] == conda_package_oci["manifest_digest"] and again["reused"]
