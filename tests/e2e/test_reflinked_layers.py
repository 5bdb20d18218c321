"""On a filesystem with reflinks, a model costs its bytes once: the workspace's copy (``pkgc model
create``) and the model layer in pkgc's store share the user's file's extents.

Each test makes a real XFS (``reflink=1``) or btrfs filesystem in a 1 GiB sparse file, mounts it
(a loop device: root, ``mount -o loop``; no kernel setting changes), registers a 200 MiB model there
with the real CLI and writes its model image into a store on the same filesystem. The kernel's
FIEMAP then reports the layer's data extents as shared, the filesystem's free space drops by a small
fraction of the model, and a later write into the user's file leaves the stored blob as it was (a
shared extent is copied on write, never aliased). ``scripts/setup.sh`` installs xfsprogs and
btrfs-progs; without root or a loop device the tests skip and say why."""

from __future__ import annotations

import array
import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from compiler.backends.oci.model_image import ModelSource, build_model_image
from compiler.oci.store import OciStore
from compiler.workspace.store import Workspace
from tests.conftest import run_pkgc

MODEL_BYTES = 200 << 20
FS_IMAGE_BYTES = 1 << 30
FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_SHARED = 0x2000
EXTENT_SLOTS = 512
MKFS = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "btrfs": ["mkfs.btrfs", "-q"]}


def _shared_bytes(path: Path, start: int, length: int) -> int:
    """Bytes of ``path`` in [start, start+length) whose extents the kernel reports as shared."""
    shared, position, end = 0, start, start + length
    with open(path, "rb") as fh:
        while position < end:
            request = struct.pack("=QQIIII", position, end - position, FIEMAP_FLAG_SYNC, 0, EXTENT_SLOTS, 0)
            buffer = array.array("B", request + bytes(56 * EXTENT_SLOTS))
            fcntl.ioctl(fh.fileno(), FS_IOC_FIEMAP, buffer, True)
            mapped = struct.unpack_from("=I", buffer, 20)[0]
            if mapped == 0:
                break
            for i in range(mapped):
                logical, _physical, size = struct.unpack_from("=QQQ", buffer, 32 + 56 * i)
                flags = struct.unpack_from("=I", buffer, 32 + 56 * i + 40)[0]
                low, high = max(logical, start), min(logical + size, end)
                if flags & FIEMAP_EXTENT_SHARED and high > low:
                    shared += high - low
                position = logical + size
    return shared


def _free(folder: Path) -> int:
    os.sync()
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


@pytest.fixture(params=sorted(MKFS))
def reflink_fs(request, tmp_path):
    """A freshly made filesystem of the kind asked, mounted at ``tmp_path/mnt``."""
    kind = request.param
    if os.geteuid() != 0 or not Path("/dev/loop-control").exists():
        pytest.skip("mounting a loop filesystem needs root and /dev/loop-control")
    if shutil.which(MKFS[kind][0]) is None:
        pytest.skip(f"{MKFS[kind][0]} is not installed (scripts/setup.sh installs it)")
    image, mount = tmp_path / f"{kind}.img", tmp_path / "mnt"
    with open(image, "wb") as fh:
        fh.truncate(FS_IMAGE_BYTES)
    subprocess.run([*MKFS[kind], str(image)], check=True, capture_output=True)
    mount.mkdir()
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine cannot mount a loop {kind} filesystem: {mounted.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_the_model_layer_shares_the_models_extents(reflink_fs, tmp_path):
    model = reflink_fs / "user" / "model"
    model.mkdir(parents=True)
    weights = model / "weights.safetensors"
    with open(weights, "wb") as fh:
        for _ in range(MODEL_BYTES // (8 << 20)):
            fh.write(os.urandom(8 << 20))
    (model / "config.json").write_text('{"hidden": 4}')
    env = dict(os.environ, PKGC_WORKSPACE=str(reflink_fs / "ws"), PKGC_CACHE_DIR=str(reflink_fs / "cache"))

    before_create = _free(reflink_fs)
    created = run_pkgc("model", "create", "--name", "big", "--path", str(model), env=env)
    assert created.returncode == 0, created.stderr
    workspace_cost = before_create - _free(reflink_fs)
    record = Workspace(reflink_fs / "ws").get_model("big", "1")
    tree = Workspace(reflink_fs / "ws").tree_path(record.tree)
    stored = tree / record.root_name / "weights.safetensors"
    assert _shared_bytes(stored, 0, MODEL_BYTES) >= MODEL_BYTES * 0.95

    before_layers = _free(reflink_fs)
    store = OciStore.in_cache(reflink_fs / "cache")
    image = build_model_image(ModelSource("big", "1", record.type, record.tree, tree, record.root_name), store)
    layers_cost = before_layers - _free(reflink_fs)
    layers = store.read_json(image.manifest_digest)["layers"]
    big_layer = store.blobs.path(max(layers, key=lambda layer: layer["size"])["digest"])
    with tarfile.open(big_layer) as tar:
        member = tar.getmember(f"{record.root_name}/weights.safetensors")
        original_head = tar.extractfile(member).read(64)
    assert member.offset_data % 4096 == 0
    shared = _shared_bytes(big_layer, member.offset_data, MODEL_BYTES)
    print(f"\n{reflink_fs}: workspace copy cost {workspace_cost >> 20} MiB, model layers {layers_cost >> 20} MiB, "
          f"layer data shared {shared >> 20} of {MODEL_BYTES >> 20} MiB")
    assert shared >= MODEL_BYTES * 0.95
    assert workspace_cost < MODEL_BYTES * 0.1 and layers_cost < MODEL_BYTES * 0.1

    with open(weights, "r+b") as fh:  # the user edits the model in place: the stored copies keep their bytes
        fh.write(b"changed by the user")
    with open(stored, "r+b") as fh:  # even the workspace's own copy (pkgc keeps it read-only, a hand may not)
        fh.write(b"changed by a hand")
    assert "sha256:" + hashlib.sha256(big_layer.read_bytes()).hexdigest() == max(layers, key=lambda layer: layer["size"])["digest"]
    with tarfile.open(big_layer) as tar:
        assert tar.extractfile(tar.getmember(member.name)).read(64) == original_head
    assert original_head[:17] != b"changed by a hand"[:17]
