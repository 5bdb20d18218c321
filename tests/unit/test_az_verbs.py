"""The verbs and flags users type with ``az ml``: model package, model/environment create spellings."""

from __future__ import annotations

import argparse
import json

import pytest

from compiler.commands.package import build_arguments, model_reference
from compiler.errors import SpecError
from tests.conftest import EXAMPLE, run_pkgc


def test_model_reference_forms():
    assert model_reference("sk", "3", None, None) == "azureml:sk:3"
    assert model_reference("sk", None, "latest", None) == "azureml:sk@latest"
    assert model_reference("sk", "2", None, "corp") == "azureml://registries/corp/models/sk/versions/2"
    assert model_reference("sk", None, "latest", "corp") == "azureml://registries/corp/models/sk/labels/latest"
    with pytest.raises(SpecError, match="--name"):
        model_reference("../x", "1", None, None)


def test_model_package_is_a_build_with_the_model_named():
    args = argparse.Namespace(spec="package.yml", name="sk", version=None, label="latest", registry_name=None, json=True,
                              relock=False, no_cache=False, verify=True, output=["oci:out"], base_image="img",
                              lock_file=None, template=None, python_version=None, push=None, deploy_settings=None,
                              target_environment=None, write_deployment=None, request_file="r.json", expect=None)  # fmt: skip
    assert build_arguments(args) == ["build", "package.yml", "--model", "azureml:sk@latest", "--json", "--verify",
                                     "--output", "oci:out", "--base-image", "img", "--request-file", "r.json"]  # fmt: skip


def test_az_spellings_for_create(tmp_path):
    env = {"PKGC_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"}
    proc = run_pkgc("model", "create", "-n", "sk", "-v", "5", "-p", str(EXAMPLE / "model"), "--type", "custom_model", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["name"], json.loads(proc.stdout)["version"]) == ("sk", "5")
    model_yml = tmp_path / "model.yml"
    model_yml.write_text(f"$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\nname: from-file\n"
                         f"path: {EXAMPLE / 'model'}\ntype: custom_model\ndescription: d\n")  # fmt: skip
    proc = run_pkgc("model", "create", "-f", str(model_yml), "-v", "2", env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "azureml:from-file:2", proc.stderr
    model_yml.write_text("name: x\npath: m\nflavour: sklearn\n")
    proc = run_pkgc("model", "create", "--file", str(model_yml), env=env)
    assert proc.returncode == 2 and f"{model_yml}:3: flavour: unknown key" in proc.stderr
    proc = run_pkgc("model", "create", "-n", "x", env=env)
    assert proc.returncode == 2 and "--path required" in proc.stderr
    env_file = EXAMPLE / "environment" / "sklearn-regression-env.yml"
    proc = run_pkgc("environment", "create", "-f", str(env_file), "-n", "renamed", "-v", "9", env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "azureml:renamed:9", proc.stderr
    conda = EXAMPLE / "environment" / "conda.yaml"
    proc = run_pkgc("environment", "create", "-n", "flags", "--image", "pkgc/base-debian-bookworm:latest", "--conda-file", str(conda), env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "azureml:flags:1", proc.stderr
    proc = run_pkgc("environment", "create", "-n", "flags", "--image", "img", "--conda-file", "missing.yml", env=env)
    assert proc.returncode == 2 and "conda_file: conda file 'missing.yml' not found" in proc.stderr
    proc = run_pkgc("environment", "create", "-n", "flags", env=env)
    assert proc.returncode == 2 and "(or --name and --image) is required" in proc.stderr


def test_model_package_refuses_a_spec_that_names_a_model_too(tmp_path):
    env = {"PKGC_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"}
    spec = tmp_path / "package.yml"
    spec.write_text((EXAMPLE / "package-moe.yml").read_text().replace("code: src", f"code: {EXAMPLE / 'src'}") + "model: azureml:other:1\n")
    proc = run_pkgc("model", "package", "-n", "sk", "-l", "latest", "-f", str(spec), env=env)
    assert proc.returncode == 2 and proc.stderr.count("pkgc: error:") == 1
    assert f"{spec}:" in proc.stderr and "model: the model is named by 'pkgc model package --name'" in proc.stderr
    proc = run_pkgc("model", "package", "-n", "sk", "-f", str(spec), env=env)
    assert proc.returncode == 2 and "one of the arguments --version/-v --label/-l is required" in proc.stderr
    assert not (tmp_path / "ws").exists()


def test_target_environment_overrides_a_package_specs_name(tmp_path):
    from compiler.spec import load_package_spec

    spec = tmp_path / "package.yml"
    spec.write_text((EXAMPLE / "package-moe.yml").read_text().replace("code: src", f"code: {EXAMPLE / 'src'}"))
    assert load_package_spec(spec).spec.target_environment == "sklearn-regression-online-pkg"
    assert load_package_spec(spec, "renamed-pkg").spec.target_environment == "renamed-pkg"
    proc = run_pkgc("build", str(spec), "--emit", "spec", "--target-environment", "../evil")
    assert proc.returncode == 2 and proc.stderr.startswith("pkgc: error: --target-environment: '../evil' must be 1-64")
