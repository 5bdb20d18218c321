"""The one place pkgc runs skopeo: ``skopeo copy`` between transports, returning the manifest digest.

skopeo (containers/image) writes OCI layouts, OCI archives and registry pushes that other OCI tools
read, checks every blob digest as it copies, and needs no daemon-side configuration for loopback
registries. Its progress goes to the log sink; a failure is one line with skopeo's last message.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import BuildError

LogSink = Callable[[str], None]
INSTALL_HINT = "install it with 'apt-get install skopeo' (scripts/ensure-engine.sh does)"


@dataclass(frozen=True)
class CopyResult:
    """What one ``skopeo copy`` produced: the destination's manifest digest, and how long it took."""

    digest: str
    seconds: float


def skopeo_binary() -> str:
    path = shutil.which("skopeo")
    if path is None:
        raise BuildError(f"skopeo is not installed; {INSTALL_HINT}")
    return path


def skopeo_copy(source: str, destination: str, log: LogSink, options: Sequence[str] = ()) -> CopyResult:
    """``skopeo copy [options] source destination``; raise BuildError with skopeo's reason on failure."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pkgc-skopeo-") as scratch:
        digest_file = Path(scratch) / "digest"
        command = [skopeo_binary(), "copy", "--quiet", "--digestfile", str(digest_file), *options, source, destination]
        log(f"skopeo copy {source} {destination}")
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {proc.returncode}"
            raise BuildError(f"copying {source} to {destination} failed: {reason}")
        digest = digest_file.read_text().strip() if digest_file.is_file() else ""
    if not digest.startswith("sha256:"):
        raise BuildError(f"copying {source} to {destination} reported no manifest digest")
    return CopyResult(digest=digest, seconds=time.monotonic() - started)
