"""Code pkgc generates (an MLflow model's scoring folder), written once per content under the cache.

The folder is named by the digest of its files, written into a staging folder beside it and renamed
into place, so concurrent builds of the same model share one folder and a killed one leaves no half."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def generated_folder(files: dict[str, bytes], parent: Path, folder: str, prefix: str = "") -> Path:
    """``parent/<prefix><digest>/<folder>`` holding ``files`` (written now unless it exists)."""
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data for name, data in sorted(files.items())))
    final = parent / f"{prefix}{digest.hexdigest()[:32]}"
    if not final.exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final.parent))
        (staging / folder).mkdir()
        for name, data in files.items():
            (staging / folder / name).write_bytes(data)
        try:
            os.rename(staging, final)
        except OSError:  # another build wrote the same content first
            shutil.rmtree(staging, ignore_errors=True)
    return final / folder
