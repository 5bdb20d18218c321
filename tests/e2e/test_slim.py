"""``--slim`` proven safe on the bundled example: one slim build by the docker back end (whose venv
carries pip and setuptools from ``python3 -m venv``) serves exactly the predictions of the session's
default build, without the installers, test folders, or a RECORD line pointing at a missing file."""

from __future__ import annotations

import json

import pytest

from compiler.labels import SLIM
from compiler.runtime.http import request
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.test_example_package import host_predictions, serve

pytestmark = pytest.mark.engine

INSPECT = """
import importlib.metadata as m, importlib.util as u, json, pathlib
names = sorted(d.metadata["Name"].lower() for d in m.distributions())
missing = [str(f) for d in m.distributions() for f in (d.files or []) if not pathlib.Path(f.locate()).exists()]
site = pathlib.Path(u.find_spec("sklearn").origin).parent.parent
print(json.dumps({"names": names, "missing": missing, "importable": [n for n in ("pip", "setuptools", "pkg_resources") if u.find_spec(n)],
                  "tests": sorted(str(p.relative_to(site)) for p in site.glob("*/tests")),
                  "testing": (site / "numpy" / "testing").is_dir(), "scripts": sorted(p.name for p in pathlib.Path("/opt/pkgc/venv/bin").iterdir())}))
"""


@pytest.fixture(scope="module")
def slim_package(registered, session_env, example_copy) -> dict:
    spec = example_copy / "package-azure-app.yml"
    proc = run_pkgc("build", str(spec), "--model", registered["model"], "--slim", "--builder", "docker",
                    "--target-environment", "pkgc-slim-sklearn", "--json", env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_slim_package_serves_the_same_predictions_without_installers_or_tests(slim_package, copy_package, example_copy, engine, containers):
    assert slim_package["slim"] is True and copy_package["slim"] is False
    assert engine.image_info(slim_package["image"]).labels[SLIM] == "true"
    assert SLIM not in engine.image_info(copy_package["image"]).labels
    body = (example_copy / "sample-request.json").read_bytes()
    answers = []
    for result in (copy_package, slim_package):
        port = free_port()
        serve(engine, containers, result["image"], port)
        answers.append(request(f"http://127.0.0.1:{port}/score", data=body).json())
    assert answers[0] == answers[1] == pytest.approx(host_predictions(example_copy), rel=1e-12)

    code, output = engine.run_command(slim_package["image"], ["/opt/pkgc/venv/bin/python", "-c", INSPECT])
    assert code == 0, output
    facts = json.loads(output)
    assert not {"pip", "setuptools", "wheel"} & set(facts["names"]) and facts["importable"] == []
    assert {"scikit-learn", "numpy", "azureml-inference-server-http"} <= set(facts["names"])
    assert facts["missing"] == []  # RECORDs rewritten: importlib.metadata lists no removed file
    assert facts["tests"] == [] and facts["testing"] is True  # numpy.testing is API, not a test folder
    assert not [s for s in facts["scripts"] if s.startswith(("pip", "wheel"))] and "azmlinfsrv" in facts["scripts"]
    report = json.loads(engine.read_file(slim_package["image"], "/opt/pkgc/venv/pkgc-slim.json", 1 << 20))
    assert {"pip", "setuptools"} <= set(report["removed_distributions"]) and report["removed_bytes"] > 20e6
    assert slim_package["size_bytes"] < copy_package["size_bytes"] - 20e6

