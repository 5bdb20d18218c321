"""A real registry for push tests: Debian's ``docker-registry`` (distribution 2.x) on a loopback port,
its config.yml and storage in a temporary folder, stopped (by its own pid) when the test session ends."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.runtime.http import request

BINARY = "docker-registry"
CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class LocalRegistry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``; ``process`` is ours to stop."""

    host: str
    root: Path
    process: subprocess.Popen

    def manifest(self, repository: str, reference: str, accept: str = MANIFEST_TYPES) -> tuple[int, bytes, dict[str, str]]:
        """GET /v2/<repo>/manifests/<ref> the way a client would: status, body and headers."""
        return self.get(f"{repository}/manifests/{reference}", accept)

    def get(self, path: str, accept: str = MANIFEST_TYPES) -> tuple[int, bytes, dict[str, str]]:
        """GET /v2/<path> (a manifest or a blob): status, body and headers."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"http://{self.host}/v2/{path}", headers={"Accept": accept})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as resp:
                return resp.status, resp.read(), dict(resp.headers.items())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers.items())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _htpasswd(users: dict[str, str]) -> str:
    """An htpasswd file of bcrypt hashes (the only kind distribution accepts), by the C library's crypt."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt on Debian 12: bcrypt ($2b$)

    return "".join(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n" for user, password in users.items())


def start_registry(root: Path, port: int, timeout: float = 20.0, users: dict[str, str] | None = None) -> LocalRegistry:
    """Write config.yml under ``root``, start the registry and wait until ``/v2/`` answers; with
    ``users`` (name -> password) it asks every client for Basic credentials (htpasswd)."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise RuntimeError(f"{BINARY} is not installed (scripts/ensure-engine.sh installs it with apt)")
    (root / "storage").mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    text = CONFIG.format(storage=root / "storage", port=port)
    if users:
        (root / "htpasswd").write_text(_htpasswd(users))
        text += f"auth:\n  htpasswd:\n    realm: pkgc-e2e\n    path: {root / 'htpasswd'}\n"
    config.write_text(text)
    with open(root / "registry.log", "wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    registry = LocalRegistry(f"127.0.0.1:{port}", root, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{BINARY} exited with {process.returncode}: {(root / 'registry.log').read_text()[-500:]}")
        try:
            if request(f"http://{registry.host}/v2/", timeout=1.0).status in ((401,) if users else (200,)):
                return registry
        except OSError:
            pass
        time.sleep(0.1)
    registry.stop()
    raise RuntimeError(f"{BINARY} did not answer on {registry.host} within {timeout:.0f} s")
