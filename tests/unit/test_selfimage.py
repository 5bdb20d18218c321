"""pkgc's own image (compiler/selfimage): the rootfs diff that becomes the tools layer, the layers'
determinism, the image config. Real tars and a real blob store, written by the tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from compiler.baseimages.recipes import load_recipe
from compiler.envbuild.venv import VenvTarget
from compiler.errors import BuildError
from compiler.oci.base import BaseImage
from compiler.oci.compress import open_layer
from compiler.oci.layer import Entry, write_layer
from compiler.oci.store import OciStore
from compiler.selfimage.config import UID, WORK, ImageLayer, image_config, user_lines
from compiler.selfimage.rootfs_diff import diff_entries, tree_facts
from compiler.selfimage.runtime import Project, launcher, source_layer
from compiler.selfimage.tools_layer import base_facts, tools_recipe


def tar_bytes(members: list[tuple]) -> bytes:
    """A tar of (name, kind, mode, content-or-target[, uid]) members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, value, *uid in members:
            info = tarfile.TarInfo(name)
            info.mode, info.uid = mode, (uid[0] if uid else 0)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return out.getvalue()


BASE = [
    ("./", "dir", 0o755, None), ("./tmp", "dir", 0o1777, None), ("./etc", "dir", 0o755, None),
    ("./etc/keep", "file", 0o644, b"same"), ("./etc/status", "file", 0o644, b"old"),
    ("./etc/mode", "file", 0o644, b"m"), ("./etc/gone", "file", 0o644, b"x"),
    ("./var", "dir", 0o755, None), ("./var/old", "dir", 0o700, None), ("./var/old/a", "file", 0o600, b"a"),
    ("./usr", "dir", 0o755, None), ("./usr/bin", "dir", 0o755, None),
]  # fmt: skip


def layer_members(store: OciStore, digest: str, media_type: str) -> dict[str, tuple]:
    with open(store.blobs.path(digest), "rb") as raw, open_layer(raw, media_type) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        return {m.name: (m.type, m.mode, m.uid, m.linkname, tar.extractfile(m).read() if m.isfile() else None) for m in tar}


def test_the_diff_holds_what_changed_and_whiteouts_for_what_went(tmp_path):
    new = [m for m in BASE if m[0] not in ("./etc/gone", "./var/old", "./var/old/a")]
    new = [("./etc/status", "file", 0o644, b"new") if m[0] == "./etc/status" else m for m in new]
    new = [("./etc/mode", "file", 0o4755, b"m") if m[0] == "./etc/mode" else m for m in new]
    new += [("./usr/bin/tool", "file", 0o755, b"\x7fELF tool"), ("./usr/bin/alias", "symlink", 0o777, "tool"),
            ("./usr/bin/twin", "hardlink", 0o755, "./usr/bin/tool"), ("./tmp/cache", "file", 0o600, b"c", 7)]  # fmt: skip
    base = tree_facts(io.BytesIO(tar_bytes(BASE)))
    staging = tmp_path / "files"
    staging.mkdir()
    entries = diff_entries(base, io.BytesIO(tar_bytes(new)), staging)
    store = OciStore(tmp_path / "oci")
    blob = write_layer(entries, store.blobs, 0)
    found = layer_members(store, blob.digest, blob.media_type)
    assert found["etc/status"][4] == b"new" and found["etc/mode"][1] == 0o4755
    assert found["usr/bin/tool"][4] == found["usr/bin/twin"][4] == b"\x7fELF tool"  # a hard link: its target's bytes
    assert found["usr/bin/alias"][0] == tarfile.SYMTYPE and found["usr/bin/alias"][3] == "tool"
    assert found["tmp/cache"][2] == 7 and found["tmp"][1] == 0o1777  # an unchanged parent keeps the base's mode
    assert "etc/.wh.gone" in found and "var/.wh.old" in found and "var/old/.wh.a" not in found
    assert "etc/keep" not in found and "etc/status" in found  # unchanged content is the base's
    assert write_layer(diff_entries(base, io.BytesIO(tar_bytes(new)), staging), store.blobs, 0).digest == blob.digest


def test_base_facts_apply_layers_in_order_with_whiteouts(tmp_path):
    store = OciStore(tmp_path / "oci")
    first = write_layer([Entry("etc/a", "file", 0o644, data=b"a"), Entry("opt/d/x", "file", 0o644, data=b"x"),
                         Entry("srv/y", "file", 0o644, data=b"y")], store.blobs, 0)  # fmt: skip
    second = write_layer([Entry("etc/.wh.a", "file", 0o644, data=b""), Entry("opt/d/.wh..wh..opq", "file", 0o644, data=b""),
                          Entry("srv/y", "file", 0o600, data=b"z")], store.blobs, 0)  # fmt: skip
    base = BaseImage("t", "sha256:" + "0" * 64, {"layers": [first.descriptor(), second.descriptor()]}, {"rootfs": {"diff_ids": []}}, "store")
    facts = base_facts(store, base)
    assert "etc/a" not in facts and "opt/d/x" not in facts and "opt/d" in facts
    assert facts["srv/y"].mode == 0o600 and not any(".wh." in p for p in facts)


def test_tools_recipe_adds_the_tools_to_the_base_recipe_and_keeps_the_rest():
    base = load_recipe("debian-bookworm")
    recipe = tools_recipe(base, ("skopeo",))
    assert recipe.bootstrap.packages == base.bootstrap.packages + ("skopeo",)
    assert recipe.bootstrap.stub_packages == base.bootstrap.stub_packages == ("ca-certificates",)  # no CA bundle
    assert recipe.bootstrap.source_date_epoch == base.bootstrap.source_date_epoch and recipe.digest != base.digest


def test_image_config_runs_pkgc_as_a_non_root_user_writing_only_under_work():
    base = {"architecture": "arm64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["python3"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}, "history": [{"created_by": "base"}]}  # fmt: skip
    layer = ImageLayer("source", "pkgc", "sha256:" + "2" * 64, 10, "sha256:" + "3" * 64, "application/vnd.oci.image.layer.v1.tar+gzip")
    config = image_config(base, [layer], "9.9", 0)
    inner = config["config"]
    env = dict(item.split("=", 1) for item in inner["Env"])
    assert inner["User"] == f"{UID}:{UID}" and inner["Entrypoint"] == ["/opt/pkgc/venv/bin/pkgc"] and "Cmd" in inner
    assert env["HOME"] == WORK and env["PKGC_CACHE_DIR"].startswith(WORK + "/") and env["TMPDIR"] == WORK
    assert env["XDG_CACHE_HOME"].startswith(WORK + "/") and env["PATH"] == "/opt/pkgc/venv/bin:/usr/bin:/bin" and env["LANG"] == "C.UTF-8"
    assert config["architecture"] == "arm64"  # the base's, never spelt here
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, "sha256:" + "3" * 64]
    assert len(config["history"]) == 3 and inner["Labels"]["org.opencontainers.image.version"] == "9.9"


def test_user_lines_add_pkgc_once():
    passwd, group = user_lines("root:x:0:0:root:/root:/bin/bash", "root:x:0:\n")
    assert passwd.splitlines()[-1] == f"pkgc:x:{UID}:{UID}:pkgc:{WORK}:/usr/sbin/nologin" and group.endswith(f"pkgc:x:{UID}:\n")
    assert user_lines(passwd, group) == (passwd, group)


def fake_project(root: Path, version: str = "1.2.3") -> Project:
    (root / "compiler" / "sub").mkdir(parents=True)
    (root / "compiler" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (root / "compiler" / "sub" / "mod.py").write_text("VALUE = 1\n")
    (root / "compiler" / "__pycache__").mkdir()
    (root / "compiler" / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"stale")
    (root / "templates").mkdir()
    (root / "templates" / "t.j2").write_text("{{ x }}\n")
    (root / "base-images" / "r").mkdir(parents=True)
    (root / "base-images" / "r" / "recipe.toml").write_text("name = 'r'\n")
    (root / "pyproject.toml").write_text(f'[project]\nname = "pkgc"\nversion = "{version}"\ndependencies = ["pyyaml>=6"]\n')
    return Project.read(root)


def test_source_layer_is_pkgc_as_its_wheel_lays_it_out_and_is_deterministic(tmp_path):
    project = fake_project(tmp_path / "src")
    assert project.requirements == ("pyyaml>=6",) and project.version == "1.2.3"
    target = VenvTarget("/opt/pkgc/venv", "3.11", "/usr/bin")
    store = OciStore(tmp_path / "oci")
    blob = source_layer(store, project, target, 0, "gzip", lambda _line: None)
    found = layer_members(store, blob.digest, blob.media_type)
    site = "opt/pkgc/venv/lib/python3.11/site-packages"
    assert found["opt/pkgc/venv/bin/pkgc"][4] == launcher(target) and found["opt/pkgc/venv/bin/pkgc"][1] == 0o755
    assert {f"{site}/compiler/sub/mod.py", f"{site}/compiler/_data/templates/t.j2", f"{site}/compiler/_data/base-images/r/recipe.toml",
            f"{site}/pkgc-1.2.3.dist-info/METADATA"} <= set(found)  # fmt: skip
    assert not any("stale" in name for name in found)  # the checkout's caches stay out
    assert source_layer(store, project, target, 0, "gzip", lambda _line: None).digest == blob.digest


def test_a_pyproject_without_a_project_table_is_one_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.x]\ny = 1\n")
    with pytest.raises(BuildError, match="pyproject.toml: no \\[project\\]"):
        Project.read(tmp_path)


def test_the_runtime_lock_is_reused_while_the_dependencies_are_the_same(tmp_path):
    from compiler.lock.lockfile import write_lock
    from compiler.lock.types import Lock, LockedPackage, inputs_hash
    from compiler.selfimage.runtime import EXTRA, runtime_lock, runtime_strategy

    project = fake_project(tmp_path / "src")
    strategy = runtime_strategy(project, "3.11", "2.36")
    assert strategy.kind == "venv" and strategy.pip == ("pyyaml>=6", *EXTRA) and strategy.glibc == "2.36"
    package = LockedPackage("pyyaml", "6.0.2", "pip", "https://files.example/PyYAML-6.0.2-py3-none-any.whl",
                            "PyYAML-6.0.2-py3-none-any.whl", "a" * 64)  # fmt: skip
    path = tmp_path / "lock.yml"
    write_lock(Lock("venv", "3.11", inputs_hash(strategy), (package,)), path, ["pyproject.toml"])
    lock, status = runtime_lock(strategy, path, tmp_path / "cache", lambda _line: None)  # no resolver runs: no network
    assert status == "reused" and [p.name for p in lock.packages] == ["pyyaml"] and lock.packages[0].sha256 == "a" * 64
