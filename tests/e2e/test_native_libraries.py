"""Native libraries, for real: a LightGBM model (its wheel links libgomp.so.1 without bundling it)
served from the offline base, which carries libgomp1, with the host's predictions; and the same
package on a base without libgomp1 stopped at build time, naming package, library and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine

SCORE = '''import json, os
import lightgbm
import numpy


def init():
    global booster
    booster = lightgbm.Booster(model_file=os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt"))


def run(raw):
    rows = numpy.array(json.loads(raw)["data"], dtype=float)
    return booster.predict(rows).tolist()
'''


def _deployment(root: Path, base: str) -> Path:
    """An online deployment of a LightGBM model trained on the host, its environment inline."""
    lightgbm = pytest.importorskip("lightgbm")
    numpy = pytest.importorskip("numpy")
    rng = numpy.random.default_rng(7)
    x = rng.normal(size=(200, 4))
    y = x @ numpy.array([1.5, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=200)
    booster = lightgbm.train({"objective": "regression", "verbose": -1, "num_threads": 1}, lightgbm.Dataset(x, y), 20)
    (root / "model").mkdir(parents=True)
    booster.save_model(str(root / "model" / "model.txt"))
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    (root / "conda.yaml").write_text(f"name: lgbm\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
                                     f"    - lightgbm=={lightgbm.__version__}\n    - numpy=={numpy.__version__}\n")  # fmt: skip
    rows = x[:5].round(4).tolist()
    (root / "request.json").write_text(json.dumps({"data": rows}))
    (root / "expected.json").write_text(json.dumps(booster.predict(numpy.array(rows)).tolist()))
    deployment = root / "deployment.yml"
    deployment.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\n"
        "name: blue\nendpoint_name: lgbm-native\nmodel:\n  path: model/model.txt\n"
        "code_configuration:\n  code: src\n  scoring_script: score.py\n"
        f"environment:\n  image: {base}\n  conda_file: conda.yaml\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n"
    )
    return deployment


def test_lightgbm_serves_from_the_offline_base(base_image, session_env, tmp_path):
    deployment = _deployment(tmp_path, "pkgc/base-debian-bookworm:latest")
    built = run_pkgc("build", str(deployment), "--builder", "oci", "--json", env=session_env)
    assert built.returncode == 0, built.stderr[-3000:]
    image = json.loads(built.stdout)["image"]
    verified = run_pkgc("verify", image, "--request-file", str(tmp_path / "request.json"),
                        "--expect", str(tmp_path / "expected.json"), "--rel-tol", "1e-9", env=session_env)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr[-3000:]


def test_a_base_without_libgomp_stops_the_build_naming_the_fix(engine, session_env, tmp_path):
    from compiler.baseimages.build import build_base_image

    base = build_base_image("debian-bookworm-pytriton", engine, lambda _line: None).image  # no libgomp1 in it
    deployment = _deployment(tmp_path, base)
    built = run_pkgc("-q", "build", str(deployment), "--builder", "oci", env=session_env)
    assert built.returncode == 2, built.stderr[-3000:]
    lines = [line for line in built.stderr.splitlines() if line.startswith("pkgc: error")]
    assert len(lines) == 1 and "Traceback" not in built.stderr, built.stderr
    assert "lightgbm needs libgomp.so.1" in lines[0] and "lib_lightgbm.so" in lines[0]
    assert base in lines[0] and "libgomp1" in lines[0]
