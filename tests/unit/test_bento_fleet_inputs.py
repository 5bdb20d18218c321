"""bench/bento_fleet.py's inputs to BentoML: the environments' pip packages (conda packages refused) and
the bentofile each package gets (the full fleet against BentoML is `bench/fleet.py --bentoml-fleet`)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import yaml

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("bento_fleet", ROOT / "bench" / "bento_fleet.py")
bento_fleet = importlib.util.module_from_spec(_spec)
sys.modules["bento_fleet"] = bento_fleet  # its dataclasses look their module up
_spec.loader.exec_module(bento_fleet)

CONDA = ROOT / "examples" / "sklearn-regression" / "environment" / "conda.yaml"


def test_the_example_environment_gives_its_pip_packages():
    expected = yaml.safe_load(CONDA.read_text())["dependencies"][-1]["pip"]
    assert bento_fleet.pip_packages(CONDA) == expected
    assert any(p.startswith("scikit-learn==") for p in expected)


def test_a_variant_adds_its_package(tmp_path):
    variant = tmp_path / "conda.yaml"
    variant.write_text(CONDA.read_text() + "      - six==1.17.0\n")  # as bench/fleet.py writes environment 1
    assert bento_fleet.pip_packages(variant) == [*bento_fleet.pip_packages(CONDA), "six==1.17.0"]


def test_a_conda_package_bentoml_cannot_take_is_refused_naming_the_file(tmp_path):
    other = tmp_path / "conda.yaml"
    other.write_text("dependencies:\n  - python=3.11\n  - libgomp\n  - pip:\n      - numpy==2.4.6\n")
    with pytest.raises(SystemExit) as refused:
        bento_fleet.pip_packages(other)
    assert str(other) in str(refused.value) and "libgomp" in str(refused.value)


def test_the_bentofile_names_service_packages_base_and_model():
    text = bento_fleet.bentofile(["numpy==2.4.6", "six==1.17.0"], "peer/bento-base:3.11.7-slim", "fleet-ridge-m3:v1")
    parsed = yaml.safe_load(text)
    assert parsed["service"] == "service:RidgeRegressor" and parsed["include"] == ["service.py"]
    assert parsed["python"]["packages"] == ["numpy==2.4.6", "six==1.17.0"]
    assert parsed["docker"]["base_image"] == "peer/bento-base:3.11.7-slim"
    assert parsed["models"] == [{"tag": "fleet-ridge-m3:v1", "alias": "ridge"}]
    compile(bento_fleet.SERVICE, "service.py", "exec")  # the service the bento carries is Python
