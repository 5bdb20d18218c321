"""A user's own server pin inside the supported range, and a package published only as a source
distribution (docopt 0.6.2 has no wheel), built into one package that serves real predictions."""

from __future__ import annotations

import json
import shutil

import docker
import pytest
from conda_lock.lockfile import parse_conda_lock_file

from compiler.runtime.http import request
from tests.conftest import EXAMPLE, package_spec, run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.test_example_package import host_predictions, serve

pytestmark = pytest.mark.engine


def test_user_server_pin_and_an_sdist_only_package_build_and_serve(registered, session_env, engine, containers, tmp_path):
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("*.conda-lock.yml", "__pycache__"))
    conda = example / "environment" / "conda.yaml"
    conda.write_text(conda.read_text().replace(
        "joblib==1.6.0", "joblib==1.6.0\n      - azureml-inference-server-http==1.4.1\n      - docopt==0.6.2"
    ))  # fmt: skip
    env_file = example / "environment" / "sklearn-regression-env.yml"
    env_file.write_text(env_file.read_text().replace("name: sklearn-regression-env", "name: server-pin-env"))
    assert run_pkgc("environment", "create", "--file", str(env_file), env=session_env).returncode == 0
    spec = example / "package.yml"
    spec.write_text(package_spec("pkgc-he-server-pin", "server-pin-env"))

    proc = run_pkgc("build", str(spec), "--model", registered["model"], "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "inference server: azureml-inference-server-http==1.4.1,<2,>=1.3: your " in proc.stderr
    lock = {p.name: p for p in parse_conda_lock_file(example / "package.conda-lock.yml").package}
    assert lock["azureml-inference-server-http"].version == "1.4.1"
    assert lock["docopt"].url.endswith("/docopt-0.6.2.tar.gz")  # the sdist, with its own hash
    assert lock["docopt"].hash.sha256 == "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"

    port = free_port()
    handle = serve(engine, containers, json.loads(proc.stdout)["image"], port)
    body = (example / "sample-request.json").read_bytes()
    response = request(f"http://127.0.0.1:{port}/score", data=body)
    assert json.loads(response.body) == pytest.approx(host_predictions(example), rel=1e-12)
    probe = "import docopt, importlib.metadata as m; print(m.version('azureml-inference-server-http'), docopt.__version__)"
    out = docker.from_env().containers.get(handle.container_id).exec_run(["python3", "-c", probe])
    assert out.output.decode().split() == ["1.4.1", "0.6.2"]
