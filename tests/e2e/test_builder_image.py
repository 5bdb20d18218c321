"""pkgc's own builder image (scripts/pkgc-image.sh): built by pkgc's OCI writer, it holds no host CA and
no pip configuration, and builds the bundled example with ``--push`` as user 10001 with a read-only root,
no capabilities, no engine socket, no network but the host's loopback: the pushed manifest digest is
the one the same build gives on the host.

The container cannot reach PyPI (this host's proxy CA is the host's only), so its inputs are
pre-fetched into the volume it writes: the wheels the example's lock names and the base image, copied
from the host's cache into a fresh one (``offline_cache``); the environment is assembled in the container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from compiler.lock.lockfile import read_lock
from compiler.oci.compress import open_layer
from compiler.oci.store import MANIFEST, OciStore
from compiler.options import DEFAULT_CACHE
from compiler.selfimage.runtime import Project
from tests.conftest import ROOT, run_pkgc
from tests.e2e.conftest import free_port
from tests.e2e.registry import start_registry

pytestmark = pytest.mark.engine
IMAGE = "pkgc/pkgc:latest"
BASE = "pkgc/base-debian-bookworm:latest"
UID = 10001
NO_ENGINE = "unix:///nonexistent/pkgc-no-engine.sock"  # the host build runs with no engine, as the image does
HOST_CA_FOLDERS = (Path("/usr/local/share/ca-certificates"), Path("/etc/ssl/certs"))
HOST_PIP_CONFIG = (Path("/etc/pip.conf"), Path.home() / ".pip" / "pip.conf", Path.home() / ".config" / "pip" / "pip.conf")


def host_cache() -> Path:
    return Path(os.environ.get("PKGC_CACHE_DIR") or DEFAULT_CACHE).expanduser()


@pytest.fixture(scope="module")
def builder(base_image) -> dict:
    """The image, built by the script (its layers come from the host cache after the first run)."""
    started = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "pkgc-image.sh"), "--json", "-q"], capture_output=True, text=True,
                          env={**os.environ, "PKGC_IMAGE_PYTHON": sys.executable})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = json.loads(proc.stdout)
    print(f"\nscripts/pkgc-image.sh: {time.monotonic() - started:.1f} s")
    return built


def image_files(manifest_digest: str):
    """(path, member, reader) of every file of the image's layers, read from pkgc's OCI store."""
    store = OciStore.in_cache(host_cache())
    for layer in store.read_json(manifest_digest)["layers"]:
        with open(store.blobs.path(layer["digest"]), "rb") as raw, open_layer(raw, layer["mediaType"]) as fh:
            with tarfile.open(fileobj=fh, mode="r|") as tar:
                for member in tar:
                    yield member.name.removeprefix("./"), member, tar


def host_secrets() -> tuple[set[str], list[bytes]]:
    """The host's CA store and pip configuration files (their in-image paths), and a line of each
    host-only CA certificate's base64 body (found in any file, under any name, it is a leak)."""
    paths = {str(p).lstrip("/") for folder in HOST_CA_FOLDERS if folder.is_dir() for p in folder.iterdir()}
    paths |= {str(p).lstrip("/") for p in HOST_PIP_CONFIG}
    bodies = []
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        lines = [l for l in cert.read_bytes().splitlines() if l and not l.startswith(b"-----")]
        bodies.append(lines[len(lines) // 2])
    return paths, bodies


def test_image_is_pkgc_and_holds_no_host_ca_or_pip_config(builder, engine):
    assert builder["tags"] == [f"pkgc/pkgc:{Project.read(ROOT).version}", IMAGE]
    info = engine.image_info(IMAGE)
    assert info is not None and info.id == builder["config_digest"]
    paths, bodies = host_secrets()
    assert bodies, "this host has its own CA (/usr/local/share/ca-certificates): the check needs one"
    found_paths, leaks, names = [], [], set()
    for path, member, tar in image_files(builder["manifest_digest"]):
        names.add(path)
        if path in paths or path.endswith("pip.conf") or path.startswith(("etc/ssl/", "usr/local/share/ca-certificates/")):
            found_paths.append(path)
        if member.isfile() and member.size < (64 << 20):
            data = tar.extractfile(member).read()
            leaks += [path for body in bodies if body in data]
    assert not found_paths and not leaks, (found_paths, leaks)
    assert {"usr/bin/skopeo", "etc/containers/policy.json", "opt/pkgc/venv/bin/pkgc"} <= names
    assert not {"usr/bin/mmdebstrap", "usr/bin/docker", "usr/bin/dockerd"} & names


def test_image_runs_pkgc_read_only_as_user_10001(builder):
    proc = subprocess.run(["docker", "run", "--rm", "--read-only", "--user", "10001", "--cap-drop", "ALL", "--security-opt",
                           "no-new-privileges", "--network", "none", "--entrypoint", "sh", IMAGE, "-c",
                           "id -u; pkgc --version; skopeo --version; touch /opt/x 2>&1 || echo read-only"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(UID) and lines[1] == f"pkgc {Project.read(ROOT).version}" and lines[2].startswith("skopeo version ")
    assert lines[-1] == "read-only"


def offline_cache(cache: Path, lock_file: Path) -> None:
    """A fresh pkgc cache holding what the build needs and cannot fetch here: the lock's wheels and
    the base image (its blobs, named as on the host), copied from the host's cache."""
    host = host_cache()
    for package in read_lock(lock_file).packages:
        source = host / "files" / package.sha256
        assert source.is_dir(), f"{package.filename} is not in the host cache"
        shutil.copytree(source, cache / "files" / package.sha256)
    host_store, store = OciStore.in_cache(host), OciStore.in_cache(cache)
    entry = host_store.find(BASE)
    assert entry is not None, f"{BASE} is not in the host's OCI store"
    from compiler.oci.blobs import Blob
    from compiler.oci.outputs import StoredImage

    for digest in StoredImage.read(host_store, entry["digest"]).blobs:  # one image, or the index of several platforms'
        store.blobs.import_file(host_store.blobs.path(digest), digest)
    store.name([BASE], Blob(entry["digest"], entry["size"]), media_type=entry.get("mediaType", MANIFEST))


def test_build_and_push_in_the_image_gives_the_host_digest(builder, readonly_package, registered, session_env, example_copy, tmp_path):
    """The same cold build (nothing but the lock's wheels and the base in its cache) on the host, with
    no engine, and in the image: one manifest digest, pushed to a loopback registry from the image.
    With byte-code: pkgc here runs on pyenv's 3.11.7, in the image on Debian's 3.11.2, which compile
    some files differently; the base's own Python compiles on both sides (in a chroot here, as root;
    in the image pkgc runs on the base's own Python, so in its own process)."""
    lock = example_copy / "package-moe.conda-lock.yml"  # the session's host build wrote it
    spec = ["build", "package-moe.yml", "--model", registered["model"], "--json"]
    host = tmp_path / "host-cache"
    offline_cache(host, lock)
    started = time.monotonic()
    workspace = tmp_path / "host-workspace"  # a copy: the session's own records stay the session builds'
    shutil.copytree(session_env["PKGC_WORKSPACE"], workspace, symlinks=True)
    on_host = run_pkgc("-q", *spec, cwd=example_copy, env={**session_env, "PKGC_CACHE_DIR": str(host), "DOCKER_HOST": NO_ENGINE,
                                                            "PKGC_WORKSPACE": str(workspace)})  # fmt: skip
    assert on_host.returncode == 0, on_host.stderr[-3000:]
    host_digest = json.loads(on_host.stdout)["manifest_digest"]
    assert json.loads(on_host.stdout)["loaded"] is False  # DOCKER_HOST answers nothing: the OCI back end, no engine
    print(f"\ncold build on the host, no engine: {time.monotonic() - started:.1f} s")
    registry = start_registry(tmp_path / "registry", free_port())
    try:
        work = tmp_path / "work"
        shutil.copytree(session_env["PKGC_WORKSPACE"], work / "workspace", symlinks=True)
        shutil.copytree(example_copy, work / "example", symlinks=True)
        offline_cache(work / ".cache" / "pkgc", lock)
        subprocess.run(["chown", "-R", f"{UID}:{UID}", str(work)], check=True)
        started = time.monotonic()
        proc = subprocess.run([
            "docker", "run", "--rm", "--read-only", "--user", f"{UID}:{UID}", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--network", "host", "-v", f"{work}:/work",
            "-w", "/work/example", IMAGE,
            "-q", *spec, "--push", f"{registry.host}/pkgcimage/sklearn:1",
        ], capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        built = json.loads(proc.stdout)
        print(f"build --push in the image: {time.monotonic() - started:.1f} s")
        assert built["builder"] == "oci" and built["loaded"] is False  # no engine in there
        differ = [(a["kind"], a["why"]) for a, b in zip(json.loads(on_host.stdout)["layers"], built["layers"]) if a["digest"] != b["digest"]]
        assert built["push"]["digest"] == built["manifest_digest"] == host_digest, f"layers that differ: {differ}"
        status, body, headers = registry.manifest("pkgcimage/sklearn", "1")
        assert status == 200 and headers["Docker-Content-Digest"] == host_digest
    finally:
        registry.stop()


def test_docker_host_names_the_engine_pkgc_uses(engine, base_image, tmp_path):
    """The Docker SDK's ``from_env`` is how pkgc connects: an engine reached only through another socket
    path in ``DOCKER_HOST`` (a link to this machine's) answers; one that nobody serves is no engine (exit 5)."""
    link = tmp_path / "pkgcimage-engine.sock"
    link.symlink_to("/var/run/docker.sock")
    env = {**os.environ, "DOCKER_HOST": f"unix://{link}"}
    proc = run_pkgc("-q", "base-image", "build", "debian-bookworm", "--json", env=env)  # asks the engine whether it has it
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout)
    assert found["built"] is False and found["image_id"] == engine.image_info(base_image).id
    missing = run_pkgc("-q", "run", base_image, "--timeout", "1", env={**os.environ, "DOCKER_HOST": NO_ENGINE})
    assert missing.returncode == 5 and "no Docker engine answers" in missing.stderr and "Traceback" not in missing.stderr
