"""Provenance and referrers without an engine: the SLSA statement's content, DSSE signatures (sign,
verify, tamper, wrong key), and referrers attached to a small real OCI layout and archive, checked
by ``verify_attestations`` and read back by ``pkgc sbom --attached``."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from compiler.errors import SpecError, VerifyError
from compiler.oci.referrers import REFERRERS_ANNOTATION, REFERRERS_SIZE_ANNOTATION, Artifact, Descriptor, attach_to_archive, attach_to_layout, referrer
from compiler.oci.store import canonical_json
from compiler.provenance import dsse
from compiler.provenance.attach import Attestor
from compiler.provenance.facts import build_facts
from compiler.provenance.statement import SLSA_PROVENANCE, STATEMENT_TYPE
from compiler.provenance.verify import attached_sbom, verify_attestations
from tests.conftest import run_pkgc

SBOM = {
    "bomFormat": "CycloneDX", "specVersion": "1.6",
    "components": [
        {"bom-ref": "base-image", "name": "pkgc/base:1", "hashes": [{"alg": "SHA-256", "content": "b" * 64}]},
        {"bom-ref": "model", "name": "iris", "version": "3", "hashes": [{"alg": "SHA-256", "content": "1" * 64}]},
        {"bom-ref": "code", "name": "src", "hashes": [{"alg": "SHA-256", "content": "2" * 64}]},
        {"bom-ref": "pip:numpy@2.0", "name": "numpy", "version": "2.0", "purl": "pkg:pypi/numpy@2.0"},
    ],
}  # fmt: skip
SBOM_BYTES = json.dumps(SBOM, indent=2).encode() + b"\n"


def _pem(key, private: bool) -> bytes:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def keys(request, tmp_path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1()) if request.param == "ecdsa-p256" else ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(_pem(key, True))
    (tmp_path / "key.pub").write_bytes(_pem(key, False))
    return tmp_path / "key.pem", tmp_path / "key.pub"


@pytest.fixture
def inputs(tmp_path) -> dict:
    spec, lock = tmp_path / "package.yml", tmp_path / "package.conda-lock.yml"
    spec.write_text("target_environment: iris-pkg\n")
    lock.write_text("version: 1\n")
    result = {"image": "pkgc/iris-pkg:4", "lock_file": str(lock), "target_environment": "iris-pkg:4", "builder": "oci",
              "environment_strategy": "venv", "python": "3.11", "base_digest": "sha256:" + "c" * 64,
              "sbom_digest": "sha256:" + hashlib.sha256(SBOM_BYTES).hexdigest()}  # fmt: skip
    return {"spec": spec, "lock": lock, "result": result}


def _facts(inputs: dict):
    flags = {"model": "azureml:iris:3", "no_cache": True, "relock": False, "template": None}
    return build_facts(inputs["result"], inputs["spec"], flags, SBOM_BYTES, 1_700_000_000, 1_700_000_060)


def test_provenance_names_builder_parameters_and_every_input(inputs):
    from compiler.provenance.statement import provenance_statement

    digest = "sha256:" + "d" * 64
    statement = provenance_statement(_facts(inputs), digest)
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == SLSA_PROVENANCE
    assert statement["subject"] == [{"name": "pkgc/iris-pkg", "digest": {"sha256": "d" * 64}}]
    definition = statement["predicate"]["buildDefinition"]
    spec_sha = hashlib.sha256(inputs["spec"].read_bytes()).hexdigest()
    assert definition["externalParameters"]["spec"] == {"name": "package.yml", "digest": {"sha256": spec_sha}}
    assert definition["externalParameters"]["flags"] == {"model": "azureml:iris:3", "no_cache": True}  # unset flags left out
    assert definition["internalParameters"]["builder"] == "oci"
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["spec:package.yml"]["digest"]["sha256"] == spec_sha
    assert deps["lock:package.conda-lock.yml"]["digest"]["sha256"] == hashlib.sha256(inputs["lock"].read_bytes()).hexdigest()
    assert deps["model:iris:3"]["digest"]["sha256"] == "1" * 64 and deps["code:src"]["digest"]["sha256"] == "2" * 64
    assert deps["base-image:pkgc/base:1"]["digest"]["sha256"] == "c" * 64  # the base manifest when the build knows it
    assert deps["base-image:pkgc/base:1"]["annotations"] == {"digestOf": "manifest"}
    docker = build_facts({**inputs["result"], "builder": "docker", "base_digest": None}, inputs["spec"], {}, SBOM_BYTES, 0, 0)
    base = next(d for d in docker.dependencies if d.name.startswith("base-image:"))
    assert base.sha256 == "b" * 64 and base.annotations == {"digestOf": "image config (the engine's image id)"}
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"].startswith("urn:pkgc:builder:pkgc@") and run["builder"]["version"]["pkgc"]
    assert run["metadata"] == {"startedOn": "2023-11-14T22:13:20Z", "finishedOn": "2023-11-14T22:14:20Z"}
    assert run["byproducts"][0]["digest"]["sha256"] == inputs["result"]["sbom_digest"][7:]


def test_statements_parse_strictly_into_the_in_toto_projects_own_schemas(inputs):
    """The in-toto attestation framework's protobuf bindings (unknown or misspelt fields fail)."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    from compiler.provenance.statement import provenance_statement, sbom_statement

    for statement in (provenance_statement(_facts(inputs), "sha256:" + "d" * 64), sbom_statement("pkgc/iris", "sha256:" + "d" * 64, SBOM)):
        Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
    provenance = provenance_statement(_facts(inputs), "sha256:" + "d" * 64)["predicate"]
    parsed = json_format.ParseDict(provenance, provenance_pb2.Provenance())
    assert parsed.run_details.builder.id.startswith("urn:pkgc:builder:") and len(parsed.build_definition.resolved_dependencies) == 5


def test_dsse_signature_verifies_and_detects_tampering_and_wrong_keys(keys, tmp_path):
    signer = dsse.load_signer(keys[0])
    statement = {"_type": STATEMENT_TYPE, "subject": [], "predicateType": SLSA_PROVENANCE, "predicate": {"x": 1}}
    envelope = dsse.sign(statement, signer)
    document = json.loads(envelope)
    assert document["payloadType"] == "application/vnd.in-toto+json" and len(document["signatures"]) == 1
    assert dsse.verify(envelope, dsse.load_public_key(keys[1])) == statement
    # the standard DSSE v1 signature, checked without securesystemslib: over PAE(type, payload), as
    # go-securesystemslib (cosign's) computes it; ECDSA as ASN.1 DER over SHA-256, Ed25519 pure
    payload = base64.b64decode(document["payload"])
    pae = b"DSSEv1 %d %s %d %s" % (len(document["payloadType"]), document["payloadType"].encode(), len(payload), payload)
    public = serialization.load_pem_public_key(keys[1].read_bytes())
    signature = base64.b64decode(document["signatures"][0]["sig"])
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, pae, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, pae)
    anonymous = dict(document, signatures=[{"keyid": "", "sig": document["signatures"][0]["sig"]}])  # as cosign writes it
    assert dsse.verify(json.dumps(anonymous).encode(), dsse.load_public_key(keys[1])) == statement
    tampered = dict(document, payload=base64.b64encode(json.dumps({**statement, "predicate": {"x": 2}}).encode()).decode())
    with pytest.raises(dsse.BadSignature):
        dsse.verify(json.dumps(tampered).encode(), dsse.load_public_key(keys[1]))
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.pub").write_bytes(_pem(other, False))
    with pytest.raises(dsse.BadSignature):
        dsse.verify(envelope, dsse.load_public_key(tmp_path / "other.pub"))


def test_bad_key_files_are_bad_input(tmp_path):
    (tmp_path / "junk.pem").write_text("not a key\n")
    with pytest.raises(SpecError, match="--sign-key: .*junk.pem is not a usable PEM private key"):
        dsse.load_signer(tmp_path / "junk.pem")
    with pytest.raises(SpecError, match="--key: .*is not a PEM public key"):
        dsse.load_public_key(tmp_path / "junk.pem")
    with pytest.raises(SpecError, match="cannot read"):
        dsse.load_signer(tmp_path / "missing.pem")


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _image_layout(folder: Path, sbom: bytes, label: str) -> str:
    """A small real OCI layout: one gzip layer with /opt/pkgc/sbom.cdx.json and a labelled config."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    layer = put(_layer({"opt/pkgc/sbom.cdx.json": sbom}))
    config = put(canonical_json({"architecture": "amd64", "os": "linux", "config": {"Labels": {"io.pkgc.sbom.digest": label}},
                                 "rootfs": {"type": "layers", "diff_ids": []}}))  # fmt: skip
    manifest = put(canonical_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}))  # fmt: skip
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
                                                "annotations": {"org.opencontainers.image.ref.name": "4"}}]}  # fmt: skip
    (folder / "index.json").write_bytes(canonical_json(index))
    return manifest["digest"]


def _attest(folder: Path, inputs: dict, signer) -> tuple[str, Attestor]:
    digest = _image_layout(folder, SBOM_BYTES, inputs["result"]["sbom_digest"])
    attestor = Attestor(lambda sbom, finished: _facts(inputs), inputs["result"]["sbom_digest"], signer)
    attach_to_layout(folder, attestor(folder, "4", digest))
    return digest, attestor


def test_signed_referrers_in_a_layout_verify_and_a_forged_one_does_not(keys, inputs, tmp_path):
    layout = tmp_path / "layout"
    digest, attestor = _attest(layout, inputs, dsse.load_signer(keys[0]))
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1 and index["manifests"][0]["digest"] == digest  # one image: skopeo reads it untagged
    listed = index["manifests"][0]["annotations"][REFERRERS_ANNOTATION]
    referrers_index = json.loads((layout / "blobs" / "sha256" / listed[7:]).read_bytes())
    assert referrers_index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m.get("artifactType") for m in referrers_index["manifests"]] == [
        "application/vnd.cyclonedx+json", "application/vnd.in-toto+json", "application/vnd.in-toto+json"]
    for entry in referrers_index["manifests"]:
        manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"][7:]).read_bytes())
        assert manifest["subject"]["digest"] == digest and manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    check = verify_attestations(f"oci:{layout}", dsse.load_public_key(keys[1]))
    assert check.signed_provenance and check.sbom_attached and check.subject == digest
    assert attached_sbom(f"oci:{layout}") == SBOM_BYTES
    # a forger rewrites the provenance (consistent digests, the old signature): the signature fails
    envelope = json.loads(attestor.made.referrers[1].artifact.data)
    envelope["payload"] = base64.b64encode(json.dumps({**attestor.made.statement, "predicate": {}}).encode()).decode()
    forged = referrer(Artifact("application/vnd.in-toto+json", "application/vnd.dsse.envelope.v1+json",
                               json.dumps(envelope).encode()), Descriptor("application/vnd.oci.image.manifest.v1+json", digest, 1))  # fmt: skip
    attach_to_layout(layout, (forged,))
    index = json.loads((layout / "index.json").read_text())
    listed = index["manifests"][0]["annotations"][REFERRERS_ANNOTATION]
    merged = json.loads((layout / "blobs" / "sha256" / listed[7:]).read_bytes())["manifests"]
    assert [m["digest"] for m in merged] == [m["digest"] for m in referrers_index["manifests"]] + [forged.digest]  # kept, then added
    with pytest.raises(VerifyError, match="is not signed by the key"):
        verify_attestations(f"oci:{layout}", dsse.load_public_key(keys[1]))


def test_unsigned_attestations_in_an_archive_and_the_sbom_label_check(inputs, tmp_path):
    layout = tmp_path / "layout"
    digest, _ = _attest(layout, inputs, None)
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:  # an archive of the image alone, then the referrers added
        index = json.loads((layout / "index.json").read_text())
        del index["manifests"][0]["annotations"][REFERRERS_ANNOTATION]
        for path in sorted((layout / "blobs" / "sha256").iterdir()):
            tar.add(path, f"blobs/sha256/{path.name}")
        data = canonical_json(index)
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    attestor = Attestor(lambda sbom, finished: _facts(inputs), inputs["result"]["sbom_digest"], None)
    attach_to_archive(archive, attestor(layout, "4", digest))
    check = verify_attestations(f"oci-archive:{archive}", None)
    assert check.sbom_attached and not check.signed_provenance
    assert [c["verified"] for c in check.checked] == ["digest matches the image's SBOM label", "unsigned; subject matches"]
    proc = run_pkgc("sbom", f"oci-archive:{archive}", "--attached")
    assert proc.returncode == 0 and proc.stdout.encode() == SBOM_BYTES
    with pytest.raises(VerifyError, match="is not signed .*with --key every attestation must be signed"):
        key = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "k.pub").write_bytes(_pem(key, False))
        verify_attestations(f"oci-archive:{archive}", dsse.load_public_key(tmp_path / "k.pub"))


def test_an_sbom_that_differs_from_the_label_is_refused(inputs, tmp_path):
    layout = tmp_path / "layout"
    digest = _image_layout(layout, SBOM_BYTES, "sha256:" + "0" * 64)  # the label names another SBOM
    attestor = Attestor(lambda sbom, finished: _facts(inputs), None, None)
    attach_to_layout(layout, attestor(layout, "4", digest))
    with pytest.raises(VerifyError, match="the attached SBOM has digest"):
        verify_attestations(f"oci:{layout}", None)


def test_referrers_listed_in_index_json_itself_are_read_too_and_each_once(inputs, tmp_path):
    """Layouts of earlier pkgc and of ``oras attach --oci-layout`` list the referrers in index.json."""
    layout = tmp_path / "layout"
    digest, attestor = _attest(layout, inputs, None)
    index = json.loads((layout / "index.json").read_text())
    listed = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["annotations"][REFERRERS_ANNOTATION][7:]).read_bytes())
    index["manifests"] += listed["manifests"]  # the same referrers reachable both ways
    (layout / "index.json").write_bytes(canonical_json(index))
    check = verify_attestations(f"oci:{layout}", None)
    assert [c["digest"] for c in check.checked] == [r.digest for r in attestor.made.referrers]
    del index["manifests"][0]["annotations"][REFERRERS_ANNOTATION]  # only the old form left
    (layout / "index.json").write_bytes(canonical_json(index))
    assert len(verify_attestations(f"oci:{layout}", None).checked) == 2
    assert attached_sbom(f"oci:{layout}") == SBOM_BYTES


def test_a_referrers_annotation_naming_a_missing_or_foreign_blob_is_one_line(inputs, tmp_path):
    layout = tmp_path / "layout"
    _attest(layout, inputs, None)
    index = json.loads((layout / "index.json").read_text())
    for value, error, message in (("sha256:" + "0" * 64, SpecError, "is missing"),
                                  ("../../../etc/passwd", SpecError, "is not sha256:<64 hex>"),
                                  (index["manifests"][0]["digest"], VerifyError, "no attestations are attached")):  # fmt: skip
        index["manifests"][0]["annotations"][REFERRERS_ANNOTATION] = value  # not an index: nothing listed
        if error is VerifyError:  # the image's own manifest, named with its true size
            index["manifests"][0]["annotations"][REFERRERS_SIZE_ANNOTATION] = str(index["manifests"][0]["size"])
        (layout / "index.json").write_bytes(canonical_json(index))
        with pytest.raises(error, match=message):
            verify_attestations(f"oci:{layout}", None)
        if error is SpecError:
            with pytest.raises(error, match=message):
                attached_sbom(f"oci:{layout}")
        else:
            assert attached_sbom(f"oci:{layout}") is None
    proc = run_pkgc("attestations", "verify", f"oci:{layout}")  # the command line: one line, exit 4
    assert proc.returncode == 4 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_attaching_to_an_output_that_does_not_hold_the_subject_is_a_build_error(inputs, tmp_path):
    from compiler.outputs.targets import EmittedOutput, PreparedOutput
    from compiler.errors import BuildError
    from compiler.outputs.attach import attach_to_outputs

    layout = tmp_path / "layout"
    digest = _image_layout(layout, SBOM_BYTES, inputs["result"]["sbom_digest"])
    attestor = Attestor(lambda sbom, finished: _facts(inputs), inputs["result"]["sbom_digest"], None)
    refs = attestor(layout, "4", digest)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:" + "e" * 64  # the output holds another image
    before = canonical_json(index)
    (layout / "index.json").write_bytes(before)
    output = PreparedOutput(EmittedOutput("oci", tmp_path / "out", "4", "sha256:" + "e" * 64, 0, 0.0), layout, tmp_path)
    with pytest.raises(BuildError, match=f"cannot attach the SBOM and provenance to {tmp_path / 'out'}: index.json does not list"):
        attach_to_outputs([output], refs)
    assert (layout / "index.json").read_bytes() == before


def test_bad_flags_fail_before_any_build_work(tmp_path):
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    proc = run_pkgc("build", str(tmp_path / "missing.yml"), "--sign-key", str(tmp_path / "junk.pem"))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--sign-key" in proc.stderr
    assert "Traceback" not in proc.stderr
    for args in (["attestations", "verify", f"oci:{tmp_path / 'none'}"], ["attestations", "verify", "not a reference"]):
        proc = run_pkgc(*args)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_a_refused_index_put_is_reported_not_raised():
    from compiler.oci.referrers import put_manifest
    from tests.e2e.conftest import free_port

    said: list[str] = []
    assert put_manifest(f"127.0.0.1:{free_port()}/a/b", "sha256-" + "0" * 64, b"{}", "x", False, said.append) is False
    assert said and "stays without artifact types" in said[0]
