"""``attestations verify`` rules on real OCI layouts built here: with a key every attestation is signed
by it, the SBOM and the provenance are both required (the missing one named), a referrer listed twice
counts once, and an oversized attestation is called too large (not a digest mismatch)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from compiler.errors import SpecError, VerifyError
from compiler.oci.referrers import REFERRERS_ANNOTATION, REFERRERS_SIZE_ANNOTATION, Artifact, attach_to_layout, referrer
from compiler.oci.store import canonical_json
from compiler.provenance import dsse
from compiler.provenance import verify as verify_module
from compiler.provenance.attach import Attestor
from compiler.provenance.verify import verify_attestations
from tests.conftest import run_pkgc
from tests.unit.test_provenance import _attest, _facts, _pem, inputs  # noqa: F401  (the fixture)

CYCLONEDX_STATEMENT = "https://cyclonedx.org/bom"


@pytest.fixture
def signed(inputs, tmp_path):  # noqa: F811
    """A layout whose image carries the SBOM, a signed provenance and a signed SBOM statement."""
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(_pem(key, True))
    (tmp_path / "key.pub").write_bytes(_pem(key, False))
    layout = tmp_path / "layout"
    digest, attestor = _attest(layout, inputs, dsse.load_signer(tmp_path / "key.pem"))
    return {"layout": layout, "digest": digest, "attestor": attestor, "key": dsse.load_public_key(tmp_path / "key.pub"),
            "pub": tmp_path / "key.pub", "inputs": inputs, "signer": dsse.load_signer(tmp_path / "key.pem")}  # fmt: skip


def _index(layout: Path) -> dict:
    return json.loads((layout / "index.json").read_bytes())


def _image_entry(index: dict) -> dict:
    return next(m for m in index["manifests"] if REFERRERS_ANNOTATION in (m.get("annotations") or {}))


def _referrers(layout: Path) -> list[dict]:
    """The referrers the image's entry names (its referrers index blob, as the layout writer made it)."""
    named = _image_entry(_index(layout))["annotations"][REFERRERS_ANNOTATION]
    return json.loads((layout / "blobs" / "sha256" / named[7:]).read_bytes())["manifests"]


def _set_referrers(layout: Path, entries: list[dict]) -> None:
    """Point the image's entry at a referrers index of ``entries`` (what an attacker who rewrites it does)."""
    data = canonical_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    index = _index(layout)
    _image_entry(index)["annotations"].update({REFERRERS_ANNOTATION: digest, REFERRERS_SIZE_ANNOTATION: str(len(data))})
    (layout / "index.json").write_bytes(canonical_json(index))


def _keep(layout: Path, keep) -> None:
    """Keep the referrers ``keep(entry)`` accepts (a stripping attacker)."""
    _set_referrers(layout, [m for m in _referrers(layout) if keep(m)])


def _predicate(entry: dict) -> str | None:
    return (entry.get("annotations") or {}).get("in-toto.io/predicate-type")


def test_the_complete_signed_set_verifies_and_counts_each_referrer_once(signed):
    check = verify_attestations(f"oci:{signed['layout']}", signed["key"])
    assert check.signed_provenance and check.signed_sbom and check.sbom_attached and len(check.checked) == 3
    _set_referrers(signed["layout"], _referrers(signed["layout"]) * 3)  # every referrer listed three times
    again = verify_attestations(f"oci:{signed['layout']}", signed["key"])
    assert [c["digest"] for c in again.checked] == [c["digest"] for c in check.checked]
    proc = run_pkgc("attestations", "verify", f"oci:{signed['layout']}", "--key", str(signed["pub"]))
    assert proc.returncode == 0 and "verified 3 attestations" in proc.stdout, proc.stderr


def test_a_duplicate_referrer_of_the_same_bytes_counts_once(signed):
    """A second manifest (other annotations, so another digest) around the same signed envelope."""
    provenance = signed["attestor"].made.referrers[1].artifact
    copy = Artifact(provenance.artifact_type, provenance.media_type, provenance.data, {**provenance.annotations, "x": "1"})
    attach_to_layout(signed["layout"], (referrer(copy, signed["attestor"].made.subject),))
    assert len(_referrers(signed["layout"])) == 4
    check = verify_attestations(f"oci:{signed['layout']}", signed["key"])
    assert len(check.checked) == 3


def test_an_unsigned_statement_beside_signed_ones_fails_with_a_key(signed):
    unsigned = Attestor(lambda sbom, finished: _facts(signed["inputs"]), signed["inputs"]["result"]["sbom_digest"], None)
    attach_to_layout(signed["layout"], unsigned(signed["layout"], "4", signed["digest"]))  # an unsigned provenance added
    with pytest.raises(VerifyError, match=r"attestation sha256:\w+ is not signed .*every attestation must be signed by the key"):
        verify_attestations(f"oci:{signed['layout']}", signed["key"])
    check = verify_attestations(f"oci:{signed['layout']}", None)  # without a key: listed, nothing claimed
    assert not check.signed_provenance and check.provenance
    assert sorted(c["verified"] for c in check.checked).count("signature not checked (no --key)") == 2


@pytest.mark.parametrize("artifact_type", ["application/vnd.in-toto+json", "application/vnd.dsse.envelope.v1+json"])
def test_an_unsigned_statement_in_disguise_fails_too(signed, artifact_type):
    """An in-toto statement whose layer is labelled as something else is still an attestation (by its
    artifact type: pkgc's, or cosign's OCI 1.1 envelope type)."""
    statement = json.dumps(signed["attestor"].made.statement).encode()
    disguised = Artifact(artifact_type, "application/json", statement)
    attach_to_layout(signed["layout"], (referrer(disguised, signed["attestor"].made.subject),))
    with pytest.raises(VerifyError, match="is not signed"):
        verify_attestations(f"oci:{signed['layout']}", signed["key"])
    with pytest.raises(VerifyError, match="neither a statement nor a DSSE envelope"):
        verify_attestations(f"oci:{signed['layout']}", None)


@pytest.mark.parametrize(
    "strip, named",
    [
        (lambda m: m["artifactType"] != "application/vnd.cyclonedx+json", "the SBOM is not attached"),
        (lambda m: _predicate(m) != CYCLONEDX_STATEMENT, "a signed SBOM statement is not attached"),
        (lambda m: _predicate(m) != "https://slsa.dev/provenance/v1", "a signed SLSA provenance is not attached"),
        (lambda m: _predicate(m) == CYCLONEDX_STATEMENT, "the SBOM and a signed SLSA provenance are not attached"),
    ],
)  # fmt: skip
def test_with_a_key_the_sbom_and_the_provenance_are_both_required(signed, strip, named):
    _keep(signed["layout"], strip)
    with pytest.raises(VerifyError, match=named):
        verify_attestations(f"oci:{signed['layout']}", signed["key"])
    proc = run_pkgc("attestations", "verify", f"oci:{signed['layout']}", "--key", str(signed["pub"]))
    assert proc.returncode == 4 and named in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_without_a_key_the_sbom_and_a_provenance_are_still_required(inputs, tmp_path):  # noqa: F811
    layout = tmp_path / "layout"
    _attest(layout, inputs, None)
    assert verify_attestations(f"oci:{layout}", None).provenance
    _keep(layout, lambda m: m["artifactType"] != "application/vnd.in-toto+json")
    with pytest.raises(VerifyError, match="an SLSA provenance is not attached"):
        verify_attestations(f"oci:{layout}", None)


def _envelope_referrer(signed, data: bytes, size: int | None = None):
    """A referrer whose layer descriptor states ``size`` (default: the real one)."""
    made = referrer(Artifact("application/vnd.in-toto+json", dsse.ENVELOPE, data), signed["attestor"].made.subject)
    manifest = json.loads(made.manifest)
    if size is not None:
        manifest["layers"][0]["size"] = size
    forged = canonical_json(manifest)
    return type(made)(made.artifact, forged, made.blobs)


def test_an_oversized_envelope_is_called_too_large(signed, monkeypatch):
    envelope = dsse.sign(signed["attestor"].made.statement, signed["signer"])  # new bytes: not a duplicate
    oversized = _envelope_referrer(signed, envelope, size=1 << 40)
    attach_to_layout(signed["layout"], (oversized,))
    with pytest.raises(SpecError, match=r"is too large: 1099511627776 bytes by its descriptor, more than the \d+ pkgc reads"):
        verify_attestations(f"oci:{signed['layout']}", signed["key"])
    # a descriptor that understates the size: the read stops past it and says so (not "does not match its digest")
    _keep(signed["layout"], lambda m: m["digest"] != oversized.digest)
    understated = _envelope_referrer(signed, dsse.sign(signed["attestor"].made.statement, signed["signer"]), size=10)
    attach_to_layout(signed["layout"], (understated,))
    entries = _referrers(signed["layout"])
    _set_referrers(signed["layout"], [entries[-1], *entries[:-1]])  # checked before the honest ones
    monkeypatch.setattr(verify_module, "BLOB_LIMIT", len(envelope) // 2)
    with pytest.raises(SpecError, match=r"holds \d+ bytes, its descriptor says 10") as raised:
        verify_attestations(f"oci:{signed['layout']}", signed["key"])
    assert "does not match its digest" not in str(raised.value)


@pytest.mark.parametrize("encrypted, password, message", [
    (False, "secret", "key.pem is not encrypted, but PKGC_SIGN_KEY_PASSWORD is set: unset it"),
    (True, None, "key.pem is encrypted: set PKGC_SIGN_KEY_PASSWORD"),
    (True, "wrong", "PKGC_SIGN_KEY_PASSWORD does not decrypt .*key.pem \\(wrong password\\)"),
])  # fmt: skip
def test_key_password_messages_say_what_is_wrong(tmp_path, monkeypatch, encrypted, password, message):
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    protection = serialization.BestAvailableEncryption(b"right") if encrypted else serialization.NoEncryption()
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection))
    if password is None:
        monkeypatch.delenv(dsse.PASSWORD_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(dsse.PASSWORD_VARIABLE, password)
    with pytest.raises(SpecError, match=f"--sign-key: .*{message}"):
        dsse.load_signer(tmp_path / "key.pem")
    monkeypatch.setenv(dsse.PASSWORD_VARIABLE, "right")
    if encrypted:  # the right password loads it
        assert dsse.load_signer(tmp_path / "key.pem").public_key.keyid
