"""The SBOM of a real package (the session's copy-mode example): ``pkgc sbom`` prints it from the
engine and from an OCI layout, byte for byte what the label's digest names, listing exactly the
locked packages and the model and code trees; ``pkgc verify`` passes on it and fails (exit 4, one
line, nothing left running) on images built FROM it with a different SBOM."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile

import pytest

from compiler.lock.lockfile import read_lock
from compiler.workspace.trees import tree_digest
from tests.conftest import run_pkgc
from tests.e2e.test_verify import leftover_containers

pytestmark = pytest.mark.engine

TAMPERED = "pkgc-e2e/sbom-tampered"


@pytest.fixture(scope="module")
def sbom(copy_package, session_env) -> bytes:
    proc = run_pkgc("sbom", copy_package["image"], env=session_env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.encode()


def _tampered(engine, base: str, sbom: bytes, tag: str, label: str | None) -> str:
    """An image FROM ``base`` whose /opt/pkgc/sbom.cdx.json is ``sbom`` (and whose digest label is ``label``)."""
    dockerfile = f"FROM {base}\nCOPY sbom.cdx.json /opt/pkgc/sbom.cdx.json\n"
    if label:
        dockerfile += f'LABEL io.pkgc.sbom.digest="{label}"\n'
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile.encode()), ("sbom.cdx.json", sbom)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    ref = f"{TAMPERED}:{tag}"
    engine.build(context, ref, lambda _line: None)
    return ref


def test_pkgc_sbom_prints_the_labelled_sbom_of_the_lock(copy_package, sbom, engine, example_copy, tmp_path):
    labels = engine.image_info(copy_package["image"]).labels
    assert labels["io.pkgc.sbom.digest"] == "sha256:" + hashlib.sha256(sbom).hexdigest() == copy_package["sbom_digest"]
    document = json.loads(sbom)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    lock = read_lock(example_copy / "package-azure-app.conda-lock.yml")
    packages = {(c["name"], c["version"], c["hashes"][0]["content"]) for c in document["components"] if "purl" in c}
    assert packages == {(p.name, p.version, p.sha256) for p in lock.packages}
    assert all(c["purl"].startswith("pkg:pypi/") for c in document["components"] if "purl" in c)  # a venv package
    refs = {c["bom-ref"]: c for c in document["components"]}
    assert refs["model"]["hashes"][0]["content"] == labels["io.pkgc.model.tree"].removeprefix("sha256:")
    assert refs["code"]["hashes"][0]["content"] == tree_digest(example_copy / "src")
    assert refs["base-image"]["hashes"][0]["content"] == engine.image_info("pkgc/base-debian-bookworm:latest").id[7:]
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "--quiet", f"docker-daemon:{copy_package['image']}", f"oci:{layout}:e2e"],
                   check=True, capture_output=True)  # fmt: skip
    from_layout = run_pkgc("sbom", f"oci:{layout}:e2e")
    assert from_layout.returncode == 0, from_layout.stderr
    assert from_layout.stdout.encode() == sbom


def test_verify_checks_the_sbom_against_the_lock(copy_package, sbom, engine, session_env):
    proc = run_pkgc("verify", copy_package["image"], "--json", env=session_env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sbom"] == {"digest": "sha256:" + hashlib.sha256(sbom).hexdigest(), "packages": result["sbom"]["packages"],
                              "matches_lock": True}  # fmt: skip
    assert result["sbom"]["packages"] > 10

    document = json.loads(sbom)
    changed = next(c for c in document["components"] if c.get("name") == "numpy")
    changed["version"] = "0.0.1"
    forged = json.dumps(document, indent=2).encode()
    relabelled = _tampered(engine, copy_package["image"], forged, "relabelled", "sha256:" + hashlib.sha256(forged).hexdigest())
    unlabelled = _tampered(engine, copy_package["image"], forged, "label-kept", None)
    try:
        for image, expected in ((relabelled, "the SBOM does not match the image's lock: pip numpy: SBOM 0.0.1 sha256:"),
                                (unlabelled, "/opt/pkgc/sbom.cdx.json has digest sha256:")):  # fmt: skip
            proc = run_pkgc("verify", image, env=session_env)
            assert proc.returncode == 4, proc.stderr
            errors = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
            assert len(errors) == 1 and expected in errors[0], proc.stderr
            assert leftover_containers(image) == []
    finally:
        engine.remove_image(relabelled)
        engine.remove_image(unlabelled)
