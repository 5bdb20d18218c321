"""The environment in a few layers: the grouping rule, the split of a real assembled venv (its union
is the one-layer environment, byte for byte) and the per-layer cache (a one-package lock change
rewrites that package's layer and the rest, nothing else)."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from isal import igzip

from compiler.envbuild.bytecode import compile_site_packages
from compiler.envbuild.layer_groups import LayerGroup, file_owners, group_distributions, installed_sizes
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.errors import MissingLibraries
from compiler.oci.blobs import BlobStore
from compiler.backends.oci.builder import build_oci_image
from compiler.backends.oci.environment_split import split_entries
from compiler.oci.layer import staging_entries, write_layer
from compiler.backends.oci.layers import LayerOptions
from compiler.oci.store import OciStore
from compiler.plan.types import BaseImage, ContextFile, Copy, EnvironmentBuild, ImageConfig, ImagePlan, Layer
from compiler.reporter import Reporter
from tests.unit.test_conda_envbuild import assemble as conda_assemble
from tests.unit.test_conda_envbuild import inputs as conda_inputs  # noqa: F401 - a fixture
from tests.unit.test_oci_backend import make_base

MB = 1_000_000
PREFIX = "/opt/pkgc/venv"
SITE = "lib/python3.11/site-packages"


def test_big_families_and_named_distributions_get_their_own_layers_in_a_stable_order():
    sizes = {"torch": 1500 * MB, "nvidia-cudnn-cu12": 700 * MB, "nvidia-cublas-cu12": 500 * MB, "triton": 300 * MB,
             "scipy": 120 * MB, "pandas": 99 * MB, "numpy": 40 * MB, "six": 1000}  # fmt: skip
    assert group_distributions(sizes) == [
        LayerGroup("cuda", ("nvidia-cublas-cu12", "nvidia-cudnn-cu12")), LayerGroup("triton", ("triton",)),
        LayerGroup("torch", ("torch",)), LayerGroup("scipy", ("scipy",)), LayerGroup("rest", ("numpy", "pandas", "six")),
    ]  # fmt: skip
    bigger = {**sizes, "torch": 2500 * MB, "nvidia-cudnn-cu12": 10 * MB}  # the order does not follow sizes
    assert [g.name for g in group_distributions(bigger)] == ["cuda", "triton", "torch", "scipy", "rest"]


def test_a_small_environment_is_one_or_two_layers():
    sklearn = {"numpy": 40 * MB, "scipy": 110 * MB, "scikit-learn": 45 * MB, "joblib": MB, "threadpoolctl": 100_000}
    assert [g.name for g in group_distributions(sklearn)] == ["scipy", "rest"]
    assert group_distributions({"six": 1000}) == [LayerGroup("rest", ("six",))]
    assert group_distributions({}) == [LayerGroup("rest", ())]


def test_the_layer_count_is_capped_and_the_smallest_big_ones_join_the_rest():
    sizes = {f"big{i:02}": (200 + i) * MB for i in range(12)} | {"nvidia-nccl-cu12": 200 * MB, "six": 1000}
    groups = group_distributions(sizes, cap=4)
    assert [g.name for g in groups] == ["cuda", "big10", "big11", "rest"]
    assert set(groups[-1].members) == {f"big{i:02}" for i in range(10)} | {"six"}
    assert sorted(m for g in groups for m in g.members) == sorted(sizes)  # every distribution once


def make_wheel(folder: Path, dist: str, version: str, files: dict[str, bytes], script: str = "") -> Path:
    """A real wheel of ``dist`` holding ``files`` (and a console script ``script`` -> its first module)."""
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if script:
        module = next(iter(files)).split("/")[0]
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{script} = {module}:main\n".encode()
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)  # the same bytes whenever made
    return path


def wheels(folder: Path, six: str = "1.0", torch: str = "1.0") -> list[Path]:
    """A CUDA family sharing its namespace ``__init__.py``, torch (a console script, a native-looking
    file, a file it shares with a small distribution), triton, and small ones."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_wheel(folder, "nvidia-cublas-cu12", "12.1", {"nvidia/__init__.py": b"", "nvidia/cublas/lib/libcublas.so.12": b"\x7fELF" + b"\0" * 60}),
        make_wheel(folder, "nvidia-cudnn-cu12", "9.1", {"nvidia/__init__.py": b"", "nvidia/cudnn/__init__.py": b"X = 1\n"}),
        make_wheel(folder, "torch", torch, {"torch/__init__.py": f"V = {torch!r}\ndef main():\n    pass\n".encode(),
                                             "torch/nn/modules.py": b"class M:\n    pass\n", "shared_ns/__init__.py": b"# torch\n"},
                   script="torchrun"),
        make_wheel(folder, "triton", "3.0", {"triton/__init__.py": b"T = 3\n"}),
        make_wheel(folder, "six", six, {"six.py": f"VERSION = {six!r}\n".encode(), "shared_ns/__init__.py": b"# six\n"}),
        make_wheel(folder, "pkgc-tiny", "0.1", {"pkgc_tiny/__init__.py": b"def main():\n    pass\n"}, script="pkgc-tiny"),
    ]  # fmt: skip


def members(blob_path: Path) -> dict[str, tuple]:
    """path -> (type, mode, uid, gid, mtime, link, content) of a gzip layer blob."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(igzip.decompress(blob_path.read_bytes()))) as tar:
        for m in tar.getmembers():
            out[m.name] = (m.type, m.mode, m.uid, m.gid, m.mtime, m.linkname, tar.extractfile(m).read() if m.isfile() else b"")
    return out


def test_the_layers_of_a_real_venv_add_up_to_the_one_layer_environment(tmp_path):
    target = VenvTarget(PREFIX, "3.11", "/usr/bin")
    root = assemble_venv(wheels(tmp_path / "wheels"), target, tmp_path / "staging")
    compiled = compile_site_packages(root / SITE, f"{PREFIX}/{SITE}", "3.11")
    owners = file_owners(root)
    groups = group_distributions(installed_sizes(root, owners))
    assert [g.name for g in groups] == ["cuda", "triton", "torch", "rest"]
    entries = staging_entries(root, PREFIX)
    blobs = BlobStore(tmp_path / "blobs")
    single = members(blobs.path(write_layer(entries, blobs).digest))
    split = split_entries(entries, PREFIX, owners, groups)
    layers = {group.name: members(blobs.path(write_layer(part, blobs).digest)) for group, part in split}
    union: dict[str, tuple] = {}
    for name, layer in layers.items():
        for path, member in layer.items():
            if member[0] != tarfile.DIRTYPE:
                assert path not in union, f"{path} in two layers"
            assert union.setdefault(path, member) == member, path  # a folder twice: the same folder
    assert union == single  # same paths, types, modes, owners, links and bytes
    site = f"opt/pkgc/venv/{SITE}"
    assert f"{site}/nvidia/__init__.py" in layers["cuda"]  # shared inside the family: stays in it
    assert f"{site}/shared_ns/__init__.py" in layers["rest"]  # shared across groups: the rest
    assert "opt/pkgc/venv/bin/torchrun" in layers["torch"] and "opt/pkgc/venv/pyvenv.cfg" in layers["rest"]
    if compiled.compiled:
        assert f"{site}/torch/nn/__pycache__/modules.cpython-311.pyc" in layers["torch"]
    assert "opt/pkgc/venv/bin/python" in layers["rest"] and "opt/pkgc/venv/include" in layers["rest"]  # empty folder


def make_plan(base: str, wheel_files: list[Path]) -> ImagePlan:
    lock = "".join(f"{w.name.split('-')[0]}=={w.name.split('-')[1]} --hash=sha256:{hashlib.sha256(w.read_bytes()).hexdigest()}\n"
                   for w in wheel_files)  # fmt: skip
    files = (*(ContextFile(f"pkgc/wheels/{w.name}", source=w) for w in wheel_files),
             ContextFile("pkgc/requirements.lock.txt", data=lock.encode()))  # fmt: skip
    env_copy = Copy("environment", PREFIX, PREFIX, "the locked environment", "environment")
    return ImagePlan(
        base=BaseImage(base), environment=EnvironmentBuild("venv", PREFIX, "pkgc/requirements.lock.txt", "pkgc/wheels"),
        layers=(Layer("user", "the user"), Layer("environment", "the locked environment", (env_copy,))),
        config=ImageConfig(env={}, labels={}, user="pkgc", uid=10001, workdir="/", port=5001, entrypoint=("/bin/true",)),
        files=files, tag="pkgc/pkgc-envlayers-unit:1",
    )  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    return make_base(tmp_path_factory.mktemp("envlayers-base"))


def env_digests(image) -> dict[str, str]:
    return {layer.why.split("(")[-1].split(":")[0]: layer.blob.digest for layer in image.layers if layer.kind == "environment"}


def test_a_one_package_change_rewrites_its_layer_and_the_rest_only(base, tmp_path):
    store = OciStore(tmp_path / "store")
    options = LayerOptions(epoch=0, python="3.11", bytecode=False)
    first = build_oci_image(make_plan(base, wheels(tmp_path / "v1")), store, None, options, Reporter(quiet=True))
    before = env_digests(first)
    assert list(before) == ["cuda", "triton", "torch", "the rest"]
    six = env_digests(build_oci_image(make_plan(base, wheels(tmp_path / "v2", six="1.1")), store, None, options, Reporter(quiet=True)))
    assert {k for k in before if before[k] != six[k]} == {"the rest"}
    torch = env_digests(build_oci_image(make_plan(base, wheels(tmp_path / "v3", torch="2.0")), store, None, options, Reporter(quiet=True)))
    assert {k for k in before if before[k] != torch[k]} == {"torch"}  # the rest rewritten, to the same bytes
    # from an empty store, the same inputs give the same manifest digest, built whole or in part
    again = build_oci_image(make_plan(base, wheels(tmp_path / "v1b")), OciStore(tmp_path / "other"), None, options, Reporter(quiet=True))
    assert again.manifest_digest == first.manifest_digest
    fresh = build_oci_image(make_plan(base, wheels(tmp_path / "v3b", torch="2.0")), OciStore(tmp_path / "v3-alone"), None, options,
                            Reporter(quiet=True))  # fmt: skip
    incremental = build_oci_image(make_plan(base, wheels(tmp_path / "v3c", torch="2.0")), store, None,
                                  LayerOptions(epoch=0, python="3.11", bytecode=False), Reporter(quiet=True))  # fmt: skip
    assert incremental.manifest_digest == fresh.manifest_digest


def logged_build(plan: ImagePlan, store: OciStore, options: LayerOptions) -> list[str]:
    lines: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.detail = lines.append  # type: ignore[method-assign]
    build_oci_image(plan, store, None, options, reporter)
    return lines


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make real ELF files")
def test_a_cached_group_is_not_installed_and_the_library_check_still_sees_it(base, tmp_path):
    from tests.unit.test_libraries import _shared

    cudnn = _shared(tmp_path / "so", "libcudnn.so.9", [], soname="libcudnn.so.9").read_bytes()

    def torch_wheel(folder: Path, version: str, needs: str) -> Path:
        lib = _shared(folder / "so", "libtorch.so", [needs], rpath="$ORIGIN/../../nvidia/cudnn/lib").read_bytes()
        return make_wheel(folder, "torch", version, {"torch/__init__.py": version.encode(), "torch/lib/libtorch.so": lib})

    def plan(folder: Path, version: str, needs: str = "libcudnn.so.9") -> ImagePlan:
        folder.mkdir()
        cuda = make_wheel(folder, "nvidia-cudnn-cu12", "9.1", {"nvidia/cudnn/lib/libcudnn.so.9": cudnn})
        return make_plan(base, [cuda, torch_wheel(folder, version, needs), make_wheel(folder, "six", "1.0", {"six.py": b""})])

    store = OciStore(tmp_path / "store")
    options = LayerOptions(epoch=0, python="3.11", bytecode=False, allow_missing=frozenset({"libc.so.6"}))
    logged_build(plan(tmp_path / "v1", "1.0"), store, options)
    lines = logged_build(plan(tmp_path / "v2", "2.0"), store, options)  # torch changes: CUDA's layer is not installed
    assert any("(cuda: cached, not installed)" in line for line in lines), lines
    with pytest.raises(MissingLibraries, match="torch needs libpkgcnowhere.so.1"):
        logged_build(plan(tmp_path / "v3", "3.0", needs="libpkgcnowhere.so.1"), store, options)


def test_a_conda_environment_split_by_its_records_adds_up_to_the_one_layer_environment(conda_inputs, tmp_path):
    """conda-meta file lists and the pip wheel's RECORD assign every file; each distribution alone
    (``big=1``) still gives exactly the one-layer environment."""
    root = conda_assemble(conda_inputs, "split")
    owners = file_owners(root)
    groups = group_distributions(installed_sizes(root, owners), big=1)
    assert {"pkgc-demo", "demo-prefix", "pkgc-hd-demo"} <= {g.name for g in groups}
    entries = staging_entries(root, "/opt/pkgc/env")
    blobs = BlobStore(tmp_path / "blobs")
    single = members(blobs.path(write_layer(entries, blobs).digest))
    union: dict[str, tuple] = {}
    for _group, part in split_entries(entries, "/opt/pkgc/env", owners, groups):
        for path, member in members(blobs.path(write_layer(part, blobs).digest)).items():
            assert member[0] == tarfile.DIRTYPE or path not in union, f"{path} in two layers"
            union[path] = member
    assert union == single


def test_an_unreadable_wheel_is_one_clear_error(tmp_path):
    from compiler.envbuild.layer_groups import wheel_facts
    from compiler.errors import BuildError

    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(BuildError, match="broken-1.0-py3-none-any.whl: not a readable wheel"):
        wheel_facts(broken)
    facts = wheel_facts(wheels(tmp_path / "w")[2])  # torch: its module, its console script
    assert facts.name == "torch" and {"torch/__init__.py", "bin/torchrun"} <= facts.paths


def test_pkgc_cache_prune_keeps_the_environment_records_while_their_blobs_live(base, tmp_path):
    """A pruned store still reuses the environment without installing the cached groups again."""
    from compiler.cache.prune import prune_cache

    store = OciStore.in_cache(tmp_path / "cache")
    options = LayerOptions(epoch=0, python="3.11", bytecode=False)
    build_oci_image(make_plan(base, wheels(tmp_path / "v1")), store, None, options, Reporter(quiet=True))
    records = sorted(p.name for p in (store.root / "layers").iterdir())
    assert len([n for n in records if n.endswith(".environment.json")]) == 1
    assert len([n for n in records if n.endswith(".elf.json")]) == 3  # cuda, triton, torch
    prune_cache(tmp_path / "cache")
    assert sorted(p.name for p in (store.root / "layers").iterdir()) == records
    lines = logged_build(make_plan(base, wheels(tmp_path / "v2", six="1.1")), store, options)
    # torch shares shared_ns/__init__.py with six (the rest holds it): installed, but its layer reused
    assert any("(cuda, triton: cached, not installed)" in line for line in lines), lines
    assert any(line.startswith("environment layer torch reused") for line in lines), lines
