"""The OCI back end on a small synthetic package (a hand-made base image and wheel, no engine):
reproducible digests from empty stores, normalised layers, a host-assembled venv with in-image
paths and unchecked-hash byte-code, outputs that skopeo reads."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from isal import igzip

from compiler.errors import BuildError
from compiler.oci.blobs import BlobStore
from compiler.backends.oci.builder import build_oci_image
from compiler.backends.oci.config import timestamp
from compiler.oci.layer import Entry, write_layer
from compiler.backends.oci.layers import LayerOptions
from compiler.backends.oci.model_layers import MODEL_FILES
from compiler.oci.outputs import StoredImage, write_layout
from compiler.oci.store import CONFIG, MANIFEST, OciStore
from compiler.plan.types import BaseImage, ContextFile, Copy, EnvironmentBuild, ImageConfig, ImagePlan, Layer
from compiler.reporter import Reporter

PREFIX = "/opt/pkgc/venv"
SITE = f"{PREFIX}/lib/python3.11/site-packages"
MODEL_DIR = "/var/azureml-app/azureml-models/m/1"


def make_wheel(folder: Path, dist: str = "pkgc_hd_demo", init: bytes = b"def main():\n    print('hello')\n") -> Path:
    """A real (tiny) wheel of distribution ``dist`` holding the module pkgc_hd_demo (and, for the
    default distribution, a console script)."""
    info = f"{dist}-1.0.dist-info"
    files = {
        "pkgc_hd_demo/__init__.py": init,
        "pkgc_hd_demo/tests/test_demo.py": b"def test_main():\n    pass\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if dist == "pkgc_hd_demo":
        files[f"{info}/entry_points.txt"] = b"[console_scripts]\npkgc-hd-demo = pkgc_hd_demo:main\n"
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{dist}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_base(folder: Path) -> str:
    """A one-layer base image (passwd, group, python3.11 in /usr/bin) as an OCI layout; its reference."""
    store = OciStore(folder / "build")
    layer = write_layer([
        Entry("etc/passwd", "file", data=b"root:x:0:0:root:/root:/bin/bash\n"),
        Entry("etc/group", "file", data=b"root:x:0:\n"),
        Entry("usr/bin/python3.11", "file", 0o755, data=b"#!/bin/false\n"),
        Entry("usr/bin/python3", "symlink", 0o777, target="python3.11"),
    ], store.blobs)  # fmt: skip
    config = store.put_json({
        "architecture": "amd64", "os": "linux", "created": timestamp(0),
        "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["python3"], "Labels": {"io.pkgc.base.python": "3.11"}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}, "history": [{"created": timestamp(0), "created_by": "test"}],
    })  # fmt: skip
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [layer.descriptor()],
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size}})  # fmt: skip
    write_layout(store, StoredImage.read(store, manifest.digest), folder / "layout", "base")
    return f"oci:{folder / 'layout'}:base"


def make_plan(base: str, wheel: Path, inputs: Path) -> ImagePlan:
    (inputs / "src").mkdir(parents=True)
    (inputs / "src" / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    (inputs / "src" / "__pycache__").mkdir()
    (inputs / "src" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"stale")
    (inputs / "m.pkl").write_bytes(b"\x80\x04weights" * 100)
    (inputs / "entrypoint.sh").write_text("#!/bin/sh\nexec \"$@\"\n")
    files = (
        ContextFile(f"pkgc/wheels/{wheel.name}", source=wheel),
        ContextFile("pkgc/requirements.lock.txt", data=b"pkgc-hd-demo==1.0 --hash=sha256:00\n"),
        ContextFile("pkgc/conda-lock.yml", data=b"version: 1\n"),
        ContextFile("pkgc/pkgc-entrypoint", source=inputs / "entrypoint.sh", executable=True),
        ContextFile("model/m.pkl", source=inputs / "m.pkl"),
        ContextFile("code/src", source=inputs / "src"),
    )
    copies = (
        Copy("environment", PREFIX, PREFIX, "the locked environment", "environment"),
        Copy("runtime", "pkgc/pkgc-entrypoint", "/opt/pkgc/bin/pkgc-entrypoint", "start-up"),
        Copy("runtime", "pkgc/conda-lock.yml", "/opt/pkgc/conda-lock.yml", "the lock"),
        Copy("model", "model/m.pkl", f"{MODEL_DIR}/m.pkl", "model files"),
        Copy("code", "code/src", "/var/azureml-app/src", "code last"),
    )
    return ImagePlan(
        base=BaseImage(base),
        environment=EnvironmentBuild("venv", PREFIX, "pkgc/requirements.lock.txt", "pkgc/wheels"),
        layers=(Layer("user", "the user"), Layer("environment", "the locked environment", copies[:1]),
                Layer("runtime", "start-up; the lock", copies[1:3]), Layer("model", "model files", copies[3:4]),
                Layer("code", "code last", copies[4:])),
        config=ImageConfig(
            env={"AZUREML_MODEL_DIR": MODEL_DIR, "PYTHONUNBUFFERED": "1"},
            labels={"io.pkgc.model.name": "m"}, user="pkgc", uid=10001, workdir="/var/azureml-app/src", port=5001,
            entrypoint=("/opt/pkgc/bin/pkgc-entrypoint",), path_prefix=f"{PREFIX}/bin",
        ),
        files=files, tag="pkgc/pkgc-hd-unit:1",
    )  # fmt: skip


def build(tmp: Path, name: str, epoch: int = 0):
    """Everything fresh: inputs, base layout, store."""
    root = tmp / name
    root.mkdir()
    plan = make_plan(make_base(root / "base"), make_wheel(root), root / "inputs")
    store = OciStore(root / "store")
    built = build_oci_image(plan, store, None, LayerOptions(epoch=epoch, python="3.11"), Reporter(quiet=True))
    return built, store


def layer_members(store: OciStore, descriptor: dict) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    path = store.blobs.path(descriptor["digest"])
    raw = igzip.decompress(path.read_bytes()) if descriptor["mediaType"].endswith("+gzip") else path.read_bytes()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        for m in tar.getmembers():
            out[m.name] = (m, tar.extractfile(m).read() if m.isfile() else b"")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("oci"), "first")


def test_same_inputs_from_empty_stores_give_the_same_manifest_digest(built, tmp_path):
    again, _ = build(tmp_path, "second")
    assert again.manifest_digest == built[0].manifest_digest
    assert again.config_digest == built[0].config_digest
    later, _ = build(tmp_path, "epoch", epoch=1_700_000_000)  # SOURCE_DATE_EPOCH is an input: it moves the digest
    assert later.manifest_digest != built[0].manifest_digest


def test_layers_are_normalised_and_in_plan_order(built):
    image, store = built
    manifest = store.read_json(image.manifest_digest)
    config = store.read_json(manifest["config"]["digest"])
    assert [l.kind for l in image.layers] == ["user", "environment", "runtime", "model", "code"]
    ours = manifest["layers"][1:]
    assert [l["mediaType"].rsplit(".", 1)[-1] for l in ours] == ["tar+gzip", "tar+gzip", "tar+gzip", "tar", "tar+gzip"]
    assert len(config["rootfs"]["diff_ids"]) == 6 and len([h for h in config["history"] if not h.get("empty_layer")]) == 6
    for descriptor in ours:
        for name, (info, _) in layer_members(store, descriptor).items():
            assert info.mtime == 0 and info.uname == "" and not info.pax_headers.get("SCHILY.xattr"), name
            assert (info.uid, info.gid) == ((10001, 10001) if name == "home/pkgc" else (0, 0)), name
    code = layer_members(store, ours[4])
    assert "var/azureml-app/src/score.py" in code and not any("__pycache__" in n for n in code)
    assert {"var", "var/azureml-app"} <= set(code)  # parents included
    runtime = layer_members(store, ours[2])
    assert runtime["opt/pkgc/bin/pkgc-entrypoint"][0].mode == 0o755 and runtime["opt/pkgc/conda-lock.yml"][0].mode == 0o644
    model = layer_members(store, ours[3])  # the files at one path whatever the version; the model dir links there
    assert model[f"{MODEL_FILES}/m.pkl"][1] == b"\x80\x04weights" * 100
    assert model[MODEL_DIR.lstrip("/")][0].issym() and model[MODEL_DIR.lstrip("/")][0].linkname == f"/{MODEL_FILES}"


def test_user_is_appended_to_the_base_passwd_and_group(built):
    image, store = built
    user = layer_members(store, store.read_json(image.manifest_digest)["layers"][1])
    assert user["etc/passwd"][1].decode().splitlines() == [
        "root:x:0:0:root:/root:/bin/bash", "pkgc:x:10001:10001::/home/pkgc:/usr/sbin/nologin"]  # fmt: skip
    assert user["etc/group"][1].decode().splitlines() == ["root:x:0:", "pkgc:x:10001:"]


def test_environment_is_a_venv_for_the_image_python(built):
    image, store = built
    env = layer_members(store, store.read_json(image.manifest_digest)["layers"][2])
    venv = PREFIX.lstrip("/")
    assert env[f"{venv}/bin/python"][0].linkname == "/usr/bin/python3"
    assert env[f"{venv}/bin/python3"][0].linkname == "python" and env[f"{venv}/lib64"][0].linkname == "lib"
    assert "home = /usr/bin\n" in env[f"{venv}/pyvenv.cfg"][1].decode()
    script, data = env[f"{venv}/bin/pkgc-hd-demo"]
    assert data.startswith(f"#!{PREFIX}/bin/python\n".encode()) and script.mode == 0o755
    assert env[f"{SITE.lstrip('/')}/pkgc_hd_demo-1.0.dist-info/INSTALLER"][1] == b"pkgc\n"
    pyc = env[f"{SITE.lstrip('/')}/pkgc_hd_demo/__pycache__/__init__.cpython-311.pyc"][1]
    assert pyc[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked
    assert f"{SITE}/pkgc_hd_demo/__init__.py".encode() in pyc  # tracebacks name the in-image path
    assert f"{SITE.lstrip('/')}/pkgc_hd_demo/tests/test_demo.py" in env and not any("tests/__pycache__" in n for n in env)


def test_config_mirrors_the_dockerfile_back_end(built):
    image, store = built
    config = store.read_json(image.config_digest)
    c = config["config"]
    assert c["User"] == "10001:10001" and c["WorkingDir"] == "/var/azureml-app/src"
    assert c["Entrypoint"] == ["/opt/pkgc/bin/pkgc-entrypoint"] and "Cmd" not in c
    assert c["Env"][:2] == [f"PATH={PREFIX}/bin:/usr/bin:/bin", "LANG=C.UTF-8"] and f"AZUREML_MODEL_DIR={MODEL_DIR}" in c["Env"]
    assert c["ExposedPorts"] == {"5001/tcp": {}}
    assert c["Labels"] == {"io.pkgc.base.python": "3.11", "io.pkgc.model.name": "m"}
    assert config["created"] == "1970-01-01T00:00:00Z" and config["architecture"] == "amd64"


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is installed by scripts/ensure-engine.sh")
def test_layout_output_is_read_by_skopeo(built, tmp_path):
    image, store = built
    write_layout(store, StoredImage.read(store, image.manifest_digest), tmp_path / "out", "1")
    proc = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path / 'out'}:1"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Digest"] == image.manifest_digest


def test_missing_base_is_one_clear_error(tmp_path):
    plan = make_plan("pkgc/pkgc-hd-nowhere:1", make_wheel(tmp_path), tmp_path / "inputs")
    with pytest.raises(BuildError, match="pkgc/pkgc-hd-nowhere:1 is neither in pkgc's OCI store"):
        build_oci_image(plan, OciStore(tmp_path / "store"), None, LayerOptions(0, "3.11"), Reporter(quiet=True))


def test_blob_store_refuses_corruption(tmp_path):
    blobs = BlobStore(tmp_path)
    blob = blobs.put(b"data")
    blobs.path(blob.digest).chmod(0o644)
    blobs.path(blob.digest).write_bytes(b"tampered")
    with pytest.raises(ValueError, match="corrupt"):
        blobs.read(blob.digest)


@pytest.mark.parametrize(
    "asked, kind, template, expected",
    [
        ("auto", "venv", None, "oci"),
        ("auto", "conda", None, "oci"),
        ("auto", "venv", "my.j2", "docker"),
        ("docker", "venv", None, "docker"),
        ("oci", "venv", None, "oci"),
        ("oci", "conda", None, "oci"),
        ("oci", "conda", "my.j2", "a user --template may run steps inside the image"),
        ("oci", "venv", "my.j2", "a user --template may run steps inside the image"),
    ],
)
def test_builder_choice(asked, kind, template, expected):
    from compiler.environment.strategy import EnvironmentStrategy
    from compiler.errors import SpecError
    from compiler.backends.choose import backend_name as choose_builder
    from compiler.pipeline import BuildRequest

    request = BuildRequest(Path("package.yml"), builder=asked, template=Path(template) if template else None)
    strategy = EnvironmentStrategy(kind, "3.11", "test", ())
    if expected in ("oci", "docker"):
        assert choose_builder(request, strategy) == expected
    else:
        with pytest.raises(SpecError, match=expected):
            choose_builder(request, strategy)


def test_source_date_epoch_is_read_once_and_checked():
    from compiler.errors import SpecError
    from compiler.options import load_options

    assert load_options(environ={"SOURCE_DATE_EPOCH": "1747699200"}).source_date_epoch == 1747699200
    assert load_options(environ={}).source_date_epoch == 0
    with pytest.raises(SpecError, match="SOURCE_DATE_EPOCH"):
        load_options(environ={"SOURCE_DATE_EPOCH": "yesterday"})


def test_base_image_build_without_engine_lands_in_the_store_with_its_facts(tmp_path):
    """What ``pkgc base-image build`` does with no engine once mmdebstrap made the rootfs tar."""
    from compiler.baseimages.recipes import load_recipe
    from compiler.oci.baseimage import name_index, store_rootfs
    from compiler.backends.oci.facts import stored_base_facts
    from compiler.platform import Platform

    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        data = b"root:x:0:0:root:/root:/bin/bash\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    recipe = load_recipe("debian-bookworm")
    store = OciStore.in_cache(tmp_path / "cache")
    manifest = store_rootfs(recipe, rootfs, store)
    index = name_index(store, recipe, {Platform.host(): {"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size}})
    assert store.find(recipe.image_ref)["digest"] == store.find(recipe.latest_ref)["digest"] == index.digest
    assert store.read_json(index.digest)["manifests"][0]["platform"] == Platform.host().oci()
    config = store.read_json(store.read_json(manifest.digest)["config"]["digest"])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(rootfs.read_bytes()).hexdigest()]
    assert config["config"]["Cmd"] == ["python3"] and "LANG=C.UTF-8" in config["config"]["Env"]
    assert store_rootfs(recipe, rootfs, store) == manifest  # reproducible
    facts = stored_base_facts(recipe.latest_ref, tmp_path / "cache")
    assert facts is not None and facts.python == "3.11" and not facts.has_conda and "OCI store" in facts.how
    assert stored_base_facts("pkgc/pkgc-hd-unknown:1", tmp_path / "cache") is None


def test_wheels_sharing_a_file_install_in_lock_order(tmp_path):
    """Namespace ``__init__.py`` files shared by several wheels: the later wheel's bytes are kept,
    whatever the parallelism, and a difference is noted."""
    from compiler.envbuild.venv import VenvTarget, assemble_venv

    first = make_wheel(tmp_path)
    same = make_wheel(tmp_path, "pkgc_hd_same")
    other = make_wheel(tmp_path, "pkgc_hd_zother", init=b"CHANGED = True\r\n")
    notes: list[str] = []
    target = VenvTarget(PREFIX, "3.11", "/usr/bin")
    root = assemble_venv([first, same, other], target, tmp_path / "one", workers=2, log=notes.append)
    site = root / "lib/python3.11/site-packages"
    assert (site / "pkgc_hd_demo/__init__.py").read_bytes() == b"CHANGED = True\r\n"
    assert (site / "pkgc_hd_same-1.0.dist-info/RECORD").is_file() and (site / "pkgc_hd_zother-1.0.dist-info/RECORD").is_file()
    assert len(notes) == 1 and "pkgc_hd_zother-1.0-py3-none-any.whl's is kept" in notes[0]


def test_an_unreadable_oci_base_is_bad_input(built, tmp_path):
    from compiler.errors import ResolveError
    from compiler.backends.oci.facts import stored_base_facts

    with pytest.raises(ResolveError, match="cannot read the OCI image oci:.*index.json"):
        stored_base_facts(f"oci:{tmp_path / 'none'}", tmp_path, required=True)
    layout = tmp_path / "layout"
    image, store = built
    write_layout(store, StoredImage.read(store, image.manifest_digest), layout, "1")
    with pytest.raises(ResolveError, match="no image tagged 'other'"):
        stored_base_facts(f"oci:{layout}:other", tmp_path, required=True)
    facts = stored_base_facts(f"oci:{layout}:1", tmp_path, required=True)  # a built image carries its base's labels
    assert facts is not None and facts.python == "3.11"


def test_code_folder_links_follow_the_shared_walker(tmp_path):
    """Links inside the tree are packaged as what they point to; a link leaving it is bad input."""
    from compiler.errors import ResolveError

    plan = make_plan(make_base(tmp_path / "base"), make_wheel(tmp_path), tmp_path / "inputs")
    (tmp_path / "inputs" / "src" / "alias.py").symlink_to("score.py")
    store = OciStore(tmp_path / "store")
    built = build_oci_image(plan, store, None, LayerOptions(0, "3.11"), Reporter(quiet=True))
    code = layer_members(store, store.read_json(built.manifest_digest)["layers"][-1])
    alias = code["var/azureml-app/src/alias.py"]
    assert alias[0].isfile() and alias[1] == code["var/azureml-app/src/score.py"][1]
    (tmp_path / "inputs" / "src" / "secrets").symlink_to("/etc/shadow")
    with pytest.raises(ResolveError, match=r"src/secrets") as caught:
        build_oci_image(plan, store, None, LayerOptions(0, "3.11"), Reporter(quiet=True))
    assert caught.value.exit_code == 2


def test_a_blob_imported_under_another_digest_is_refused_and_not_stored(tmp_path):
    from compiler.oci.blobs import BlobStore

    blobs, source = BlobStore(tmp_path / "blobs"), tmp_path / "file"
    source.write_bytes(b"layer bytes")
    good = "sha256:" + hashlib.sha256(b"layer bytes").hexdigest()
    with pytest.raises(ValueError, match="has the digest " + good):
        blobs.import_file(source, "sha256:" + "0" * 64)
    assert not blobs.has(good) and not list((tmp_path / "blobs").glob(".partial-*"))
    assert blobs.import_file(source, good).size == 11 and blobs.read(good) == b"layer bytes"
