"""Benchmark layer compression on multi-GB layers (a script, not a test).

Two layers, each written by pkgc's own layer writer (``compiler.oci.layer.write_layer``: tar, diff_id,
compression in one pass) into a scratch OCI store:

- **environment**: a real virtual environment (default: the one running this script), copied under
  ``/opt/pkgc/venv/copyN`` as many times as it takes to reach ``--env-gb`` (default 2) of files;
- **weights**: one file of ``--weights-gb`` (default 1) random bytes, as model weights are.

For each variant: ``today`` (the single-stream igzip writer pkgc had before --compression, kept
below for comparison), ``gzip`` (parallel igzip on every core), ``gzip-1`` (the same bytes on one
thread), ``zstd-1``/``zstd-3``/``zstd-9`` (libzstd multi-threaded at that level) and ``none``, it
measures the write time, the blob size against the tar (ratio), the writer's peak memory (each
variant runs in its own process: its ru_maxrss) and then the ``docker load`` time of a one-layer
image of it through pkgc's own load path (``compiler.oci.load``: zstd layers go to the engine
inflated), the image removed afterwards. Prints a markdown table with the machine's load and writes
bench/results/compression-<time>.json.

``--codec-mb N`` measures the codecs alone instead (less sensitive to a busy disk or engine): the
first N MB of a tar of ``--source`` in memory, each variant compressing it ``--runs`` times (the
median) and decompressing it once, in MB/s of tar.

Usage: python3 bench/compression.py [--env-gb G] [--weights-gb G] [--source VENV] [--variants V,...]
       [--layers environment,weights] [--no-load] [--codec-mb N [--runs R]]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("today", "gzip", "gzip-1", "zstd-1", "zstd-3", "zstd-9", "none")
WEIGHT_VARIANTS = ("today", "gzip", "zstd-3", "none")


class TodayCompressor:
    """pkgc's writer before --compression: one igzip stream fed in fixed 1 MiB blocks, one thread."""

    def __init__(self) -> None:
        from isal import isal_zlib

        self._deflate = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
        self._pending = bytearray()

    def compress(self, data: bytes) -> bytes:
        self._pending += data
        out = []
        while len(self._pending) >= 1 << 20:
            out.append(self._deflate.compress(bytes(self._pending[: 1 << 20])))
            del self._pending[: 1 << 20]
        return b"".join(out)

    def flush(self) -> bytes:
        tail = self._deflate.compress(bytes(self._pending))
        return tail + self._deflate.flush()

    def close(self) -> None:
        pass


def compressor_for(variant: str):
    from compiler.oci import compress

    if variant == "today":
        return TodayCompressor(), compress.GZIP_LAYER
    if variant.startswith("gzip"):
        return compress.ParallelGzip(1 if variant == "gzip-1" else None), compress.GZIP_LAYER
    if variant.startswith("zstd-"):
        return compress.ParallelZstd(level=int(variant.split("-")[1])), compress.ZSTD_LAYER
    return None, compress.TAR_LAYER


def layer_entries(kind: str, source: Path, env_gb: float, weights: Path):
    from compiler.oci.layer import Entry, staging_entries

    if kind == "weights":
        return [Entry("var/azureml-app/azureml-models/m/1/weights.bin", "file", source=weights)]
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file() and not p.is_symlink())
    copies = max(1, round(env_gb * 1e9 / size + 0.49))
    entries = []
    for n in range(copies):
        entries += staging_entries(source, f"opt/pkgc/venv/copy{n}")
    return entries


def write_one(args) -> dict:
    """In this process: one variant of one layer written into the store; its figures."""
    from compiler.oci import layer as layer_module
    from compiler.oci.store import OciStore

    store = OciStore(Path(args.store))
    entries = layer_entries(args.one_layer, Path(args.source), args.env_gb, Path(args.weights))
    made, media = compressor_for(args.one)
    layer_module.compressor = lambda _compression: made  # this variant's compressor in pkgc's own writer
    started = time.monotonic()
    blob = layer_module.write_layer(entries, store.blobs, compression="none" if made is None else "gzip")
    seconds = time.monotonic() - started
    tar_size = _tar_size(store, blob.digest, media) if made is not None else blob.size
    return {"layer": args.one_layer, "variant": args.one, "seconds": round(seconds, 2), "blob_bytes": blob.size,
            "tar_bytes": tar_size, "ratio": round(blob.size / tar_size, 4), "digest": blob.digest, "diff_id": blob.diff_id,
            "media_type": media, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip


def _tar_size(store, digest: str, media: str) -> int:
    from compiler.oci.compress import inflated_size

    return inflated_size(store.blobs.path(digest), media)


def docker_load(store_root: Path, row: dict) -> float:
    """Seconds to load a one-layer image of the blob through pkgc's load path; the image is removed."""
    from compiler.engines import DockerEngine
    from compiler.backends.oci.config import timestamp
    from compiler.oci.load import load_into_engine
    from compiler.oci.outputs import StoredImage
    from compiler.oci.store import CONFIG, MANIFEST, OciStore

    store, engine = OciStore(store_root), DockerEngine.connect()
    config = store.put_json({"architecture": "amd64", "os": "linux", "created": timestamp(0), "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [row["diff_id"]]},
                             "history": [{"created": timestamp(0), "created_by": f"bench {row['variant']}"}]})  # fmt: skip
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST,
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size},
                               "layers": [{"mediaType": row["media_type"], "digest": row["digest"], "size": row["blob_bytes"]}]})  # fmt: skip
    tag = f"pkgc-bench-compression/{row['layer']}:{row['variant']}"
    engine.remove_image(config.digest)  # a previous variant's image has the same config
    started = time.monotonic()
    load_into_engine(engine, store, StoredImage.read(store, manifest.digest), [tag], tag)
    seconds = time.monotonic() - started
    engine.remove_image(config.digest)
    return round(seconds, 2)


def codec_only(source: Path, megabytes: int, variants: list[str], runs: int) -> list[dict]:
    """Each variant's compression (median of ``runs``) and decompression speed on one in-memory tar."""
    import io
    import statistics
    import tarfile

    from compiler.oci.compress import open_layer

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(source.rglob("*")):
            if buffer.tell() >= megabytes << 20:
                break
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    data = buffer.getvalue()
    rows = []
    for variant in variants:
        times, blob = [], b""
        for _ in range(runs):
            made, media = compressor_for(variant)
            started = time.monotonic()
            if made is None:
                blob = data
            else:
                blob = b"".join(made.compress(data[at : at + (1 << 16)]) for at in range(0, len(data), 1 << 16)) + made.flush()
            times.append(time.monotonic() - started)
        started = time.monotonic()
        with open_layer(io.BytesIO(blob), media) as reader:
            while reader.read(1 << 20):
                pass
        inflate = time.monotonic() - started
        rows.append({"variant": variant, "tar_mb": round(len(data) / 1e6), "ratio": round(len(blob) / len(data), 4),
                     "compress_mb_s": round(len(data) / 1e6 / statistics.median(times)) if variant != "none" else None, "inflate_mb_s": round(len(data) / 1e6 / inflate)})  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-gb", type=float, default=2.0)
    parser.add_argument("--weights-gb", type=float, default=1.0)
    parser.add_argument("--source", default=sys.prefix, help="a virtual environment to copy (default: this Python's)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--layers", default="environment,weights")
    parser.add_argument("--no-load", action="store_true", help="skip the docker load timings")
    parser.add_argument("--codec-mb", type=int, help="measure the codecs alone on this many MB of tar, in memory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--one-layer", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(write_one(args)))
        return 0
    from compiler.oci.compress import machine_threads

    if args.codec_mb:
        rows = codec_only(Path(args.source), args.codec_mb, args.variants.split(","), args.runs)
        load = os.getloadavg()
        print(f"cores: {os.cpu_count()} (threads used: {machine_threads()}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
        print("| variant | tar MB | ratio | compress MB/s | decompress MB/s |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['variant']} | {r['tar_mb']} | {r['ratio']:.3f} | {r['compress_mb_s']} | {r['inflate_mb_s']} |")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="pkgc-bench-compression-", dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        for path in Path(args.source).rglob("*"):  # warm the page cache: every variant reads the files alike
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as fh:
                    while fh.read(1 << 20):
                        pass
        weights = Path(tmp) / "weights.bin"
        with open(weights, "wb") as fh:
            for _ in range(int(args.weights_gb * 1024)):
                fh.write(os.urandom(1 << 20))
        for layer in args.layers.split(","):
            variants = [v for v in args.variants.split(",") if layer == "environment" or v in WEIGHT_VARIANTS]
            for variant in variants:
                store = Path(tmp) / f"store-{layer}-{variant}"
                proc = subprocess.run([sys.executable, __file__, "--one", variant, "--one-layer", layer, "--store", str(store),
                                       "--source", args.source, "--env-gb", str(args.env_gb), "--weights", str(weights)],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
                if proc.returncode != 0:
                    sys.stderr.write(proc.stderr)
                    return 1
                row = json.loads(proc.stdout)
                row["docker_load_seconds"] = None if args.no_load else docker_load(store, row)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
                subprocess.run(["rm", "-rf", str(store)], check=True)
    load = os.getloadavg()
    lines = [f"cores: {os.cpu_count()} (threads used: {machine_threads()}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", "",
             "| layer | variant | tar GB | blob GB | ratio | write s | peak RSS MB | docker load s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['layer']} | {r['variant']} | {r['tar_bytes'] / 1e9:.2f} | {r['blob_bytes'] / 1e9:.2f} | {r['ratio']:.3f} "
                     f"| {r['seconds']:.1f} | {r['peak_rss_mb']} | {r['docker_load_seconds']} |")  # fmt: skip
    print("\n".join(lines))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"compression-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps({"load": load, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
