"""A base image whose Python already has packages (as Azure ML's curated and custom-container images
do): the package's scoring script imports one the environment does not install, the SBOM lists the
base's packages, and a package the lock installs at another version is reported at build time."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import docker
import pytest

from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine

BASE = "pkgc-e2e/base-with-site-packages:1"
SCORE = '''import json
import six  # installed in the base image's own Python, not by the environment


def init():
    pass


def run(raw):
    return {"six": six.__version__, "sum": sum(json.loads(raw)["data"])}
'''


@pytest.fixture(scope="module")
def base_with_packages(base_image, tmp_path_factory) -> str:
    """pkgc's offline base plus six and an older joblib unpacked into /usr/local's dist-packages."""
    root = tmp_path_factory.mktemp("base-site")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels), "six==1.16.0", "joblib==1.3.2"], check=True)  # fmt: skip
    site = root / "context" / "site"
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
    (root / "context" / "Dockerfile").write_text(
        f"FROM {base_image}\nCOPY site/ /usr/local/lib/python3.11/dist-packages/\n"
    )
    client = docker.from_env()
    try:
        client.images.build(path=str(root / "context"), tag=BASE, rm=True, network_mode="none")
    finally:
        client.close()
    return BASE


def test_the_bases_own_packages_are_importable_listed_and_checked(base_with_packages, session_env, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("1\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE)
    (tmp_path / "conda.yaml").write_text("name: site\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - joblib==1.6.0\n")
    deployment = tmp_path / "deployment.yml"
    deployment.write_text(
        "name: blue\nendpoint_name: base-site\nmodel:\n  path: model/weights.txt\n"
        "code_configuration:\n  code: src\n  scoring_script: score.py\n"
        f"environment:\n  image: {base_with_packages}\n  conda_file: conda.yaml\n"
    )
    built = run_pkgc("build", str(deployment), "--builder", "oci", "--json", env=session_env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "joblib 1.3.2 (/usr/local/lib/python3.11/dist-packages) is shadowed by the lock's joblib 1.6.0" in built.stderr
    image = json.loads(built.stdout)["image"]
    (tmp_path / "request.json").write_text(json.dumps({"data": [1, 2, 3.5]}))
    (tmp_path / "expected.json").write_text(json.dumps({"six": "1.16.0", "sum": 6.5}))
    verified = run_pkgc("verify", image, "--request-file", str(tmp_path / "request.json"),
                        "--expect", str(tmp_path / "expected.json"), env=session_env)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr[-3000:]
    sbom = json.loads(run_pkgc("sbom", image, env=session_env).stdout)
    base = next(c for c in sbom["components"] if c.get("bom-ref") == "base-image")
    nested = {(c["name"], c["version"]) for c in base.get("components", [])}
    assert {("six", "1.16.0"), ("joblib", "1.3.2")} <= nested
    top = {(c["name"], c["version"]) for c in sbom["components"] if c.get("purl", "").startswith("pkg:pypi/")}
    assert ("joblib", "1.6.0") in top and ("six", "1.16.0") not in top  # the lock's, at the top level
