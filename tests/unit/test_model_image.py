"""The model image (compiler.backends.oci.model_image) and what uses it: the package label, the Kubernetes
model volume (checked against the Kubernetes JSON schemas with kubernetes-validate), the flags."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest

from compiler.deploy.settings import ModelImageRef, deploy_facts, deploy_settings
from compiler.errors import TargetSyntaxError
from compiler.outputs.model_image import ModelTargets, check_mode, parse_model_targets
from compiler.deploy.model_volume import COPIER_IMAGE
from compiler.errors import ResolveError, SpecError
from compiler.labels import MODEL_IMAGE, PackageLabels, Route
from compiler.oci.layer import TAR_LAYER
from compiler.backends.oci.model_image import ModelSource, build_model_image, model_reference
from compiler.oci.store import OciStore
from compiler.platform import Platform

K8S = "1.35.0"  # image volumes: beta and on by default from 1.35 (the first schema here with volumes[].image)


def _model(tmp_path: Path, big: bytes = b"w" * 300, name: str = "m") -> ModelSource:
    tree = tmp_path / name
    (tree / "model" / "sub").mkdir(parents=True, exist_ok=True)
    (tree / "model" / "a.json").write_text('{"a": 1}')
    (tree / "model" / "sub" / "b.txt").write_text("b")
    (tree / "model" / "weights.bin").write_bytes(big)
    (tree / "model" / "z-weights.bin").write_bytes(b"z" * 200)
    (tree / "model" / "run.sh").write_text("#!/bin/sh\n")
    (tree / "model" / "run.sh").chmod(0o755)
    return ModelSource("reg-model", "3", "custom_model", "ab" * 32, tree, "model")


def _layer_members(store: OciStore, digest: str) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(store.blobs.read(digest))) as tar:
        return tar.getmembers()


def test_one_layer_per_large_file_before_the_small_files_uncompressed(tmp_path):
    store = OciStore(tmp_path / "store")
    image = build_model_image(_model(tmp_path), store, large=100)
    manifest = store.read_json(image.manifest_digest)
    config = store.read_json(manifest["config"]["digest"])
    layers = manifest["layers"]
    assert [layer["mediaType"] for layer in layers] == [TAR_LAYER] * 3
    names = [[m.name for m in _layer_members(store, layer["digest"]) if m.isfile()] for layer in layers]
    assert names == [["model/weights.bin"], ["model/z-weights.bin"], ["model/a.json", "model/run.sh", "model/sub/b.txt"]]
    # uncompressed: each layer's digest is its diff_id; the config is a real image config
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["Labels"]["io.pkgc.model.tree"] == "sha256:" + "ab" * 32
    assert config["config"]["Labels"]["io.pkgc.model.name"] == "reg-model"
    assert config["config"]["Labels"]["io.pkgc.model.version"] == "3"
    members = {m.name: m for m in _layer_members(store, layers[2]["digest"])}
    assert (members["model/run.sh"].mode, members["model/a.json"].mode, members["model"].mode) == (0o755, 0o644, 0o755)
    assert {(m.mtime, m.uid, m.gid) for m in members.values()} == {(0, 0, 0)}
    assert store.find(image.reference)["digest"] == image.manifest_digest
    assert image.reference == "pkgc/model-reg-model:3" and image.layers == 3


def test_same_model_same_digest_other_model_other_digest(tmp_path):
    first = build_model_image(_model(tmp_path / "1"), OciStore(tmp_path / "s1"), large=100)
    again = build_model_image(_model(tmp_path / "2"), OciStore(tmp_path / "s2"), large=100, reuse=False)
    assert first.manifest_digest == again.manifest_digest and not again.reused
    cached = build_model_image(_model(tmp_path / "1"), OciStore(tmp_path / "s1"), large=100)
    assert cached.reused and cached.manifest_digest == first.manifest_digest
    changed = build_model_image(_model(tmp_path / "3", big=b"v" * 300), OciStore(tmp_path / "s3"), large=100)
    assert changed.manifest_digest != first.manifest_digest
    small = build_model_image(_model(tmp_path / "4"), OciStore(tmp_path / "s4"))  # default threshold 64 MiB
    assert small.layers == 1


def test_a_cache_entry_whose_blobs_are_gone_is_rebuilt(tmp_path):
    store = OciStore(tmp_path / "store")
    image = build_model_image(_model(tmp_path), store, large=100)
    layer = store.read_json(image.manifest_digest)["layers"][1]["digest"]
    store.blobs.path(layer).unlink()
    again = build_model_image(_model(tmp_path), store, large=100)
    assert not again.reused and again.manifest_digest == image.manifest_digest and store.blobs.has(layer)


def test_the_config_names_the_packages_platform(tmp_path):
    """containerd's unpacker refuses an image whose config names another platform than the node's:
    an arm64 package's model image says arm64 (and its variant), not amd64."""
    store = OciStore(tmp_path / "store")
    image = build_model_image(_model(tmp_path), store, large=100, platforms=(Platform.parse("linux/arm64"),))
    manifest = store.read_json(image.manifest_digest)
    config = store.read_json(manifest["config"]["digest"])
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
    amd64 = build_model_image(_model(tmp_path), store, large=100)
    assert amd64.manifest_digest != image.manifest_digest
    assert store.read_json(store.read_json(amd64.manifest_digest)["config"]["digest"])["architecture"] == "amd64"
    assert store.read_json(amd64.manifest_digest)["layers"] == manifest["layers"]  # the same layers, written once


def test_a_package_of_several_platforms_gets_an_index_over_one_set_of_layers(tmp_path):
    from compiler.oci.outputs import StoredImage
    from compiler.oci.store import INDEX

    store = OciStore(tmp_path / "store")
    platforms = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
    image = build_model_image(_model(tmp_path), store, large=100, platforms=platforms)
    index = store.read_json(image.manifest_digest)
    assert index["mediaType"] == INDEX and image.config_digest == ""
    assert [entry["platform"] for entry in index["manifests"]] == [p.oci() for p in platforms]
    manifests = [store.read_json(entry["digest"]) for entry in index["manifests"]]
    configs = [store.read_json(m["config"]["digest"]) for m in manifests]
    assert [(c["os"], c["architecture"]) for c in configs] == [("linux", "amd64"), ("linux", "arm64")]
    assert manifests[0]["layers"] == manifests[1]["layers"] and image.layers == 3
    assert image.size == sum(m["config"]["size"] for m in manifests) + sum(layer["size"] for layer in manifests[0]["layers"])
    assert store.find(image.reference)["mediaType"] == INDEX
    stored = StoredImage.read(store, image.manifest_digest)  # what --model-output/--model-push publish
    assert [child.config_digest for child in stored.children] == [m["config"]["digest"] for m in manifests]
    again = build_model_image(_model(tmp_path), store, large=100, platforms=platforms)
    assert again.reused and again.manifest_digest == image.manifest_digest
    store.blobs.path(manifests[1]["config"]["digest"]).unlink()  # a child's blob gone: rebuilt, same digest
    rebuilt = build_model_image(_model(tmp_path), store, large=100, platforms=platforms)
    assert not rebuilt.reused and rebuilt.manifest_digest == image.manifest_digest


def test_reference_names_are_valid_whatever_the_model_is_called():
    assert model_reference("My Model!", "1.0+x") == "pkgc/model-my-model:1.0-x"


def _labels(mode: str = "readonly_mount", model_image: str | None = "sha256:" + "cd" * 32) -> dict[str, str]:
    return PackageLabels(
        title="sk-pkg", description="d", base_image="b", mode=mode, model_name="sk", model_version="1",
        model_type="custom_model", model_tree="ab" * 32, model_dir="/var/azureml-app/azureml-models/sk/1",
        server="azureml_online", score=Route(5001, "/score"), readiness=Route(5001, "/"), liveness=Route(5001, "/"),
        extra={}, model_image=model_image if mode != "copy" else None,
    ).to_labels()  # fmt: skip


def test_the_package_label_names_the_model_image_and_is_checked():
    labels = _labels()
    assert labels[MODEL_IMAGE] == "sha256:" + "cd" * 32
    assert PackageLabels.from_labels("img", labels).model_image == "sha256:" + "cd" * 32
    assert PackageLabels.from_labels("img", _labels(model_image=None)).model_image is None
    with pytest.raises(ResolveError, match="io.pkgc.model.image"):
        PackageLabels.from_labels("img", {**labels, MODEL_IMAGE: "latest"})


def _ref(pushed: bool = True) -> ModelImageRef:
    return ModelImageRef("reg.example/models/sk:1@sha256:" + "cd" * 32, "sha256:" + "cd" * 32, "model", pushed)


def _objects(platform: str, labels: dict, ref: ModelImageRef | None) -> list[dict]:
    settings = deploy_settings(platform, deploy_facts("reg.example/sk-pkg:1", labels, "sha256:" + "ef" * 32, ref))
    for obj in settings.data["objects"]:
        kubernetes_validate.validate(obj, K8S, strict=True)
    return settings.data["objects"]


def test_kubernetes_mounts_the_model_image_as_a_read_only_image_volume():
    deployment, service = _objects("kubernetes", _labels(), _ref())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "model", "image": {"reference": _ref().reference, "pullPolicy": "IfNotPresent"}}]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [{"name": "model", "mountPath": "/var/azureml-app/azureml-models/sk/1", "readOnly": True}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert container["image"] == "reg.example/sk-pkg:1@sha256:" + "ef" * 32
    assert "initContainers" not in pod and service["kind"] == "Service"


def test_kubernetes_init_copies_the_model_from_its_image_into_an_empty_dir():
    deployment, _ = _objects("kubernetes-init", _labels(), _ref())
    pod = deployment["spec"]["template"]["spec"]
    copier, copy = pod["initContainers"]
    assert copier["image"] == COPIER_IMAGE and copy["image"] == _ref().reference
    assert copy["command"] == ["/pkgc-tools/busybox", "cp", "-R", "/model", "/pkgc-model/"]
    assert {"name": "model", "emptyDir": {}} in pod["volumes"]
    assert pod["containers"][0]["volumeMounts"][0]["readOnly"] is True


def test_without_a_model_image_a_claim_and_copy_packages_no_volume():
    deployment, _ = _objects("kubernetes", _labels(model_image=None), None)
    assert deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    deployment, _ = _objects("kubernetes", _labels(mode="copy"), None)
    assert "volumes" not in deployment["spec"]["template"]["spec"]


def test_the_schema_check_is_real_an_unknown_volume_key_is_refused():
    deployment, _ = _objects("kubernetes", _labels(), _ref())
    deployment["spec"]["template"]["spec"]["volumes"][0]["image"]["pullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S, strict=True)


def test_an_unpushed_model_image_is_named_with_how_to_push_it():
    ref = ModelImageRef("pkgc/model-sk:1@sha256:" + "cd" * 32, "sha256:" + "cd" * 32, "model")
    settings = deploy_settings("kubernetes", deploy_facts("pkgc/sk-pkg:1", _labels(), None, ref))
    assert "--model-push" in settings.text


def test_a_model_image_of_another_digest_is_refused():
    other = ModelImageRef("r.example/m:1@sha256:" + "00" * 32, "sha256:" + "00" * 32, "model")
    with pytest.raises(ResolveError, match="was built for model image"):
        deploy_facts("img", _labels(), None, other)


def test_flags_are_checked_and_named(tmp_path):
    targets = parse_model_targets([f"oci:{tmp_path / 'm'}", f"oci-archive:{tmp_path / 'm.tar'}:v1"], "reg.example/models/sk:1")
    assert [t.kind for t in targets.outputs] == ["oci", "oci-archive"] and targets.push.tag == "1"
    with pytest.raises(TargetSyntaxError, match="^--model-output 'docker:x'"):
        parse_model_targets(["docker:x"], None)
    with pytest.raises(TargetSyntaxError, match="^--model-push 'nohost'"):
        parse_model_targets([], "nohost")
    with pytest.raises(SpecError, match="copy package"):
        check_mode("pkgc/x:1", "copy", None, targets)
    check_mode("pkgc/x:1", "copy", None, ModelTargets())  # nothing asked: nothing to refuse


def test_layer_digests_are_the_sha256_of_the_bytes(tmp_path):
    store = OciStore(tmp_path / "store")
    image = build_model_image(_model(tmp_path), store, large=100)
    for layer in store.read_json(image.manifest_digest)["layers"]:
        data = store.blobs.path(layer["digest"]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"] and len(data) == layer["size"]
    assert json.loads(store.blobs.read(image.manifest_digest))["config"]["digest"] == image.config_digest
