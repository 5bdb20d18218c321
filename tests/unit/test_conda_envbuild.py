"""The conda environment linked on the host by py-rattler for the in-image prefix (the OCI back
end's conda path): placeholders, entry points and conda-meta name /opt/pkgc/env and never the
staging folder; two assemblies give the same bytes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from compiler.envbuild.conda import CondaTarget, assemble_conda_env, locked_packages
from compiler.errors import BuildError
from tests.e2e.conda_channel import build_channel, demo_packages
from tests.unit.test_oci_backend import make_wheel

PREFIX = "/opt/pkgc/env"
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"


def placeholder_package(folder: Path) -> Path:
    """A linux-64 package with a text and a binary file that embed the build prefix (as compiled
    packages do): rattler must write the in-image prefix into both."""
    text = f"prefix={PLACEHOLDER}\nlib={PLACEHOLDER}/lib\n".encode()
    binary = b"\x7fELF\x00" + f"{PLACEHOLDER}/lib/libdemo.so".encode() + b"\x00" * 8 + b"tail"
    files = {"etc/demo.conf": (text, "text"), "lib/demo.bin": (binary, "binary")}
    paths = [{"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(d).hexdigest(), "size_in_bytes": len(d),
              "prefix_placeholder": PLACEHOLDER, "file_mode": mode} for p, (d, mode) in sorted(files.items())]  # fmt: skip
    index = {"name": "demo-prefix", "version": "1.0", "build": "0", "build_number": 0, "depends": [], "license": "MIT",
             "subdir": "linux-64", "arch": "x86_64", "platform": "linux", "timestamp": 1700000000000}  # fmt: skip
    members = {
        "info/index.json": json.dumps(index).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}).encode(),
        "info/files": "".join(f"{p}\n" for p in sorted(files)).encode(),
        "info/has_prefix": "".join(f"{PLACEHOLDER} {m} {p}\n" for p, (_d, m) in sorted(files.items())).encode(),
        **{p: d for p, (d, _m) in files.items()},
    }
    path = folder / "linux-64" / "demo-prefix-1.0-0.tar.bz2"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:bz2") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The demo channel's locked packages (named by https URLs, as a real lock would) and a wheel."""
    root = tmp_path_factory.mktemp("conda-envbuild")
    channel = build_channel(root / "channel", demo_packages())
    files = {name: channel.files[name] for name in ("pkgc-demo-1.2.0-pyh0_0.tar.bz2", "pkgc-demo-data-1.0-0.tar.bz2")}
    files["demo-prefix-1.0-0.tar.bz2"] = placeholder_package(root / "channel")
    entries = [{"name": name.rsplit("-", 2)[0], "manager": "conda", "platform": "linux-64",
                "url": f"https://conda.example/demo/{'linux-64' if 'prefix' in name else 'noarch'}/{name}",
                "hash": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}} for name, path in files.items()]  # fmt: skip
    lock = json.dumps({"metadata": {"custom_metadata": {"pkgc.python": "3.11"}}, "package": entries}).encode()
    (root / "wheels").mkdir()
    return root, lock, files, make_wheel(root / "wheels")


def assemble(inputs, name: str) -> Path:
    root, lock, files, wheel = inputs
    python, has_python, packages = locked_packages(lock, files)
    assert python == "3.11" and not has_python
    staging = root / name / "staging"
    staging.mkdir(parents=True)
    return assemble_conda_env(packages, [wheel], CondaTarget(PREFIX, python, "/usr/bin"), staging, workers=2)


def tree(folder: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            out[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else (b"" if path.is_dir() else path.read_bytes())
    return out


def test_the_environment_names_the_in_image_prefix_only(inputs):
    env = assemble(inputs, "one")
    assert (env / "etc/demo.conf").read_text() == f"prefix={PREFIX}\nlib={PREFIX}/lib\n"
    binary = (env / "lib/demo.bin").read_bytes()
    assert f"{PREFIX}/lib/libdemo.so".encode() in binary and PLACEHOLDER.encode() not in binary
    assert len(binary) == len(b"\x7fELF\x00" + f"{PLACEHOLDER}/lib/libdemo.so".encode() + b"\x00" * 8 + b"tail")
    assert (env / "bin/pkgc-demo").read_text().startswith(f"#!{PREFIX}/bin/python3.11\n")  # noarch entry point
    assert (env / "bin/pkgc-hd-demo").read_text().startswith(f"#!{PREFIX}/bin/python\n")  # the wheel's script
    assert os.readlink(env / "bin/python") == "/usr/bin/python3" and "home = /usr/bin" in (env / "pyvenv.cfg").read_text()
    assert (env / "lib/python3.11/site-packages/pkgc_demo/__init__.py").is_file()
    assert (env / "lib/python3.11/site-packages/pkgc_hd_demo/__init__.py").is_file()
    staging = str(env.parent.parent.parent).encode()
    assert [p for p, data in tree(env).items() if isinstance(data, bytes) and staging in data] == []


def test_conda_meta_names_the_lock_and_reads_back(inputs):
    from rattler import PrefixRecord

    env = assemble(inputs, "meta")
    meta = env / "conda-meta" / "pkgc-demo-1.2.0-pyh0_0.json"
    record = json.loads(meta.read_text())
    assert record["url"] == "https://conda.example/demo/noarch/pkgc-demo-1.2.0-pyh0_0.tar.bz2"
    assert record["channel"] == "https://conda.example/demo"
    assert not {"extracted_package_dir", "package_tarball_full_path", "link"} & set(record)
    assert PrefixRecord.from_path(meta).name.normalized == "pkgc-demo"
    assert meta.stat().st_mode & 0o777 == 0o644
    assert not (env / "conda-meta" / "python-3.11-base_image.json").exists()  # the stand-in is never installed


def test_two_assemblies_give_the_same_bytes(inputs):
    assert tree(assemble(inputs, "first")) == tree(assemble(inputs, "second"))


def test_a_package_missing_from_the_plan_is_one_clear_error(inputs):
    _root, lock, files, _wheel = inputs
    with pytest.raises(BuildError, match="no file for the locked conda package pkgc-demo-data-1.0-0.tar.bz2"):
        locked_packages(lock, {k: v for k, v in files.items() if "data" not in k})
