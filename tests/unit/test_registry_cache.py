"""The shared build cache (``--cache REGISTRY/REPO``): the key -> artifact mapping, the distribution
client against a real loopback server (``tests/memory_registry.py``: token auth, mounts) and its
hostile answers, the native push that mounts cached blobs, and the flags and config key."""

from __future__ import annotations

import hashlib
import io
import secrets
import json
from pathlib import Path

import pytest

from compiler.cache.cache_repo import CacheRepo, parse_cache
from compiler.cache.registry_cache import (CACHE_TYPE, CacheEntry, RegistryCache, artifact, config_descriptor, read_entry,
                                           reused_or_written, tag_for)  # fmt: skip
from compiler.oci.reference import PushTarget
from compiler.errors import SpecError
from compiler.oci.distribution import RegistryClient, RegistryError, RegistryUnreachable
from compiler.oci.layer import GZIP_LAYER, TAR_LAYER, Entry, LayerBlob, write_layer
from compiler.oci.native_push import push_stored, wanted
from compiler.oci.outputs import StoredImage
from compiler.oci.remote_blobs import RemoteBlobs, transfers_log
from compiler.oci.store import MANIFEST, OciStore
from compiler.options import load_options
from tests.memory_registry import MemoryRegistry

KEY = hashlib.sha256(b"inputs").hexdigest()
OTHER = hashlib.sha256(b"other inputs").hexdigest()


def layer(store: OciStore, text: str, compression: str = "gzip") -> LayerBlob:
    return write_layer([Entry("opt/f.txt", "file", data=text.encode())], store.blobs, compression=compression)  # type: ignore[arg-type]


def entry_of(store: OciStore) -> CacheEntry:
    return CacheEntry(KEY, (layer(store, "a"), layer(store, "b", "none")), {"elf": {"provided": [], "libraries": [], "wanted": []}})


# -- the mapping ------------------------------------------------------------------------------------


def test_an_entry_round_trips_through_its_artifact(tmp_path):
    entry = entry_of(OciStore(tmp_path / "oci"))
    config, manifest = artifact(entry)
    assert artifact(entry) == (config, manifest)  # canonical: one digest for one entry
    parsed = json.loads(manifest)
    assert parsed["artifactType"] == CACHE_TYPE and parsed["config"]["mediaType"] == CACHE_TYPE
    assert [l["digest"] for l in parsed["layers"]] == [l.digest for l in entry.layers]
    assert config_descriptor(KEY, manifest) == ("sha256:" + hashlib.sha256(config).hexdigest(), len(config))
    assert read_entry(KEY, manifest, config) == entry
    assert tag_for(KEY) == "pkgc-" + KEY and len(tag_for(KEY)) <= 128


def _tampered(entry: CacheEntry, change) -> tuple[bytes, bytes]:
    config, manifest = artifact(entry)
    record = json.loads(config)
    change(record)
    return manifest, json.dumps(record).encode()


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.update(key=OTHER), "the record is for the key"),
    (lambda r: r["layers"][0].update(digest="sha256:1234"), "not a sha256 digest"),
    (lambda r: r["layers"][0].update(size=-5), "not a positive number"),
    (lambda r: r["layers"][0].update(size=True), "not a positive number"),
    (lambda r: r["layers"][0].update(media_type="text/html"), "not one pkgc writes"),
    (lambda r: r["layers"][1].update(diff_id="sha256:" + "0" * 64), "plain tar layer's diff_id"),
    (lambda r: r["layers"].reverse(), "the manifest's layers are not the record's"),
    (lambda r: r.update(layers=[]), "names no layers"),
    (lambda r: r.update(facts=[1]), "facts are not an object"),
])  # fmt: skip
def test_a_record_that_does_not_hold_is_refused_naming_why(tmp_path, change, reason):
    manifest, config = _tampered(entry_of(OciStore(tmp_path / "oci")), change)
    with pytest.raises(ValueError, match=reason):
        read_entry(KEY, manifest, config)


def test_a_manifest_that_is_not_a_cache_entry_for_the_key_is_refused(tmp_path):
    _config, manifest = artifact(entry_of(OciStore(tmp_path / "oci")))
    with pytest.raises(ValueError, match="not pkgc's cache entry"):
        config_descriptor(OTHER, manifest)
    image = json.dumps({**json.loads(manifest), "artifactType": "application/vnd.oci.image.config.v1+json"}).encode()
    with pytest.raises(ValueError, match="not pkgc's cache entry"):
        config_descriptor(KEY, image)
    with pytest.raises(ValueError, match="not a layer key"):
        tag_for("../../etc")


@pytest.mark.parametrize("text, ok", [
    ("localhost:5000/cache", True), ("myregistry.azurecr.io/team/pkgc-cache", True), ("127.0.0.1:5000/a/b", True),
    ("cache", False), ("localhost:5000/cache:tag", False), ("localhost:5000/cache@sha256:" + "0" * 64, False),
    ("notahost/cache", False), ("localhost:5000/UPPER", False), ("localhost:5000/", False),
])  # fmt: skip
def test_cache_references(text, ok):
    if ok:
        assert str(parse_cache(text)) == text
    else:
        with pytest.raises(SpecError, match="--cache"):
            parse_cache(text)


def test_the_config_names_the_cache_and_its_mode(tmp_path):
    (tmp_path / "pkgc.toml").write_text('compression = "gzip"\ncache = "localhost:5000/team-cache"\ncache_mode = "read"\n')
    options = load_options(config_dir=tmp_path, environ={})
    assert (options.cache, options.cache_mode) == ("localhost:5000/team-cache", "read")
    (tmp_path / "pkgc.toml").write_text('slim = true\ncache = "localhost:5000/Bad"\n')
    with pytest.raises(SpecError) as bad:
        load_options(config_dir=tmp_path, environ={})
    assert str(bad.value).startswith(f"{tmp_path / 'pkgc.toml'}:2: cache:") and "\n" not in str(bad.value)
    (tmp_path / "pkgc.toml").write_text('cache_mode = "write"\n')
    with pytest.raises(SpecError, match=r"pkgc.toml:1: cache_mode: must be one of 'read', 'readwrite'"):
        load_options(config_dir=tmp_path, environ={})


# -- the cache against a real loopback registry ------------------------------------------------------


def test_a_layer_offered_by_one_runner_is_found_by_another_without_its_bytes(tmp_path):
    with MemoryRegistry(token="t0ken") as reg:
        repo = CacheRepo(reg.host, "team/cache")
        first = OciStore(tmp_path / "a")
        writer = RegistryCache(repo, "readwrite", first)
        built = reused_or_written(writer, KEY, lambda: layer(first, "environment bytes"))
        assert writer.misses == 1 and (repo.repository, built.digest) in reg.state.blobs
        assert writer.client.transfers.sent == built.size + len(artifact(CacheEntry(KEY, (built,), {}))[0])

        second = OciStore(tmp_path / "b")
        reader = RegistryCache(repo, "read", second)
        found = reused_or_written(reader, KEY, lambda: pytest.fail("a cached layer is not written again"))
        assert found == built and not second.blobs.has(built.digest)  # used by its descriptor only
        assert not any(line.startswith(f"GET /v2/team/cache/blobs/{built.digest}") for line in reg.state.requests)
        assert RemoteBlobs(second).where(built.digest)[0].repository == "team/cache"
        assert reader.materialize([built.digest]) == built.size and second.blobs.read(built.digest, 1 << 20)
        events = [json.loads(line) for line in transfers_log(second).read_text().splitlines()]
        assert [(e["op"], e["bytes"]) for e in events] == [("download", built.size)]


def test_read_mode_writes_nothing_to_the_cache(tmp_path):
    with MemoryRegistry() as reg:
        store = OciStore(tmp_path / "oci")
        cache = RegistryCache(CacheRepo(reg.host, "cache"), "read", store)
        blob = reused_or_written(cache, KEY, lambda: layer(store, "x"))
        cache.share([blob])
        assert store.blobs.has(blob.digest) and cache.misses == 1
        assert not reg.state.blobs and not reg.state.manifests
        assert not [r for r in reg.state.requests if r.startswith(("PUT", "POST"))]


def stored_image(store: OciStore, layers: list[LayerBlob]) -> StoredImage:
    config = store.put_json({"rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]}})
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [l.descriptor() for l in layers],
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest,
                                          "size": config.size}})  # fmt: skip
    return StoredImage.read(store, manifest.digest)


def test_a_push_mounts_what_the_cache_holds_and_uploads_the_rest(tmp_path):
    with MemoryRegistry(token="abc") as reg:
        builder = OciStore(tmp_path / "a")
        cache = RegistryCache(CacheRepo(reg.host, "cache"), "readwrite", builder)
        cached = reused_or_written(cache, KEY, lambda: layer(builder, "shared environment " * 1000))

        runner = OciStore(tmp_path / "b")  # an empty cache: the layer only by its descriptor
        assert reused_or_written(RegistryCache(CacheRepo(reg.host, "cache"), "read", runner), KEY, lambda: pytest.fail()) == cached
        own = layer(runner, "this package's code")
        image = stored_image(runner, [cached, own])
        target = PushTarget(reg.host, "models/one", "1")
        assert wanted(runner, image, target)
        before = reg.state.received
        pushed = push_stored(runner, image, target, "1", lambda _line: None)
        assert pushed.digest == image.manifest_digest and pushed.reference == f"{reg.host}/models/one:1"
        assert reg.state.received - before == own.size + image_config_size(runner, image)  # the cached layer: mounted
        assert (("models/one", cached.digest) in reg.state.blobs) and not runner.blobs.has(cached.digest)
        assert reg.state.manifests[("models/one", "1")][0] == runner.blobs.read(image.manifest_digest)
        again = push_stored(runner, image, PushTarget(reg.host, "models/one", "2"), "2", lambda _line: None)
        assert again.digest == pushed.digest and reg.state.received - before == own.size + image_config_size(runner, image)


def image_config_size(store: OciStore, image: StoredImage) -> int:
    return store.blobs.path(image.config_digest).stat().st_size


def test_an_image_known_nowhere_else_is_left_to_skopeo(tmp_path):
    store = OciStore(tmp_path / "oci")
    image = stored_image(store, [layer(store, "local only")])
    assert not wanted(store, image, PushTarget("localhost:5000", "x"))


# -- hostile registries -------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 400
    return text


def _cache(reg: MemoryRegistry, store: OciStore) -> RegistryCache:
    return RegistryCache(CacheRepo(reg.host, "cache"), "readwrite", store)


@pytest.mark.parametrize("pattern, answer, message", [
    (r"GET /v2/cache/manifests/", (200, {}, b"{" * (5 << 20)), "larger than"),
    (r"GET /v2/cache/manifests/", (200, {}, b"[1, 2]"), "not a JSON object"),
    (r"GET /v2/cache/manifests/", (200, {}, json.dumps({"artifactType": "x"}).encode()), "not pkgc's cache entry"),
    (r"GET /v2/cache/manifests/", (500, {}, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}'), "answered 500"),
    (r"GET /v2/cache/blobs/", (200, {}, b"not the record"), "not the ones its descriptor names"),
    (r"GET /v2/cache/manifests/", (401, {"WWW-Authenticate": "Negotiate"}, b""), "unusable challenge"),
    (r"GET /token", (200, {}, b"<html>"), "no usable token"),
    (r"GET /token", (200, {}, json.dumps({"token": "a b\nc"}).encode()), "no usable token"),
])  # fmt: skip
def test_a_hostile_cache_answer_is_one_line_and_bad_input(tmp_path, pattern, answer, message):
    with MemoryRegistry(token="tok" if "token" in pattern or "401" in str(answer[0]) else None) as reg:
        store = OciStore(tmp_path / "a")
        reused_or_written(_cache(reg, store), KEY, lambda: layer(store, "x"))  # a good entry to tamper with
        reg.state.hostile[pattern] = answer
        with pytest.raises(RegistryError) as failed:
            RegistryCache(CacheRepo(reg.host, "cache"), "read", OciStore(tmp_path / "b")).find(KEY)
        assert message in _one_line(failed.value) and failed.value.exit_code == 2


@pytest.mark.parametrize("answer, message", [
    ((200, {}, b"x" * 10), "another digest"),
    ((200, {"Content-Length": "3"}, b"abc"), "short"),
])
def test_a_blob_with_other_bytes_is_refused_and_nothing_is_stored(tmp_path, answer, message):
    with MemoryRegistry() as reg:
        store = OciStore(tmp_path / "a")
        blob = reused_or_written(_cache(reg, store), KEY, lambda: layer(store, "x" * 100))
        runner = OciStore(tmp_path / "b")
        cache = RegistryCache(CacheRepo(reg.host, "cache"), "read", runner)
        assert cache.find(KEY) is not None
        reg.state.hostile[rf"GET /v2/cache/blobs/{blob.digest}"] = answer if answer[1] else (200, {}, b"y" * blob.size)
        with pytest.raises(RegistryError) as failed:
            cache.materialize([blob.digest])
        assert _one_line(failed.value)
        assert not runner.blobs.has(blob.digest) and [p.name for p in runner.blobs.root.iterdir()] == []


def test_an_upload_location_on_another_host_is_refused(tmp_path):
    with MemoryRegistry() as reg:
        reg.state.hostile[r"POST /v2/cache/blobs/uploads/"] = (202, {"Location": "http://198.51.100.7/steal"}, b"")
        store = OciStore(tmp_path / "a")
        with pytest.raises(RegistryError, match="on another host"):
            reused_or_written(_cache(reg, store), KEY, lambda: layer(store, "secret"))


def test_a_registry_that_does_not_answer_is_a_build_failure(tmp_path):
    with MemoryRegistry() as reg:
        host = reg.host
    client = RegistryClient(host)
    with pytest.raises(RegistryUnreachable) as failed:
        client.get_manifest("cache", tag_for(KEY))
    assert failed.value.exit_code == 3 and host in _one_line(failed.value)


def test_plain_tar_layers_keep_their_digest_as_diff_id(tmp_path):
    store = OciStore(tmp_path / "oci")
    plain = layer(store, "weights", "none")
    assert plain.media_type == TAR_LAYER and plain.diff_id == plain.digest
    assert layer(store, "gz").media_type == GZIP_LAYER
    assert Path(store.blobs.path(plain.digest)).is_file()


def test_no_cache_takes_nothing_from_the_cache_but_still_offers(tmp_path):
    with MemoryRegistry() as reg:
        store = OciStore(tmp_path / "a")
        first = reused_or_written(_cache(reg, store), KEY, lambda: layer(store, "x"))
        again = RegistryCache(CacheRepo(reg.host, "cache"), "readwrite", OciStore(tmp_path / "b"), reuse=False)
        rebuilt = reused_or_written(again, KEY, lambda: layer(again.store, "x"))
        assert rebuilt == first and again.store.blobs.has(first.digest) and again.hits == 0


def test_a_bad_cache_flag_is_bad_input_before_any_build_work(tmp_path, capsys, monkeypatch):
    from compiler.cli import main

    monkeypatch.setenv("PKGC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PKGC_WORKSPACE", str(tmp_path / "ws"))
    spec = tmp_path / "package.yml"
    spec.write_text("not: read\n")
    assert main(["-q", "build", str(spec), "--cache", "nothost/cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--cache" in err and "'nothost' is not a registry host" in err
    with pytest.raises(SystemExit) as usage:  # argparse's own usage error
        main(["-q", "build", str(spec), "--cache", "localhost:5000/cache", "--cache-mode", "write"])
    assert usage.value.code == 2 and "invalid choice: 'write'" in capsys.readouterr().err
    assert not (tmp_path / "cache" / "oci").exists()


def test_the_base_goes_into_the_cache_once_at_the_first_push_and_is_mounted_after(tmp_path):
    with MemoryRegistry() as reg:
        repo = CacheRepo(reg.host, "cache")
        pushed, content = [], secrets.token_hex(20000)  # does not compress: the base's size shows
        for runner in ("a", "b"):
            store = OciStore(tmp_path / runner)
            base = layer(store, content)
            cache = RegistryCache(repo, "readwrite", store)
            cache.share([base])  # at the start of the build: nothing is uploaded yet
            assert ("cache", base.digest) not in reg.state.blobs or runner == "b"
            image = stored_image(store, [base, layer(store, f"{runner}'s code")])
            before = reg.state.received
            push_stored(store, image, PushTarget(reg.host, f"models/{runner}"), "1", lambda _line: None)
            pushed.append(reg.state.received - before)
            assert ("cache", base.digest) in reg.state.blobs and (f"models/{runner}", base.digest) in reg.state.blobs
        assert pushed[0] > base.size > pushed[1]  # a's push put the base there; b's mounted it
        uploads = [r for r in reg.state.requests if r.startswith("PUT /v2/") and "/blobs/uploads/" in r]
        assert len(uploads) == 5  # a: base into the cache, code, config; b: code, config


def test_runners_finishing_the_same_layer_at_once_upload_it_once(tmp_path):
    import threading

    from compiler.cache.upload_lease import MIN_SIZE, upload_once

    data = secrets.token_bytes(MIN_SIZE + 1000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with MemoryRegistry() as reg:
        start, results = threading.Barrier(3), []

        def runner() -> None:
            client = RegistryClient(reg.host)
            start.wait()
            results.append(upload_once(client, "cache", digest, len(data), lambda: io.BytesIO(data)))

        threads = [threading.Thread(target=runner) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False, False, True]  # one uploaded it, two waited for it
        assert len(data) <= reg.state.received < len(data) + 1000  # the blob once, and the leases' small records
        assert reg.state.blobs[("cache", digest)] == data


def test_a_push_to_another_registry_than_the_cache_fetches_the_cached_blobs_for_skopeo(tmp_path):
    from compiler.oci.native_push import fetch_missing

    with MemoryRegistry() as reg:
        builder = OciStore(tmp_path / "a")
        cached = reused_or_written(_cache(reg, builder), KEY, lambda: layer(builder, "environment"))
        runner = OciStore(tmp_path / "b")
        assert reused_or_written(RegistryCache(CacheRepo(reg.host, "cache"), "read", runner), KEY, lambda: pytest.fail()) == cached
        image = stored_image(runner, [cached])
        assert wanted(runner, image, PushTarget(reg.host, "models/x")) and not wanted(runner, image, PushTarget("other.example:5000", "x"))
        assert fetch_missing(runner, image.blobs, lambda _line: None) == cached.size and runner.blobs.has(cached.digest)
