"""Fetch one locked conda package file (``file://`` or ``https://``) into the host cache.

HTTPS uses the system's trust store through OpenSSL's defaults, which honour ``SSL_CERT_FILE``
and ``SSL_CERT_DIR``, and urllib's proxy settings, so a TLS-intercepting proxy is handled on the
host; nothing of it reaches the image. A file whose sha256 or md5 differs from the lock is refused.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from compiler.errors import BuildError
from compiler.fetch.cache import PackageCache
from compiler.lock.types import LockedPackage
from compiler.workspace.trees import file_digest

TIMEOUT_SECONDS = 120
CHUNK = 1 << 20


def _copy_local(url: str, target: Path) -> None:
    source = Path(unquote(urlparse(url).path))
    if not source.is_file():
        raise BuildError(f"locked conda package {url} does not exist; is the local channel still there?")
    shutil.copyfile(source, target)


def _download(url: str, target: Path) -> None:
    context = ssl.create_default_context()
    try:
        with (
            urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as response,
            open(target, "wb") as out,
        ):
            shutil.copyfileobj(response, out, CHUNK)
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BuildError(f"cannot download conda package {url}: {reason}") from None


def fetch_conda_package(package: LockedPackage, cache: PackageCache) -> Path:
    """Bring ``package`` into ``cache`` and return its path there; refuse a hash mismatch."""
    cached = cache.verified(package)
    if cached is not None:
        return cached
    scheme = urlparse(package.url).scheme
    with tempfile.TemporaryDirectory(prefix="pkgc-conda-fetch-") as tmp:
        target = Path(tmp) / package.filename
        if scheme == "file":
            _copy_local(package.url, target)
        elif scheme in ("https", "http"):
            _download(package.url, target)
        else:
            raise BuildError(f"locked conda package {package.url}: unsupported URL scheme '{scheme}'")
        md5 = file_digest(target, "md5")
        if package.md5 and md5 != package.md5:
            raise BuildError(f"conda package {package.filename} has md5 {md5}, the lock says {package.md5}")
        return cache.add(target, package)
