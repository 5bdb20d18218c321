"""DSSE envelopes (the in-toto attestation framework's signature wrapper) with the user's key.

securesystemslib (the in-toto project's library) does the envelope, its pre-authentication encoding
and the signature schemes; keys are PEM files read with ``cryptography``: a PKCS#8 or traditional
private key (ECDSA P-256/P-384, Ed25519, RSA) to sign, its SubjectPublicKeyInfo PEM to verify, as
``openssl`` writes them and ``cosign verify-blob-attestation --key`` reads them. A passphrase-protected
key takes its passphrase from ``PKGC_SIGN_KEY_PASSWORD``."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from typing import TYPE_CHECKING

from compiler.errors import SpecError, SpecProblem

if TYPE_CHECKING:  # securesystemslib imports boto3 & co. (~0.1 s): loaded only when signing or verifying
    from securesystemslib.signer import CryptoSigner, SSlibKey

IN_TOTO = "application/vnd.in-toto+json"
ENVELOPE = "application/vnd.dsse.envelope.v1+json"
PASSWORD_VARIABLE = "PKGC_SIGN_KEY_PASSWORD"
KEY_LIMIT = 64 << 10


class BadSignature(Exception):
    """The envelope is not signed by the key (or is not a DSSE envelope)."""


def _read(path: Path, flag: str) -> bytes:
    try:
        data = path.read_bytes()[: KEY_LIMIT + 1]
    except OSError as exc:
        raise SpecError(SpecProblem(flag, "", f"cannot read {path}: {exc.strerror or exc}")) from None
    if len(data) > KEY_LIMIT:
        raise SpecError(SpecProblem(flag, "", f"{path} is larger than {KEY_LIMIT} bytes; not a PEM key"))
    return data


def load_signer(path: Path, flag: str = "--sign-key") -> CryptoSigner:
    """The signer of a PEM private key file; a bad file is bad input (exit 2)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import CryptoSigner

    data = _read(path, flag)
    password = os.environ.get(PASSWORD_VARIABLE)
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
        return CryptoSigner(key)
    except TypeError:  # a password for a plain key, or none for an encrypted one
        if password:
            raise SpecError(SpecProblem(flag, "", f"{path} is not encrypted, but {PASSWORD_VARIABLE} is set: unset it")) from None
        raise SpecError(SpecProblem(flag, "", f"{path} is encrypted: set {PASSWORD_VARIABLE}")) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        if password and _encrypted(data):
            raise SpecError(SpecProblem(flag, "", f"{PASSWORD_VARIABLE} does not decrypt {path} (wrong password)")) from None
        why = str(exc).splitlines()[0][:120] if str(exc) else "unsupported key"
        raise SpecError(SpecProblem(flag, "", f"{path} is not a usable PEM private key ({why})")) from None


def _encrypted(data: bytes) -> bool:
    """Whether the PEM private key ``data`` asks for a password (cryptography says so by a TypeError)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_pem_private_key(data, None)
    except TypeError:
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return False


def load_public_key(path: Path, flag: str = "--key") -> SSlibKey:
    """The verification key of a PEM public key file (or of a private key's public half)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import SSlibKey

    data = _read(path, flag)
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            public = serialization.load_pem_private_key(data, None).public_key()
        except (TypeError, ValueError, UnsupportedAlgorithm):
            raise SpecError(SpecProblem(flag, "", f"{path} is not a PEM public key")) from None
    try:
        return SSlibKey.from_crypto(public)
    except (ValueError, TypeError) as exc:
        raise SpecError(SpecProblem(flag, "", f"{path}: unsupported key type ({exc})")) from None


def sign(statement: dict, signer: CryptoSigner) -> bytes:
    """The DSSE envelope (JSON bytes) of ``statement`` signed by ``signer``."""
    from securesystemslib.dsse import Envelope

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload=payload, payload_type=IN_TOTO, signatures={})
    envelope.sign(signer)
    return json.dumps(envelope.to_dict(), sort_keys=True, separators=(",", ":")).encode()


def verify(data: bytes, key: SSlibKey) -> dict:
    """The statement in the DSSE envelope ``data`` once ``key`` verified its signature."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    try:
        document = json.loads(data)
        envelope = Envelope.from_dict(document)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadSignature(f"not a DSSE envelope ({exc})") from None
    if envelope.payload_type != IN_TOTO:
        raise BadSignature(f"payload type is {envelope.payload_type!r}, not {IN_TOTO}")
    # the key id is a hint, not a check: other signers (cosign writes "") name the same key differently
    candidates = [SSlibKey(keyid, key.keytype, key.scheme, key.keyval) for keyid in envelope.signatures] or [key]
    try:
        envelope.verify(candidates, 1)
    except (VerificationError, ValueError) as exc:
        raise BadSignature(str(exc)) from None
    try:
        statement = json.loads(envelope.payload)
    except ValueError:
        raise BadSignature("the signed payload is not JSON") from None
    if not isinstance(statement, dict):
        raise BadSignature("the signed payload is not a JSON object")
    return statement


def key_id(key: SSlibKey) -> str:
    return key.keyid


def payload_of(data: bytes) -> dict:
    """The (unverified) statement inside an envelope: for listing, never for trusting."""
    return json.loads(base64.b64decode(json.loads(data)["payload"]))
