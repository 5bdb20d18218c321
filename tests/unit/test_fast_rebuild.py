"""What keeps a code-only rebuild fast, checked without a clock: the CLI and the build pipeline import
only what they use (each in a fresh interpreter), the SBOM of a new code version is filled into a kept
draft without the CycloneDX library (the very bytes a full render gives), a cached wheel whose
state holds still is not read again, and the engine is asked first about the builds pkgc's store named
in the package's repository (instead of listing its images)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.errors import BuildError
from compiler.fetch.cache import PackageCache
from compiler.lock.types import LockedPackage
from compiler.oci.blobs import Blob
from compiler.oci.load import _stored_configs
from compiler.oci.store import INDEX, MANIFEST, OciStore
from compiler.sbom.collect import sbom_bytes
from compiler.sbom.draft import CODE_SENTINEL, MODEL_SENTINEL, VERSION_SENTINEL
from compiler.sbom.generate import generate_sbom
from compiler.workspace.digest_cache import MIN_SIZE

from tests.unit.test_sbom import components, inputs

ROOT = Path(__file__).resolve().parents[2]


def loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_cli_loads_no_engine_sdk_models_or_generators_before_a_command_runs():
    heavy = ("docker", "requests", "urllib3", "pydantic", "cyclonedx", "jinja2", "compiler.spec.model",
             "compiler.runtime.verify", "compiler.lock.pip_resolve", "compiler.pipeline")  # fmt: skip
    assert loaded_after("import compiler.cli; compiler.cli.build_parser()", heavy) == []


def test_the_build_pipeline_loads_no_resolver_renderer_deployment_model_or_engine_sdk():
    unused = ("docker", "cyclonedx", "jinja2", "asyncio", "urllib.request", "compiler.lock.pip_resolve",
              "compiler.lock.uv_resolve", "compiler.fetch.conda_inputs", "compiler.spec.deployment",
              "compiler.spec.batch_deployment", "compiler.runtime.verify", "compiler.render")  # fmt: skip
    assert loaded_after("import compiler.pipeline, compiler.commands.build", unused) == []


def test_an_engine_at_a_socket_loads_no_docker_sdk_until_a_call_needs_it():
    # inspect, list, load and tag go through compiler/engines/docker_socket.py; containers need the SDK
    sdk = ("docker", "requests", "urllib3")
    assert loaded_after("from compiler.engines import DockerEngine; from compiler.oci.load import load_into_engine", sdk) == []


def with_code(digest: str):
    sbom = inputs()
    return dataclasses.replace(sbom, code=dataclasses.replace(sbom.code, digest=digest))


def sbom_in_a_fresh_interpreter(sbom, drafts: Path, tmp_path: Path) -> bytes:
    """``sbom_bytes(sbom, drafts)`` run in a fresh interpreter (less its last newline), asserting that
    it never loaded the CycloneDX library: the kept draft was filled in."""
    (tmp_path / "inputs.pickle").write_bytes(pickle.dumps(sbom))
    code = ("import pickle, sys\nfrom pathlib import Path\nfrom compiler.sbom.collect import sbom_bytes\n"
            f"sbom = pickle.loads(Path({str(tmp_path / 'inputs.pickle')!r}).read_bytes())\n"
            f"sys.stdout.buffer.write(sbom_bytes(sbom, Path({str(drafts)!r})))\nprint()\nprint('cyclonedx' in sys.modules)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    document, _, loaded = proc.stdout.rpartition(b"\n\n")
    assert loaded.strip() == b"False"
    return document


def test_a_new_code_version_fills_the_kept_draft_with_the_bytes_a_full_render_gives(tmp_path):
    drafts = tmp_path / "drafts"
    first = with_code("12" * 32)
    assert sbom_bytes(first, drafts) == generate_sbom(first)
    kept = list(drafts.iterdir())
    assert len(kept) == 1 and CODE_SENTINEL in kept[0].read_text()
    second = with_code("34" * 32)
    document = sbom_in_a_fresh_interpreter(second, drafts, tmp_path)
    assert document + b"\n" == generate_sbom(second)
    assert json.loads(document)["serialNumber"] != json.loads(generate_sbom(first))["serialNumber"]
    assert list(drafts.iterdir()) == kept  # nothing new kept


def with_model(version: str | None, digest: str, name: str = "sklearn-regression"):
    sbom = inputs()
    path = f"/var/azureml-app/azureml-models/{name}/{version or 'none'}/model"
    return dataclasses.replace(sbom, model=dataclasses.replace(sbom.model, name=name, version=version, digest=digest, path=path))


@pytest.mark.parametrize(
    "first, second, reused",
    [
        (("3", "ab" * 32), ("4", "ef" * 32), True),  # a new registered version: field and path folder
        (("3", "ab" * 32), ("3", "ef" * 32), True),  # the same version with other files
        (("model", "ab" * 32), ("model", "ef" * 32), True),  # a version named like the model's folder
        ((None, "ab" * 32), (None, "ef" * 32), True),  # no version at all
        (("1", "ab" * 32, "1"), ("2", "ef" * 32, "1"), False),  # named like its old version: another path
        (('v"1', "ab" * 32), ('v"2', "ef" * 32), False),  # JSON escapes it: not templated, in the key
        (("é1", "ab" * 32), ("é2", "ef" * 32), False),
    ],
)
def test_a_new_model_version_fills_the_kept_draft_with_the_bytes_a_full_render_gives(tmp_path, first, second, reused):
    drafts = tmp_path / "drafts"
    assert sbom_bytes(with_model(*first), drafts) == generate_sbom(with_model(*first))
    assert sbom_bytes(with_model(*second), drafts) == generate_sbom(with_model(*second))
    kept = list(drafts.iterdir())
    assert len(kept) == (1 if reused else 2)
    assert all(MODEL_SENTINEL in k.read_text() for k in kept)
    templated = first[0] is not None and first[0].isascii() and '"' not in first[0]
    assert (VERSION_SENTINEL in kept[0].read_text()) == templated


def test_a_model_only_change_fills_the_draft_without_the_cyclonedx_library(tmp_path):
    drafts = tmp_path / "drafts"
    sbom_bytes(with_model("7", "ab" * 32), drafts)
    second = with_model("8", "12" * 32)
    document = sbom_in_a_fresh_interpreter(second, drafts, tmp_path)
    assert document + b"\n" == generate_sbom(second)
    assert components(json.loads(document))["model"]["version"] == "8"


def test_a_damaged_draft_is_rendered_again(tmp_path):
    drafts = tmp_path / "drafts"
    sbom = with_code("56" * 32)
    sbom_bytes(sbom, drafts)
    (kept,) = drafts.iterdir()
    text = kept.read_text()
    kept.write_text(text[: text.index(CODE_SENTINEL) + 64])  # cut short after the sentinel: not a document
    assert sbom_bytes(sbom, drafts) == generate_sbom(sbom)
    assert json.loads(kept.read_text())["bomFormat"] == "CycloneDX"  # kept again, whole


def cached_wheel(cache: PackageCache, data: bytes) -> LockedPackage:
    package = LockedPackage("big", "1.0", "pip", "https://files.example/big-1.0-py3-none-any.whl",
                            "big-1.0-py3-none-any.whl", hashlib.sha256(data).hexdigest())  # fmt: skip
    path = cache.path_for(package)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return package


def test_a_large_cached_wheel_that_held_still_is_not_read_again(tmp_path):
    cache = PackageCache(tmp_path / "cache")
    data = os.urandom(MIN_SIZE + 1)
    package = cached_wheel(cache, data)
    path = cache.verified(package)
    st = path.stat()
    # other bytes of the same size, the file's times put back: not read, so not noticed (the digest is
    # kept by state, as for pkgc's stored model files)
    path.write_bytes(bytes(b ^ 1 for b in data[:16]) + data[16:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.verified(package) == path
    path.write_bytes(data[:-1] + b"x")  # written as anyone writes: its mtime moves, so it is read and refused
    with pytest.raises(BuildError, match="corrupt or tampered"):
        cache.verified(package)


def test_a_small_cached_wheel_is_checked_every_time(tmp_path):
    cache = PackageCache(tmp_path / "cache")
    package = cached_wheel(cache, b"small wheel")
    path = cache.verified(package)
    st = path.stat()
    path.write_bytes(b"small whee!")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(BuildError, match="corrupt or tampered"):
        cache.verified(package)


def stored_image(store: OciStore, n: int) -> tuple[Blob, str]:
    config = store.put_json({"architecture": "amd64", "os": "linux", "n": n, "rootfs": {"type": "layers", "diff_ids": []}})
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [],
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size}})  # fmt: skip
    return manifest, config.digest


def test_the_engine_is_asked_about_the_builds_the_store_named_in_the_repository_newest_first(tmp_path):
    store = OciStore(tmp_path / "oci")
    (m1, c1), (m2, c2), (m3, c3), (other, c_other) = (stored_image(store, n) for n in range(4))
    store.name(["pkgc/pkg:1", "pkgc/pkg:sha256-1"], m1)
    store.name(["pkgc/other:1"], other)
    store.name(["pkgc/pkg:2", "pkgc/pkg:sha256-2"], m2)
    index = store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": m3.digest, "size": m3.size}, {"mediaType": MANIFEST, "digest": m1.digest, "size": m1.size}]})  # fmt: skip
    store.name(["pkgc/pkg:3"], index, media_type=INDEX)
    assert _stored_configs(store, "pkgc/pkg") == [c3, c1, c2]  # the index's images first, each config once
    assert _stored_configs(store, "pkgc/pkg", newest=1) == [c3, c1]
    assert _stored_configs(store, "pkgc/other") == [c_other]
    assert _stored_configs(store, "pkgc/none") == []
