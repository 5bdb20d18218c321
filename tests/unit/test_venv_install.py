"""Installing wheels into the host-side venv in parallel: which wheels must go one after the other,
and what an installing wheel may never touch (a link of the venv, which points outside it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.envbuild.venv import VenvTarget, assemble_venv, install_groups
from compiler.errors import BuildError
from tests.unit.test_env_layers import make_wheel, wheels

PREFIX = "/opt/pkgc/venv"


def test_wheels_sharing_identical_files_install_apart_and_different_ones_in_lock_order(tmp_path):
    """The CUDA wheels' identical ``nvidia/__init__.py`` no longer puts them all on one worker (1.8 GB
    of torch's environment installed by one process); a file two wheels ship with other bytes still
    makes them one group, so the later in lock order wins whatever the parallelism."""
    said: list[str] = []
    found = wheels(tmp_path / "w")
    groups = install_groups(found, said.append)
    names = [[w.name.split("-")[0] for w in g.wheels] for g in groups]
    assert ["nvidia_cublas_cu12"] in names and ["nvidia_cudnn_cu12"] in names  # identical bytes: apart
    assert ["torch", "six"] in names  # shared_ns/__init__.py differs: one group, lock order
    by_first = {g.wheels[0].name.split("-")[0]: g for g in groups}
    assert by_first["nvidia_cublas_cu12"].overwrite and by_first["nvidia_cudnn_cu12"].overwrite
    assert not by_first["triton"].overwrite and by_first["torch"].size == sum(w.stat().st_size for w in by_first["torch"].wheels)
    assert len(said) == 1 and "shared_ns/__init__.py with different bytes" in said[0]

    for attempt in range(3):  # two workers, whichever writes nvidia/__init__.py first
        root = assemble_venv(found, VenvTarget(PREFIX, "3.11", "/usr/bin"), tmp_path / f"s{attempt}", workers=2)
        site = root / "lib/python3.11/site-packages"
        assert (site / "nvidia/__init__.py").read_bytes() == b""
        assert (site / "shared_ns/__init__.py").read_bytes() == b"# six\n"  # six comes after torch in the lock
        assert (site / "nvidia/cublas/lib/libcublas.so.12").is_file() and (site / "nvidia/cudnn/__init__.py").is_file()


@pytest.mark.parametrize("host_python_exists", [True, False])
def test_a_wheel_cannot_write_through_the_venv_s_link_to_the_base_s_python(tmp_path, host_python_exists):
    """The venv's ``bin/python`` points at the base's Python (``/usr/bin/python3`` in the image); on the
    host that path is the host's own file, or nothing. A wheel shipping ``bin/python`` (a script in its
    ``.data``) is refused, and neither overwrites nor creates that host file, alone or beside others."""
    home = tmp_path / "host-bin"
    home.mkdir()
    if host_python_exists:
        (home / "python3").write_bytes(b"the host's python")
    hostile = make_wheel(tmp_path, "evil", "1.0", {"evil/__init__.py": b"", "evil-1.0.data/scripts/python": b"#!/bin/sh\necho owned\n"})
    others = [make_wheel(tmp_path, f"ok{i}", "1.0", {f"ok{i}/__init__.py": b""}) for i in range(2)]
    with pytest.raises(BuildError, match=r"evil-1\.0-py3-none-any\.whl.*a link the environment holds"):
        assemble_venv([*others, hostile], VenvTarget(PREFIX, "3.11", str(home)), tmp_path / "staging", workers=2)
    if host_python_exists:
        assert (home / "python3").read_bytes() == b"the host's python"
    else:
        assert not (home / "python3").exists()


def test_a_wheel_cannot_write_through_a_folder_linked_out_of_the_environment(tmp_path):
    """A conda environment may hold links (a package's own); a wheel installed over it that writes into
    a folder linked out of the staging tree is refused and writes nothing there."""
    from compiler.envbuild.venv import install_wheels

    outside = tmp_path / "outside"
    outside.mkdir()
    staging = tmp_path / "staging"
    site = staging / PREFIX.lstrip("/") / "lib/python3.11/site-packages"
    site.mkdir(parents=True)
    (site / "evil").symlink_to(outside)  # as a hostile conda package could leave it
    hostile = make_wheel(tmp_path, "evil", "1.0", {"evil/__init__.py": b"owned = True\n"})
    with pytest.raises(BuildError, match="a link out of the environment"):
        install_wheels([hostile], VenvTarget(PREFIX, "3.11", "/usr/bin"), staging, overwrite=True)
    assert list(outside.iterdir()) == []


def test_a_wheel_whose_copy_is_the_first_s_still_installs_before_a_later_different_one(tmp_path):
    """Three wheels ship one file: the second with the first's bytes, the third with others. All three
    are one group: were the second apart, it could write the first's bytes after the third's."""
    files = [b"A = 1\n", b"A = 1\n", b"A = 2\r\n"]
    found = [make_wheel(tmp_path, f"w{i}", "1.0", {"ns/__init__.py": data, f"w{i}/__init__.py": b""}) for i, data in enumerate(files)]
    groups = install_groups(found)
    assert [[w.name.split("-")[0] for w in g.wheels] for g in groups] == [["w0", "w1", "w2"]]
    for attempt in range(3):
        root = assemble_venv(found, VenvTarget(PREFIX, "3.11", "/usr/bin"), tmp_path / f"s{attempt}", workers=2)
        assert (root / "lib/python3.11/site-packages/ns/__init__.py").read_bytes() == b"A = 2\r\n"
