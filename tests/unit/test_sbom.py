"""The CycloneDX SBOM: generated from a fixed lock it is a fixed document (byte for byte), valid
CycloneDX 1.6 by the library's own schema validator, with purls and sha256 hashes for every package;
the check against a lock finds every difference; the planner ships it and labels its digest; an OCI
layout's file is read through its manifest and layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.lock.types import Lock, LockedPackage, SourceDist
from compiler.plan.types import ContextFile
from compiler.sbom.check import compare, summary
from compiler.sbom.generate import generate_sbom
from compiler.sbom.image_files import read_layout_file
from compiler.sbom.types import SBOM_IN_IMAGE, SBOM_LABEL, SbomInputs, TreeComponent
from compiler.spec.model import ModelMode

HERE = Path(__file__).parent
GOLDEN = HERE.parent / "golden" / "cases" / "sbom.cdx.json"

NUMPY = LockedPackage("numpy", "2.4.6", "pip", "https://files.example/numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl",
                      "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl", "11" * 32)
SKLEARN = LockedPackage("scikit_learn", "1.9.1", "pip", "https://files.example/scikit_learn-1.9.1.tar.gz",
                        "scikit_learn-1.9.1-cp311-cp311-linux_x86_64.whl", "22" * 32,
                        sdist=SourceDist("https://files.example/scikit_learn-1.9.1.tar.gz", "scikit_learn-1.9.1.tar.gz", "33" * 32))
PYTHON = LockedPackage("python", "3.11.9", "conda", "https://conda.anaconda.org/conda-forge/linux-64/python-3.11.9-hab00c5b_0_cpython.conda",
                       "python-3.11.9-hab00c5b_0_cpython.conda", "44" * 32, md5="55" * 16, build="hab00c5b_0_cpython")
LOCK = Lock("conda", "3.11", "66" * 32, (PYTHON, NUMPY, SKLEARN), ("conda-forge",))


def inputs(lock: Lock = LOCK, **changes) -> SbomInputs:
    values = dict(
        package="sklearn-regression-pkg", mode="copy",
        model=TreeComponent("sklearn-regression", "3", "ab" * 32, "/var/azureml-app/azureml-models/sklearn-regression/3/model"),
        model_type="custom_model", code=TreeComponent("src", None, "cd" * 32, "/var/azureml-app/src"),
        inputs=(TreeComponent("labels.json", None, "ef" * 32, "/var/azureml-app/inputs/labels.json"),),
        base_image="pkgc/base-debian-bookworm:latest", base_image_id="sha256:" + "77" * 32, lock=lock, pkgc_version="0.1.0",
    )  # fmt: skip
    values.update(changes)
    return SbomInputs(**values)


def components(document: dict) -> dict[str, dict]:
    return {c["bom-ref"]: c for c in document["components"]}


def test_a_fixed_lock_gives_a_fixed_sbom(update_golden):
    data = generate_sbom(inputs())
    assert data == generate_sbom(inputs())  # no timestamp, no random serial or bom-refs
    if update_golden:
        GOLDEN.write_bytes(data)
    assert data == GOLDEN.read_bytes(), "sbom.cdx.json changed; review and run with --update-golden"


def test_the_sbom_is_valid_cyclonedx_1_6():
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = generate_sbom(inputs()).decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["specVersion"] == "1.6" and document["bomFormat"] == "CycloneDX"
    assert "timestamp" not in document["metadata"]
    assert document["metadata"]["tools"]["components"] == [{"bom-ref": "pkgc", "name": "pkgc", "type": "application", "version": "0.1.0"}]


def test_every_package_has_its_purl_and_sha256():
    found = components(json.loads(generate_sbom(inputs())))
    assert found["pip:numpy@2.4.6"]["purl"] == "pkg:pypi/numpy@2.4.6"
    assert found["pip:scikit_learn@1.9.1"]["purl"] == "pkg:pypi/scikit-learn@1.9.1"  # purl-spec's normalised name
    assert found["conda:python@3.11.9"]["purl"] == (
        "pkg:conda/python@3.11.9?build=hab00c5b_0_cpython&channel=conda-forge&subdir=linux-64&type=conda")
    for package in LOCK.packages:
        component = found[f"{package.manager}:{package.name}@{package.version}"]
        assert component["name"] == package.name and component["version"] == package.version
        assert component["hashes"] == [{"alg": "SHA-256", "content": package.sha256}]
    built = {p["name"]: p["value"] for p in found["pip:scikit_learn@1.9.1"]["properties"]}
    assert built["pkgc:built-from"] == f"scikit_learn-1.9.1.tar.gz sha256:{'33' * 32}"


def test_trees_base_image_and_dependencies():
    document = json.loads(generate_sbom(inputs()))
    found = components(document)
    assert found["model"]["type"] == "machine-learning-model" and found["model"]["hashes"][0]["content"] == "ab" * 32
    assert found["model"]["version"] == "3"
    assert found["code"]["hashes"][0]["content"] == "cd" * 32
    assert found["input:/var/azureml-app/inputs/labels.json"]["type"] == "data"
    assert found["base-image"]["name"] == "pkgc/base-debian-bookworm:latest"
    assert found["base-image"]["hashes"][0]["content"] == "77" * 32
    root = next(d for d in document["dependencies"] if d["ref"] == "package")
    assert sorted(root["dependsOn"]) == sorted(found)
    assert document["metadata"]["component"]["type"] == "container"


def test_the_serial_number_follows_the_content():
    first = json.loads(generate_sbom(inputs()))["serialNumber"]
    other = json.loads(generate_sbom(inputs(base_image_id=None)))["serialNumber"]
    assert first.startswith("urn:uuid:") and first != other


def test_the_check_accepts_the_sbom_of_its_own_lock():
    result = compare(generate_sbom(inputs()), LOCK)
    assert result.problems == () and result.packages == 3
    assert result.digest == "sha256:" + hashlib.sha256(generate_sbom(inputs())).hexdigest()


def test_the_check_names_every_difference():
    newer = LockedPackage(**{**NUMPY.__dict__, "version": "2.4.7"})
    extra = LockedPackage("joblib", "1.6.0", "pip", "https://files.example/joblib.whl", "joblib.whl", "88" * 32)
    sbom = generate_sbom(inputs(lock=Lock("conda", "3.11", "66" * 32, (PYTHON, newer, extra))))
    problems = compare(sbom, LOCK).problems
    assert problems == (
        "pip joblib 1.6.0 is in the SBOM but not locked",
        f"pip numpy: SBOM 2.4.7 sha256:{'11' * 6}, lock 2.4.6 sha256:{'11' * 6}",
        "pip scikit_learn 1.9.1 is locked but not in the SBOM",
    )
    assert summary(problems * 2).endswith("; and 3 more")
    rehashed = LockedPackage(**{**PYTHON.__dict__, "sha256": "99" * 32})
    assert compare(generate_sbom(inputs(lock=Lock("conda", "3.11", "", (rehashed, NUMPY, SKLEARN)))), LOCK).problems == (
        f"conda python: SBOM 3.11.9 sha256:{'99' * 6}, lock 3.11.9 sha256:{'44' * 6}",)
    document = json.loads(generate_sbom(inputs()))
    document["components"].append({**components(document)["pip:numpy@2.4.6"], "bom-ref": "again"})
    assert compare(json.dumps(document).encode(), LOCK).problems == ("pip numpy is in the SBOM more than once",)


@pytest.mark.parametrize(("data", "why"), [
    (b"\xff\xfe", "not UTF-8"), (b"{", "not JSON"), (b"[]", "not a JSON object"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.2"}', "is not a CycloneDX 1.5 or 1.6 BOM"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": 3}', "'components' that is not a list"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": 1}]}', "not well-formed"),
])  # fmt: skip
def test_an_sbom_that_is_not_cyclonedx_is_one_problem(data, why):
    problems = compare(data, LOCK).problems
    assert len(problems) == 1 and why in problems[0]


def test_the_planner_ships_the_sbom_and_labels_its_digest(tmp_path):
    from tests.golden.test_golden import make_package
    from compiler.environment.strategy import EnvironmentStrategy
    from compiler.fetch.cache import FetchedFiles
    from compiler.plan import plan_image

    wheel = NUMPY
    data = generate_sbom(inputs(lock=Lock("venv", "3.11", "ef" * 32, (wheel,))))
    plan = plan_image(make_package(tmp_path, ModelMode.COPY), EnvironmentStrategy("venv", "3.11", "test", ("numpy==2.4.6",)),
                      Lock("venv", "3.11", "ef" * 32, (wheel,)), ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n"),
                      FetchedFiles({wheel.sha256: tmp_path / wheel.filename}), "pkgc/golden-pkg:1",
                      sbom_file=ContextFile("pkgc/sbom.cdx.json", data=data))  # fmt: skip
    assert [(c.kind, c.src, c.dest) for c in plan.copies if c.dest == SBOM_IN_IMAGE] == [("sbom", "pkgc/sbom.cdx.json", SBOM_IN_IMAGE)]
    assert plan.config.labels[SBOM_LABEL] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert ContextFile("pkgc/sbom.cdx.json", data=data) in plan.files


def _layer(files: dict[str, bytes | None], compress: bool) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content or b"")
            tar.addfile(info, io.BytesIO(content or b""))
    return gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()


def _layout(root: Path, layers: list[dict[str, bytes | None]], tag: str = "1") -> Path:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    descriptors = []
    for index, files in enumerate(layers):
        compress = index % 2 == 0
        data = _layer(files, compress)
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descriptors.append({"mediaType": media, "digest": put(data), "size": len(data)})
    config = put(b"{}")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
                           "layers": descriptors}).encode()  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
                                                "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


def test_a_layout_file_is_read_through_manifest_and_layers(tmp_path):
    layout = _layout(tmp_path / "layout", [
        {"opt/pkgc/sbom.cdx.json": b"old", "opt/pkgc/conda-lock.yml": b"lock"},
        {"opt/pkgc/sbom.cdx.json": b"new"},
        {"opt/pkgc/.wh.conda-lock.yml": None},
    ])  # fmt: skip
    assert read_layout_file(f"oci:{layout}:1", SBOM_IN_IMAGE) == b"new"  # the top-most layer wins
    assert read_layout_file(f"oci:{layout}", SBOM_IN_IMAGE) == b"new"  # the only manifest
    assert read_layout_file(f"oci:{layout}:1", "/opt/pkgc/conda-lock.yml") is None  # whited out
    assert read_layout_file(f"oci:{layout}:1", "/nowhere") is None
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    assert read_layout_file(f"oci-archive:{archive}:1", SBOM_IN_IMAGE) == b"new"
    with pytest.raises(SpecError, match="no manifest is tagged 'nope'"):
        read_layout_file(f"oci:{layout}:nope", SBOM_IN_IMAGE)


def test_a_tampered_layout_blob_is_refused(tmp_path):
    layout = _layout(tmp_path / "layout", [{"opt/pkgc/sbom.cdx.json": b"sbom"}])
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    layer = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    layer.write_bytes(_layer({"opt/pkgc/sbom.cdx.json": b"evil"}, True))
    with pytest.raises(SpecError, match="does not match its digest|its descriptor says"):
        read_layout_file(f"oci:{layout}:1", SBOM_IN_IMAGE)
