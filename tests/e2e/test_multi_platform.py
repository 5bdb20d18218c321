"""One package for linux/amd64 and linux/arm64 from this x86 host, with no emulation while building:
``pkgc build --platform linux/amd64,linux/arm64`` writes one OCI image index (the bundled example,
copy mode), loads the host's image into the engine, writes an ``oci-archive`` whose attestations
verify, and the arm64 image, run under qemu-user invoked explicitly (``pkgc verify --platform``),
answers what the amd64 image answers."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from compiler.platform import AMD64, ARM64
from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine

SAME_ON_EVERY_PLATFORM = ("runtime", "model", "inputs", "code")  # layers with no machine code


@pytest.fixture(scope="module")
def both(registered, session_env, example_copy, tmp_path_factory) -> dict:
    base = run_pkgc("base-image", "build", "debian-bookworm", "--platform", "linux/amd64,linux/arm64", env=session_env)
    assert base.returncode == 0, base.stderr[-2000:]
    folder = tmp_path_factory.mktemp("multi")
    archive = folder / "image.tar"
    proc = run_pkgc("build", str(example_copy / "package-azure-app.yml"), "--model", registered["model"],
                    "--platform", "linux/amd64,linux/arm64", "--lock-file", str(folder / "both.conda-lock.yml"),
                    "--target-environment", "multi-platform-pkg", "--output", f"oci-archive:{archive}", "--json",
                    env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"result": json.loads(proc.stdout), "archive": archive, "folder": folder}


def test_one_index_one_image_per_platform(both, engine) -> None:
    result = both["result"]
    platforms = [p["platform"] for p in result["platforms"]]
    assert platforms == [str(AMD64), str(ARM64)]
    assert result["content_tag"].endswith(result["manifest_digest"].split(":", 1)[1][:24])
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{both['archive']}"], capture_output=True, text=True, check=True)
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [(m["platform"]["architecture"], m["digest"]) for m in index["manifests"]] == [
        ("amd64", result["platforms"][0]["manifest_digest"]), ("arm64", result["platforms"][1]["manifest_digest"])]
    assert index["manifests"][1]["platform"].get("variant") == "v8"
    # the host's image is in the engine, by its config digest
    assert result["loaded"] and engine.image_info(result["image"]) is not None


def test_only_the_environment_differs(both) -> None:
    amd64, arm64 = ({l["kind"]: l["digest"] for l in p["layers"] if l["kind"] in SAME_ON_EVERY_PLATFORM} for p in both["result"]["platforms"])
    assert amd64 and amd64 == arm64
    envs = [[l["digest"] for l in p["layers"] if l["kind"] == "environment"] for p in both["result"]["platforms"]]
    assert envs[0] and not set(envs[0]) & set(envs[1])


def test_the_lock_holds_both_platforms(both) -> None:
    import yaml

    meta = yaml.safe_load((both["folder"] / "both.conda-lock.yml").read_text())["metadata"]
    assert meta["platforms"] == ["linux-64", "linux-aarch64"]


def test_attestations_verify_for_each_platform(both) -> None:
    proc = run_pkgc("attestations", "verify", f"oci-archive:{both['archive']}", "--json")
    assert proc.returncode == 0, proc.stderr
    checked = json.loads(proc.stdout)
    assert checked["sbom_attached"] and checked["provenance"]
    sboms = [r for r in checked["referrers"] if r["artifactType"] == "application/vnd.cyclonedx+json"]
    assert len({r["digest"] for r in sboms}) == 2  # one SBOM per platform


def test_the_arm64_image_answers_as_the_amd64_one_under_qemu(both, session_env, example_copy) -> None:
    request = str(example_copy / "sample-request.json")
    image = both["result"]["image"]
    answers = {}
    for platform in (AMD64, ARM64):
        proc = run_pkgc("verify", image, "--platform", str(platform), "--request-file", request, "--json", env=session_env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        verified = json.loads(proc.stdout)
        assert verified["architecture"]["platform"] == str(platform) and not verified["architecture"]["foreign"]
        assert verified["runner"] == ("qemu" if platform == ARM64 else "engine")
        answers[platform] = json.loads(verified["response"]) if isinstance(verified["response"], str) else verified["response"]
    assert answers[ARM64] == pytest.approx(answers[AMD64])


def test_a_readonly_mount_packages_model_image_serves_each_platform(both, registered, session_env, example_copy) -> None:
    """The model image of a package built for both platforms is an index of one manifest per platform
    over the same layers (containerd's unpacker refuses a config naming another platform than the
    node's): skopeo, asked for each platform as a node would be, finds its own, and the package
    labels the index's digest. The environment layers are the ``both`` build's, from the same lock."""
    folder = both["folder"]
    proc = run_pkgc("build", str(example_copy / "package-moe.yml"), "--model", registered["model"],  # readonly_mount
                    "--platform", "linux/amd64,linux/arm64", "--lock-file", str(folder / "both.conda-lock.yml"),
                    "--target-environment", "multi-platform-mounted-pkg", "--output", f"oci-archive:{folder / 'mounted.tar'}",
                    "--model-output", f"oci-archive:{folder / 'model.tar'}", "--json", env=session_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = json.loads(proc.stdout)["model_image"]
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{folder / 'model.tar'}"], capture_output=True, check=True)
    index = json.loads(raw.stdout)
    assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == model["manifest_digest"]
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]] == [("linux", "amd64"), ("linux", "arm64")]
    layers = []
    for platform in (AMD64, ARM64):
        picked = subprocess.run(["skopeo", "inspect", "--override-os", platform.os, "--override-arch", platform.architecture,
                                 f"oci-archive:{folder / 'model.tar'}"], capture_output=True, text=True, check=True)  # fmt: skip
        inspected = json.loads(picked.stdout)
        assert (inspected["Os"], inspected["Architecture"]) == (platform.os, platform.architecture)
        layers.append(inspected["Layers"])
    assert layers[0] == layers[1] and len(layers[0]) >= 1
    labels = subprocess.run(["skopeo", "inspect", "--override-arch", "arm64", f"oci-archive:{folder / 'mounted.tar'}"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(labels.stdout)["Labels"]["io.pkgc.model.image"] == model["manifest_digest"]


def test_an_mlflow_model_for_both_platforms_with_no_engine(tmp_path, session_env) -> None:
    """An MLflow model (no scoring script, no base environment), no engine answering: the index is
    written to the store and an ``oci:`` layout, and every ELF file of its arm64 image is AArch64 (the
    arm64 serving path under qemu is the sklearn package's, above; README's block runs it too). No
    byte-code: the arm64 base's Python compiling under qemu-user is the sklearn package's too (26 s of
    this MLflow environment's, here)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from compiler.oci.store import OciStore
    from compiler.options import load_options
    from compiler.runtime.architecture import check_architecture

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.5).fit(X, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "model"), signature=infer_signature(X, model.predict(X)),
                              pip_requirements=["mlflow==3.17.2", "scikit-learn==1.9.1", "numpy==2.4.6", "pandas==3.1.1",
                                                "scipy==1.17.1", "skops==0.16.0"])  # fmt: skip
    spec = tmp_path / "package.yml"
    spec.write_text("target_environment: mlflow-multi-platform\ninferencing_server:\n  type: azureml_online\n"
                    "model_configuration:\n  mode: copy\n")  # fmt: skip
    env = dict(session_env, DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = run_pkgc("build", str(spec), "--model", str(tmp_path / "model"), "--platform", "linux/amd64,linux/arm64",
                    "--output", f"oci:{tmp_path / 'layout'}", "--no-bytecode", "--json", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert not result["loaded"] and [p["platform"] for p in result["platforms"]] == [str(AMD64), str(ARM64)]
    store = OciStore.in_cache(load_options().cache_dir)
    for entry, platform in zip(result["platforms"], (AMD64, ARM64)):
        report = check_architecture(store, entry["manifest_digest"], platform)
        assert report.passed and report.elf_files > 100, report.summary()
    assert (tmp_path / "layout" / "index.json").is_file()
