"""pkgc's host cache: staging named for its owner and swept once the owner is gone (a real killed
process), ``pkgc cache du`` part by part, ``pkgc cache prune``: unnamed store blobs (a real store
written by pkgc's own writers), old logs, least recently used pyc and fetched files under
``--max-size``, and never while another run holds the cache (a real second process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.cache.owner import owner_alive, owner_tag, staging_dir, staging_name
from compiler.cache.parts import measure, staging_entries
from compiler.cache.prune import LOG_MAX_AGE, prune_cache
from compiler.cache.references import UnreadableStore, referenced_blobs
from compiler.cache.use import UNTAGGED_GRACE, cache_in_use, sweep
from compiler.oci.layer import Entry, write_layer
from compiler.oci.store import MANIFEST, OciStore
from tests.conftest import ROOT, run_pkgc

DAY = 24 * 3600.0


def _python(code: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True, **kwargs)


def _killed_build(cache: Path) -> None:
    """A real process that stages like a build (an environment folder, a half-written blob, a
    half-copied fetched file), then is killed with SIGKILL mid-way."""
    code = f"""
import os, signal, tempfile
from pathlib import Path
from compiler.cache.owner import staging_dir, staging_name
from compiler.oci.store import OciStore
cache = Path({str(cache)!r})
store = OciStore.in_cache(cache)
writer = store.blobs.writer()
writer.write(b"x" * (3 << 20))  # more than its buffer: on disk at once
folder = cache / "files" / ("ab" * 32)
folder.mkdir(parents=True, exist_ok=True)
fd, name = tempfile.mkstemp(prefix=staging_name(".partial-"), dir=folder)
os.write(fd, b"y" * 1000)
with staging_dir(store.root, "pkgc-env-") as staging:
    (staging / "opt" / "pkgc" / "venv").mkdir(parents=True)
    (staging / "opt" / "pkgc" / "venv" / "big.so").write_bytes(b"z" * (2 << 20))
    print("staged", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = _python(code)
    assert proc.stdout.readline().strip() == "staged"
    assert proc.wait(timeout=60) == -signal.SIGKILL


def test_staging_names_its_owner_and_knows_when_it_is_gone(tmp_path):
    with staging_dir(tmp_path, "pkgc-env-") as folder:
        assert folder.name.startswith(f"pkgc-env-{owner_tag()}-")
        assert owner_alive(folder.name, "pkgc-env-") is True
    assert not folder.exists()
    child = _python("import os; print(os.getpid())")
    pid = int(child.stdout.read())
    child.wait()
    assert owner_alive(f"pkgc-env-{pid}.12345-abcd1234", "pkgc-env-") is False  # the process is gone
    pid_now, start_now = owner_tag().split(".")
    assert owner_alive(f".partial-{pid_now}.{int(start_now) + 1}-abcd", ".partial-") is False  # the pid was reused
    assert owner_alive(".partial-abcd1234", ".partial-") is None  # an older pkgc's: owner unknown
    assert staging_name(".partial-") == f".partial-{owner_tag()}-"


def test_the_next_run_removes_what_a_killed_build_left(tmp_path):
    cache = tmp_path / "cache"
    _killed_build(cache)
    left = staging_entries(cache)
    assert sorted(e.path.parent.name for e in left) == ["ab" * 32, "oci", "sha256"] and not any(e.owner_alive for e in left)
    assert measure(cache).parts["staging"].bytes == (3 << 20) + 1000 + (2 << 20)
    with staging_dir(OciStore.in_cache(cache).root, "pkgc-env-") as mine:  # a live run's staging stays
        with cache_in_use(cache):
            assert [e.path for e in staging_entries(cache)] == [mine]
    assert staging_entries(cache) == []


def test_untagged_staging_goes_only_when_alone_and_old(tmp_path):
    cache = tmp_path / "cache"
    blobs = cache / "oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    old, recent = blobs / ".partial-oldpkgc1", blobs / ".partial-oldpkgc2"
    old.write_bytes(b"o" * 10)
    recent.write_bytes(b"r" * 10)
    busy = cache / "oci" / "pkgc-env-abcd1234"  # an older pkgc's assembly, its top folder untouched for long
    (busy / "opt").mkdir(parents=True)
    (busy / "opt" / "new.py").write_bytes(b"n" * 10)
    now = time.time()
    for path in (old, busy / "opt", busy):
        os.utime(path, (now - UNTAGGED_GRACE - 60, now - UNTAGGED_GRACE - 60))
    assert sweep(cache, alone=False, now=now).entries == 0  # other runs hold the cache: could be theirs
    swept = sweep(cache, alone=True, now=now)
    assert (swept.entries, swept.bytes) == (1, 10)
    assert not old.exists() and recent.exists() and (busy / "opt" / "new.py").exists()


def _store_with_garbage(cache: Path) -> dict[str, str]:
    """A store written by pkgc's writers: a named image (config, two layers) with a referrer, an
    environment-layer record, a model-image record, and what nothing names."""
    store = OciStore.in_cache(cache)
    layers = [write_layer([Entry(f"f{i}", "file", 0o644, data=f"layer {i}".encode() * 1000)], store.blobs, 0) for i in range(2)]
    config = store.put_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]}})
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": config.digest, "size": config.size}, "layers": [l.descriptor() for l in layers]})  # fmt: skip
    store.name(["pkgc/demo:1"], manifest)
    sbom = store.blobs.put(b'{"bomFormat": "CycloneDX"}')
    empty = store.put_json({})
    referrer = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/vnd.cyclonedx+json",
                               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest, "size": empty.size},
                               "layers": [{"mediaType": "application/vnd.cyclonedx+json", "digest": sbom.digest, "size": sbom.size}],
                               "subject": {"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size}})  # fmt: skip
    store.name(["sha256-referrer"], referrer)
    env_layer = write_layer([Entry("opt/venv/x", "file", 0o644, data=b"env" * 5000)], store.blobs, 0)
    (store.root / "layers").mkdir()
    (store.root / "layers" / ("1" * 64 + ".json")).write_text(json.dumps({"digest": env_layer.digest, "size": env_layer.size,
                                                                          "diff_id": env_layer.diff_id, "media_type": env_layer.media_type}))  # fmt: skip
    model_layer = write_layer([Entry("model.pkl", "file", 0o644, data=b"m" * 3000)], store.blobs, 0, compress=False)
    model_manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     "digest": empty.digest, "size": empty.size}, "layers": [model_layer.descriptor()]})  # fmt: skip
    (store.root / "model-images").mkdir()
    (store.root / "model-images" / ("2" * 64 + ".json")).write_text(json.dumps({"manifest": model_manifest.digest}))
    # garbage: an old image's layer and manifest nothing names, a record whose blob is gone, a scan of a gone base
    old_layer = write_layer([Entry("old", "file", 0o644, data=b"old" * 9000)], store.blobs, 0)
    old_manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [old_layer.descriptor()]})
    (store.root / "layers" / ("3" * 64 + ".json")).write_text(json.dumps({"digest": "sha256:" + "9" * 64, "size": 1}))
    (store.root / "scans").mkdir()
    (store.root / "scans" / ("4" * 64 + ".json")).write_text("{}")
    (store.root / "scans" / (manifest.digest.split(":")[1] + ".json")).write_text("{}")
    named = [manifest, config, *layers, referrer, sbom, empty, env_layer, model_manifest, model_layer]
    return {"kept": {b.digest.split(":")[1] for b in named}, "garbage": {old_layer.digest.split(":")[1], old_manifest.digest.split(":")[1]}}


def test_prune_removes_exactly_the_blobs_nothing_names(tmp_path):
    cache = tmp_path / "cache"
    digests = _store_with_garbage(cache)
    blobs = cache / "oci" / "blobs" / "sha256"
    held = {p.name for p in blobs.iterdir() if not p.name.startswith(".")}
    assert referenced_blobs(cache / "oci") & held == digests["kept"] and held - digests["kept"] == digests["garbage"]
    garbage_bytes = sum((blobs / hexdigest).stat().st_size for hexdigest in digests["garbage"])
    du = run_pkgc("cache", "du", "--json", env=dict(os.environ, PKGC_CACHE_DIR=str(cache)))
    assert du.returncode == 0, du.stderr
    assert json.loads(du.stdout)["store_unreferenced"] == garbage_bytes
    result = prune_cache(cache)
    assert {p.name for p in blobs.iterdir()} == digests["kept"]
    assert result.removed["store blobs"].bytes == garbage_bytes and result.removed["store blobs"].files == 2
    assert sorted(p.name for p in (cache / "oci" / "layers").iterdir()) == ["1" * 64 + ".json"]  # the dangling record went
    scans = [p.stem for p in (cache / "oci" / "scans").iterdir()]
    assert len(scans) == 1 and scans[0] in digests["kept"]  # the scan of a base that is gone went
    assert prune_cache(cache).freed == 0  # nothing left to do


def test_prune_keeps_where_a_named_blob_lives_and_forgets_the_rest(tmp_path):
    """``oci/remote/<hex>.json`` (a blob held by a registry, the shared build cache's): kept while an
    image the store names reaches the blob, removed with it otherwise."""
    from compiler.oci.remote_blobs import Location, RemoteBlobs

    cache = tmp_path / "cache"
    digests = _store_with_garbage(cache)
    remote = RemoteBlobs(OciStore.in_cache(cache))
    named, gone = sorted(digests["kept"])[0], sorted(digests["garbage"])[0]
    for hexdigest in (named, gone):
        remote.record(f"sha256:{hexdigest}", 10, Location("127.0.0.1:5000", "team/cache"), cache=True)
    prune_cache(cache)
    assert sorted(p.stem for p in (cache / "oci" / "remote").iterdir()) == [named]
    assert remote.where(f"sha256:{named}") == [Location("127.0.0.1:5000", "team/cache")]


def test_a_named_manifest_that_cannot_be_read_leaves_every_blob(tmp_path):
    cache = tmp_path / "cache"
    digests = _store_with_garbage(cache)
    blobs = cache / "oci" / "blobs" / "sha256"
    named = json.loads((cache / "oci" / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    os.chmod(blobs / named, 0o644)
    (blobs / named).write_bytes(b"{not json")
    with pytest.raises(UnreadableStore, match=named):
        referenced_blobs(cache / "oci")
    result = prune_cache(cache)
    assert result.store_left and named in result.store_left
    assert digests["garbage"] <= {p.name for p in blobs.iterdir()}


def test_prune_never_removes_what_a_running_build_holds(tmp_path):
    cache = tmp_path / "cache"
    digests = _store_with_garbage(cache)
    holder = _python(f"""
import sys, time
from pathlib import Path
from compiler.cache.use import cache_in_use
with cache_in_use(Path({str(cache)!r})):
    print("holding", flush=True)
    sys.stdin.readline()
""", stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "holding"
        proc = run_pkgc("cache", "prune", "--max-size", "0", "--json", env=dict(os.environ, PKGC_CACHE_DIR=str(cache)))
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["busy"] is True and result["freed"] == 0
        assert "other pkgc runs are using the cache" in proc.stderr
        assert digests["garbage"] <= {p.name for p in (cache / "oci" / "blobs" / "sha256").iterdir()}
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert prune_cache(cache).removed["store blobs"].files == 2  # once the run ended


def _file(path: Path, size: int, used: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    os.utime(path, (used, used))
    return path


def test_max_size_evicts_pyc_and_fetched_files_least_recently_used_first_and_old_logs(tmp_path):
    cache = tmp_path / "cache"
    now = time.time()
    oldest_pyc = _file(cache / "pyc" / "aa" / ("a" * 64), 40_000, now - 5 * DAY)
    old_wheel = _file(cache / "files" / ("b" * 64) / "old-1.0-py3-none-any.whl", 100_000, now - 4 * DAY)
    middle_pyc = _file(cache / "pyc" / "cc" / ("c" * 64), 40_000, now - 3 * DAY)
    new_wheel = _file(cache / "files" / ("d" * 64) / "new-1.0-py3-none-any.whl", 100_000, now - 1 * DAY)
    newest_pyc = _file(cache / "pyc" / "ee" / ("e" * 64), 40_000, now - 60)
    built = _file(cache / "built" / ("f" * 64) / "built-1.0-py3-none-any.whl", 30_000, now - 30 * DAY)
    old_log = _file(cache / "logs" / "build-20200101-000000-1.log", 5_000, now - LOG_MAX_AGE - DAY)
    new_log = _file(cache / "logs" / "build-20261203-000000-2.log", 5_000, now - DAY)
    usage = measure(cache)
    assert usage.parts["pyc cache"].bytes == 120_000 and usage.parts["fetched files"].bytes == 200_000
    assert usage.parts["built wheels"].bytes == 30_000 and usage.parts["logs"].bytes == 10_000 and usage.total == 360_000

    result = prune_cache(cache, max_size=200_000, now=now)
    # old log (5 000) goes first; then 355 000 -> oldest pyc, old wheel -> 215 000 -> middle pyc -> 175 000
    assert not old_log.exists() and new_log.exists() and built.exists()
    assert not oldest_pyc.exists() and not old_wheel.parent.exists() and not middle_pyc.exists()
    assert new_wheel.exists() and newest_pyc.exists()
    assert (result.after, result.over) == (175_000, 0)
    assert result.removed["pyc cache"].bytes == 80_000 and result.removed["fetched files"].bytes == 100_000

    tight = prune_cache(cache, max_size=10_000, now=now)  # only built wheels and the recent log may stay
    assert tight.after == 35_000 and tight.over == 25_000
    assert built.exists() and new_log.exists() and not new_wheel.exists() and not newest_pyc.exists()


def test_the_command_line_reports_parts_and_refuses_a_bad_size(tmp_path):
    cache = tmp_path / "cache"
    _file(cache / "pyc" / "aa" / ("a" * 64), 1234, time.time())
    env = dict(os.environ, PKGC_CACHE_DIR=str(cache))
    du = run_pkgc("cache", "du", env=env)
    assert du.returncode == 0 and du.stdout.splitlines()[0] == str(cache)
    assert any(line.split()[:2] == ["pyc", "cache"] and "1 files" in line for line in du.stdout.splitlines())
    bad = run_pkgc("cache", "prune", "--max-size", "ten gigs", env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == "pkgc: error: --max-size: 'ten gigs' is not a size (e.g. 10G, 500M, 1048576)"
    prune = run_pkgc("cache", "prune", "--max-size", "1K", env=env)
    assert prune.returncode == 0 and prune.stdout.startswith("freed 1.2 KiB (pyc cache 1.2 KiB)")
    assert measure(cache).parts["pyc cache"].files == 0


def _package_image(store: OciStore, repo: str, version: int, weights: bytes) -> str:
    """A package build as pkgc names it: ``repo:version`` and a content tag, one plain model layer."""
    layer = write_layer([Entry("opt/pkgc/model-files/w.bin", "file", 0o644, data=weights)], store.blobs, 0, compress=False)
    config = store.put_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                             "config": {"Labels": {"version": str(version)}}})  # fmt: skip
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": config.digest, "size": config.size}, "layers": [layer.descriptor()]})  # fmt: skip
    store.name([f"{repo}:{version}", f"{repo}:sha256-{manifest.digest[7:31]}"], manifest)
    return manifest.digest


def test_max_size_lets_go_of_package_images_a_newer_build_replaced_oldest_first(tmp_path, monkeypatch):
    """Every build of a changed package is a new version in the store: without this the store keeps
    every model layer ever built. The newest image of each repository stays, whatever the limit."""
    cache = tmp_path / "cache"
    store = OciStore.in_cache(cache)
    clock = iter(range(1_000, 2_000, 10))
    monkeypatch.setattr("compiler.oci.store.time.time", lambda: float(next(clock)))
    first, second, third = (_package_image(store, "pkgc/big", v, os.urandom(300_000)) for v in (1, 2, 3))
    other = _package_image(store, "pkgc/other", 1, os.urandom(300_000))
    monkeypatch.undo()
    result = prune_cache(cache, max_size=measure(cache).total - 100_000)  # one old image is enough
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in store.entries()}
    assert first not in names.values() and {second, third, other} <= set(names.values())
    assert not store.blobs.has(first) and result.over == 0
    tight = prune_cache(cache, max_size=1)
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in store.entries()}
    assert set(names.values()) == {third, other} and names["pkgc/big:3"] == third and tight.over > 0


def test_the_fan_out_folders_are_swept_at_most_once_in_a_while(tmp_path):
    """Every run sweeps the cache's top folders; the hundreds of fan-out folders of the pyc cache and the
    fetched files only when the last such sweep is older than FANNED_SWEEP_EVERY (0.1 s of every build)."""
    from compiler.cache.use import FANNED_SWEEP_EVERY, SWEPT_NAME

    cache = tmp_path / "cache"
    dead = f"{os.getpid() + 4_000_000}.1-abcd"  # no process has that pid: the owner is gone
    with cache_in_use(cache):
        pass  # the first run sweeps everything and stamps it
    stamp = cache / SWEPT_NAME
    assert stamp.is_file()
    fanned = cache / "pyc" / "ab" / f".partial-{dead}"
    top = cache / "oci" / "blobs" / "sha256" / f".partial-{dead}"
    for path in (fanned, top):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    with cache_in_use(cache):
        pass
    assert fanned.exists() and not top.exists()
    old = time.time() - FANNED_SWEEP_EVERY - 1
    os.utime(stamp, (old, old))
    with cache_in_use(cache):
        pass
    assert not fanned.exists() and stamp.stat().st_mtime > old + 1
    stamp.unlink()
    stamp.symlink_to(tmp_path / "elsewhere")  # a link in the cache is not followed out of it
    with cache_in_use(cache):
        pass
    assert not (tmp_path / "elsewhere").exists()
