"""A full or read-only cache is one line naming the path, exit 3, no traceback, nothing half-written:
on a real small file system (a 1 MiB tmpfs mounted by the test, skipped where mounting is not
permitted) and a real read-only one (the same tmpfs remounted read-only). The build is real and
offline: a custom-server package whose one pip package (a 2 MiB wheel the test builds) comes from
a local find-links folder through pip's own settings, no engine."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from compiler.cache.faults import storage_fault
from compiler.oci.layer import Entry, write_layer
from compiler.oci.store import OciStore
from tests.conftest import run_pkgc

SPEC = """\
base_environment_source:
  type: environment_asset
  resource_id: azureml:big-env:1
target_environment: big-pkg
inferencing_server:
  type: custom
  inference_configuration:
    entry_script: python -m http.server 8000
    scoring_route: {port: 8000, path: /score}
    readiness_route: {port: 8000, path: /}
model: azureml:m:1
"""


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB file system of its own."""
    folder = tmp_path / "small"
    _mount_tmpfs(folder, "1m")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _wheel(folder: Path) -> Path:
    name, version = "pkgc_demo_big", "1.0"
    files = {f"{name}/__init__.py": b"", f"{name}/blob.bin": os.urandom(2 << 20),
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: pkgc-demo-big\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}  # fmt: skip
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n" for p, d in files.items())
    files[f"{name}-{version}.dist-info/RECORD"] = (record + f"{name}-{version}.dist-info/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


@pytest.fixture
def package(tmp_path) -> tuple[Path, dict]:
    """The spec and an environment (workspace, pip settings, no engine) whose build fetches 2 MiB."""
    wheels = _wheel(tmp_path / "wheels").parent
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "conda.yaml").write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - pkgc-demo-big==1.0\n")
    (tmp_path / "env" / "env.yml").write_text("name: big-env\nimage: pkgc/base-debian-bookworm:latest\nconda_file: conda.yaml\n")
    (tmp_path / "model.txt").write_text("model\n")
    (tmp_path / "package.yml").write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PKGC_WORKSPACE=str(tmp_path / "ws"), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels),
               DOCKER_HOST="unix:///nonexistent/pkgc-no-engine.sock", UV_CACHE_DIR=str(tmp_path / "uv"))  # fmt: skip
    assert run_pkgc("-q", "model", "create", "--name", "m", "--path", str(tmp_path / "model.txt"), env=env).returncode == 0
    assert run_pkgc("-q", "environment", "create", "--file", str(tmp_path / "env" / "env.yml"), env=env).returncode == 0
    return tmp_path / "package.yml", env


def _one_error_line(proc) -> str:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pkgc: error: "), proc.stderr
    return lines[0]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial" in p.name or p.name.startswith("pkgc-")]


def test_a_full_cache_is_one_line_naming_the_path(small_fs, package):
    spec, env = package
    proc = run_pkgc("-q", "build", str(spec), env=dict(env, PKGC_CACHE_DIR=str(small_fs / "cache")))
    assert proc.returncode == 3, proc.stderr
    line = _one_error_line(proc)
    assert line.startswith(f"pkgc: error: {small_fs / 'cache' / 'files'}/")
    assert "no space left on device" in line and "pkgc cache prune --max-size" in line
    assert _partials(small_fs) == []  # the half-copied file went with the failure


def test_a_read_only_cache_is_one_line_naming_the_path(small_fs, package):
    spec, env = package
    (small_fs / "cache").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    for progress in ("-q", "--progress=plain"):
        proc = run_pkgc(progress, "build", str(spec), env=dict(env, PKGC_CACHE_DIR=str(small_fs / "cache")))
        assert proc.returncode == 3, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "error" in line]
        assert len(errors) == 1, proc.stderr
        if progress == "-q":
            assert errors == [_one_error_line(proc)]
        assert errors[0].startswith(f"pkgc: error: {small_fs / 'cache'}")
        assert "read-only file system" in errors[0] and "PKGC_CACHE_DIR" in errors[0]
        assert "Traceback" not in proc.stderr and "pkgc full log" not in proc.stderr
    missing = run_pkgc("-q", "build", str(spec), env=dict(env, PKGC_CACHE_DIR=str(small_fs / "cache" / "new")))
    assert missing.returncode == 3 and _one_error_line(missing) == (
        f"pkgc: error: {small_fs / 'cache' / 'new'}: read-only file system "
        "(pkgc's cache must be writable: set PKGC_CACHE_DIR to a folder that is)"
    )


def test_a_blob_that_does_not_fit_leaves_nothing_and_its_fault_names_the_full_folder(small_fs, tmp_path):
    store = OciStore(small_fs / "cache" / "oci")
    with pytest.raises(OSError) as caught:
        write_layer([Entry("weights.bin", "file", 0o644, data=os.urandom(3 << 20))], store.blobs, 0, compress=False)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename is None  # a write names no file
    assert list(store.blobs.root.iterdir()) == []
    fault = storage_fault(caught.value, small_fs / "cache", tmp_path / "ws")
    assert fault is not None and fault.exit_code == 3
    assert fault.lines() == [f"{small_fs / 'cache'}: no space left on device (pkgc's cache: 'pkgc cache du' shows what "
                             "it holds, 'pkgc cache prune --max-size SIZE' frees it)"]  # fmt: skip


def test_other_errors_stay_what_they_are(tmp_path):
    outside = OSError(errno.EACCES, "Permission denied", "/etc/shadow")
    assert storage_fault(outside, tmp_path / "cache", tmp_path / "ws") is None  # the user's input, not pkgc's folders
    assert storage_fault(OSError(errno.ENOENT, "No such file", str(tmp_path)), tmp_path / "cache", tmp_path / "ws") is None
    (tmp_path / "cache").write_text("a file, not a folder")
    with pytest.raises(OSError) as caught:
        (tmp_path / "cache" / "logs").mkdir(parents=True)
    assert storage_fault(caught.value, tmp_path / "cache", tmp_path / "ws").lines() == [
        f"{tmp_path / 'cache' / 'logs'}: a file where a folder must be (pkgc's cache must be writable: set PKGC_CACHE_DIR "
        "to a folder that is)"
    ]
    denied = storage_fault(OSError(errno.EACCES, "Permission denied", str(tmp_path / "ws" / "models")), tmp_path / "cache", tmp_path / "ws")
    assert denied is not None and denied.lines() == [f"{tmp_path / 'ws' / 'models'}: permission denied (the workspace must be "
                                                     "writable: set PKGC_WORKSPACE or --workspace to a folder that is)"]  # fmt: skip
