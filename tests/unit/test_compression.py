"""Layer compression (compiler/oci/compress.py): parallel gzip and multi-threaded zstd give the same
bytes whatever the thread count and the write sizes, decompress to the input with independent
decoders (Python's gzip, the gzip and zstd programs), carry their OCI media types, and key the
layer cache; zstd images are read back as bases, by ``pkgc sbom``'s reader and for ``docker load``."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
import zstandard

from compiler.backends.oci.builder import build_oci_image
from compiler.oci.compress import (COMPRESSIONS, GZIP_LAYER, TAR_LAYER, ZSTD_LAYER, ParallelGzip, ParallelZstd,
                                   cache_key, compressor, open_layer)  # fmt: skip
from compiler.oci.layer import Entry, write_layer
from compiler.backends.oci.layers import LayerOptions
from compiler.oci.outputs import StoredImage, write_docker_archive, write_layout
from compiler.backends.oci.scan import scan_base
from compiler.oci.store import CONFIG, MANIFEST, OciStore
from compiler.oci.base import load_from_store
from compiler.backends.oci.config import timestamp
from compiler.reporter import Reporter
from compiler.sbom.image_files import read_layout_file
from tests.unit.test_oci_backend import make_plan, make_wheel


@pytest.fixture(scope="module")
def corpus() -> bytes:
    """About 20 MB of real files (this Python's standard library sources, a tar of them): several
    gzip blocks and several zstd jobs."""
    out = io.BytesIO()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(stdlib.rglob("*.py"))
    assert sources, "no standard library sources"
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for round_ in range(4):  # Debian's stdlib sources are 12.4 MB: take them again under another name
            for path in sources:
                if out.tell() > 20 << 20:
                    break
                tar.add(path, arcname=f"{round_}/{path.relative_to(stdlib)}", recursive=False)
    assert out.tell() > 12 << 20, "the standard library is smaller than expected"
    return out.getvalue()


def compress_in_writes(compress, data: bytes, seed: int, largest: int) -> bytes:
    """``data`` through ``compress`` in writes of random sizes (1 byte to ``largest``)."""
    chosen, out, at = random.Random(seed), [], 0
    while at < len(data):
        size = chosen.randint(1, largest)
        out.append(compress.compress(data[at : at + size]))
        at += size
    out.append(compress.flush())
    return b"".join(out)


def test_gzip_is_the_same_for_every_thread_count_and_write_size(corpus):
    blobs = {compress_in_writes(ParallelGzip(threads), corpus, seed, largest)
             for threads, seed, largest in ((1, 1, 600_000), (2, 2, 70_000), (3, 3, 5_000_000), (7, 4, 1 << 20))}  # fmt: skip
    assert len(blobs) == 1
    blob = blobs.pop()
    assert gzip.decompress(blob) == corpus  # Python's zlib reads it as one member
    assert len(blob) < len(corpus) / 3
    members = blob.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    assert blob.startswith(b"\x1f\x8b\x08") and members >= 1
    if shutil.which("gzip"):  # GNU gzip checks the CRC and the size in the trailer
        assert subprocess.run(["gzip", "-dc"], input=blob, capture_output=True, check=True).stdout == corpus


def test_gzip_of_nothing_and_of_less_than_a_block():
    for data in (b"", b"x", bytes(100_000)):
        for threads in (1, 4):
            gz = ParallelGzip(threads)
            blob = gz.compress(data) + gz.flush()
            assert gzip.decompress(blob) == data


def test_zstd_is_the_same_for_every_thread_count_and_write_size(corpus):
    blobs = {compress_in_writes(ParallelZstd(threads), corpus, seed, largest)
             for threads, seed, largest in ((1, 1, 600_000), (2, 2, 70_000), (4, 3, 3_000_000))}  # fmt: skip
    assert len(blobs) == 1
    blob = blobs.pop()
    assert len(blob) < len(corpus) / 3
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)) as reader:
        assert reader.read(len(corpus) + 1) + reader.read() == corpus
    if shutil.which("zstd"):
        assert subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout == corpus


def test_unknown_compression_is_refused():
    with pytest.raises(ValueError, match="unknown layer compression 'brotli'"):
        compressor("brotli")  # type: ignore[arg-type]


@pytest.mark.parametrize("compression,media", [("gzip", GZIP_LAYER), ("zstd", ZSTD_LAYER), ("none", TAR_LAYER)])
def test_write_layer_media_type_diff_id_and_round_trip(tmp_path, compression, media):
    store = OciStore(tmp_path / "store")
    payload = random.Random(7).randbytes(3 << 20) + bytes(6 << 20)  # more than a gzip block
    entries = [Entry("opt/data/blob.bin", "file", data=payload), Entry("opt/data/note.txt", "file", data=b"hi\n")]
    layer = write_layer(entries, store.blobs, compression=compression)
    assert layer.media_type == media
    with open(store.blobs.path(layer.digest), "rb") as raw, open_layer(raw, media) as tar_stream:
        tar_bytes = tar_stream.read(64 << 20)
    assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == layer.diff_id
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.extractfile("opt/data/blob.bin").read() == payload  # type: ignore[union-attr]
    again = write_layer(entries, OciStore(tmp_path / "again").blobs, compression=compression)
    assert again == layer
    # model weights: compress=False stays a plain tar whatever the build's compression
    assert write_layer(entries, store.blobs, compress=False, compression=compression).media_type == TAR_LAYER


def test_cache_keys_differ_by_compression():
    keys = {cache_key(c) for c in COMPRESSIONS}
    assert len(keys) == 3
    assert zstandard.__version__ in cache_key("zstd")  # a new pinned library is a new key


def test_a_zstd_stream_that_asks_for_a_huge_window_is_refused():
    """A frame header asking for a 2 GiB window: the reader refuses it instead of allocating."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()  # no content size: the window stays
    blob = stream.compress(b"a" * 1000) + stream.flush()
    assert zstandard.get_frame_parameters(blob).window_size == 1 << 31
    with pytest.raises(zstandard.ZstdError):
        open_layer(io.BytesIO(blob), ZSTD_LAYER).read(100)


def test_unreadable_media_types_are_named():
    with pytest.raises(ValueError, match="application/vnd.oci.image.layer.v1.tar\\+bzip2"):
        open_layer(io.BytesIO(b""), "application/vnd.oci.image.layer.v1.tar+bzip2")


def _zstd_base(folder: Path) -> str:
    """A one-layer base image with a zstd layer, as an OCI layout; its reference."""
    store = OciStore(folder / "build")
    layer = write_layer([
        Entry("etc/passwd", "file", data=b"root:x:0:0:root:/root:/bin/bash\nzed:x:5:5::/:/bin/false\n"),
        Entry("etc/group", "file", data=b"root:x:0:\n"),
        Entry("usr/bin/python3.11", "file", 0o755, data=b"#!/bin/false\n"),
        Entry("usr/lib/x86_64-linux-gnu/libzed.so.1", "file", data=b"\x7fELF"),
    ], store.blobs, compression="zstd")  # fmt: skip
    assert layer.media_type == ZSTD_LAYER
    config = store.put_json({
        "architecture": "amd64", "os": "linux", "created": timestamp(0),
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"io.pkgc.base.python": "3.11"}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}, "history": [{"created": timestamp(0), "created_by": "test"}],
    })  # fmt: skip
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [layer.descriptor()],
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size}})  # fmt: skip
    write_layout(store, StoredImage.read(store, manifest.digest), folder / "layout", "base")
    return f"oci:{folder / 'layout'}:base"


def _build(root: Path, base: str, store: OciStore, compression: str):
    root.mkdir(parents=True)
    plan = make_plan(base, make_wheel(root), root / "inputs")
    options = LayerOptions(epoch=0, python="3.11", compression=compression)  # type: ignore[arg-type]
    return build_oci_image(plan, store, None, options, Reporter(quiet=True))


def test_builds_by_compression_share_one_store_without_sharing_blobs(tmp_path):
    """gzip, zstd and none builds of one package in one store: each layer has its media type (the
    model's a plain tar always), the same diff_ids (the same tars), no cached environment blob of
    another compression; on a zstd base, which pkgc scans for its users, Python and libraries."""
    base = _zstd_base(tmp_path / "base")
    store = OciStore(tmp_path / "store")
    built = {c: _build(tmp_path / c, base, store, c) for c in ("gzip", "zstd", "none")}
    manifests = {c: store.read_json(b.manifest_digest) for c, b in built.items()}
    wanted = {"gzip": "tar+gzip", "zstd": "tar+zstd", "none": "tar"}
    for compression, manifest in manifests.items():
        kinds = [l.kind for l in built[compression].layers]
        types = [l["mediaType"].rsplit(".", 1)[-1] for l in manifest["layers"]]
        assert types[0] == "tar+zstd"  # the base's own layer, as it came
        assert types[1:] == [("tar" if kind == "model" else wanted[compression]) for kind in kinds]
    diff_ids = {c: store.read_json(m["config"]["digest"])["rootfs"]["diff_ids"] for c, m in manifests.items()}
    assert diff_ids["gzip"] == diff_ids["zstd"] == diff_ids["none"]
    environments = {c: next(l.blob.digest for l in b.layers if l.kind == "environment") for c, b in built.items()}
    assert len(set(environments.values())) == 3
    again = _build(tmp_path / "again", base, store, "zstd")  # the cached zstd environment layer, reused
    assert again.manifest_digest == built["zstd"].manifest_digest
    scan = scan_base(store, load_from_store(store, {"digest": _base_digest(base)}, base, "oci"))
    assert "zed:x:5:5" in scan.passwd and scan.pythons == {"3.11": "/usr/bin"} and "libzed.so.1" in scan.libraries


def _base_digest(reference: str) -> str:
    import json

    layout = Path(reference.split(":")[1])
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def test_zstd_images_are_read_back_and_loaded_inflated(tmp_path):
    """``pkgc sbom``'s reader finds a file in a zstd layout; the docker-archive for ``docker load``
    holds every zstd layer as its plain tar (Docker 20.10 reads no zstd), gzip layers as they are."""
    base = _zstd_base(tmp_path / "base")
    store = OciStore(tmp_path / "store")
    image = _build(tmp_path / "zstd", base, store, "zstd")
    stored = StoredImage.read(store, image.manifest_digest)
    write_layout(store, stored, tmp_path / "out", "pkg")
    assert read_layout_file(f"oci:{tmp_path / 'out'}:pkg", "/etc/passwd").startswith(b"root:x:0:0")
    assert read_layout_file(f"oci:{tmp_path / 'out'}:pkg", "/opt/pkgc/conda-lock.yml") == b"version: 1\n"
    archive = io.BytesIO()
    write_docker_archive(store, stored, ["pkgc/zstd:1"], archive)
    archive.seek(0)
    diff_ids = store.read_json(stored.config_digest)["rootfs"]["diff_ids"]
    with tarfile.open(fileobj=archive) as tar:
        layers = [tar.extractfile(f"{d.split(':', 1)[1]}.tar").read() for d in stored.layer_digests]  # type: ignore[union-attr]
    assert ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers] == diff_ids
    assert not any(data.startswith(b"\x28\xb5\x2f\xfd") for data in layers)


def test_the_cli_and_the_config_take_the_compression(tmp_path):
    from compiler.options import load_options

    (tmp_path / "pkgc.toml").write_text('slim = false\ncompression = "zstd"\n')
    assert load_options(str(tmp_path / "ws"), tmp_path, environ={}).compression == "zstd"
    (tmp_path / "pkgc.toml").write_text('slim = false\ncompression = "lz4"\n')
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "build", str(tmp_path / "package.yml")],
                          capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PKGC_WORKSPACE": str(tmp_path / "ws"),
                          "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "HOME": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"pkgc: error: {tmp_path / 'pkgc.toml'}:2: compression: must be one of 'gzip', 'zstd', 'none' (got 'lz4')\n"
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "build", "x.yml", "--compression", "lz4"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'lz4'" in proc.stderr


@pytest.mark.parametrize("builder,template,compression,expected", [
    ("docker", None, "zstd", "zstd layers are written by the OCI back end.*--builder docker"),
    ("auto", "my.j2", "none", "none layers are written by the OCI back end.*--template"),
    ("docker", None, "gzip", "docker"), ("auto", None, "zstd", "oci"), ("docker", None, None, "docker"),
])  # fmt: skip
def test_compression_needs_the_oci_back_end(builder, template, compression, expected):
    from compiler.environment.strategy import EnvironmentStrategy
    from compiler.errors import SpecError
    from compiler.backends.choose import backend_name as choose_builder
    from compiler.pipeline import BuildRequest

    request = BuildRequest(Path("package.yml"), builder=builder, template=Path(template) if template else None,
                           compression=compression)  # fmt: skip
    strategy = EnvironmentStrategy("venv", "3.11", "test", ())
    if expected in ("oci", "docker"):
        assert choose_builder(request, strategy) == expected
    else:
        with pytest.raises(SpecError, match=expected):
            choose_builder(request, strategy)


def test_model_package_passes_the_compression_to_build():
    import argparse

    from compiler.commands import package

    parser = argparse.ArgumentParser()
    package.register(parser.add_subparsers())
    args = parser.parse_args(["package", "-n", "m", "-v", "1", "-f", "package.yml", "--compression", "zstd"])
    assert package.build_arguments(args)[-2:] == ["--compression", "zstd"]
