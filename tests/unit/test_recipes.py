"""Base-image recipes: loading, unknown names, digest stability, image-reference lookup, and the
mmdebstrap command / build decisions they drive (no engine, no network)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler.baseimages import bootstrap
from compiler.baseimages.build import BaseImageResult, build_base_image, image_labels, import_changes
from compiler.baseimages.recipes import (
    BaseImageRecipe,
    list_recipes,
    load_recipe,
    metadata_for_image,
    recipe_digest,
    recipe_names,
)
from compiler.engines.base import ImageInfo
from compiler.errors import BuildError, ResolveError, SpecError
from compiler.resources import base_images_dir


def test_shipped_recipes_load() -> None:
    assert recipe_names() == ["azureml-ubuntu", "debian-bookworm", "debian-bookworm-cuda", "debian-bookworm-pytriton",
                              "python-slim", "triton-server"]  # fmt: skip
    assert [r.name for r in list_recipes()] == recipe_names()


def test_debian_bookworm_metadata() -> None:
    r = load_recipe("debian-bookworm")
    assert (r.kind, r.distro, r.python, r.cuda, r.has_conda) == ("mmdebstrap", "debian-12", "3.11", "", False)
    assert r.bootstrap is not None
    assert (r.bootstrap.mode, r.bootstrap.variant, r.bootstrap.suite) == ("root", "minbase", "bookworm")
    assert {"python3", "python3-venv"} <= set(r.bootstrap.packages)
    assert "ca-certificates" not in r.bootstrap.packages
    assert r.bootstrap.source_date_epoch > 0
    assert dict(r.config.env)["LANG"] == "C.UTF-8"
    assert r.config.cmd == ("python3",)
    assert r.image_ref == f"pkgc/base-debian-bookworm:{recipe_digest(r)[:12]}"
    assert r.latest_ref == "pkgc/base-debian-bookworm:latest"


def test_registry_recipes_metadata() -> None:
    slim = load_recipe("python-slim")
    assert (slim.kind, slim.image, slim.python, slim.distro) == ("registry", "python:3.11-slim", "3.11", "debian-12")
    azure = load_recipe("azureml-ubuntu")
    assert azure.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert (azure.python, azure.has_conda, azure.conda) == ("", True, "/opt/miniconda/bin/conda")
    assert azure.distro == "ubuntu-22.04"


def test_triton_recipes_metadata() -> None:
    pytriton = load_recipe("debian-bookworm-pytriton")
    assert (pytriton.kind, pytriton.python, pytriton.glibc) == ("mmdebstrap", "3.11", "2.36")
    assert "libpython3.11" in pytriton.bootstrap.packages
    nvidia = load_recipe("triton-server")
    assert (nvidia.kind, nvidia.image, nvidia.python, nvidia.glibc) == ("registry", "nvcr.io/nvidia/tritonserver:24.09-py3", "3.10", "2.35")
    assert load_recipe("debian-bookworm").glibc == ""  # pkgc's default manylinux range (up to 2.28)


def test_cuda_recipe_is_debian_bookworm_plus_the_non_free_cuda_runtime() -> None:
    """debian-bookworm-cuda (built here once: 117 s, 1.82 GB; not in the test path) differs from
    debian-bookworm only in its CUDA libraries, the components they come from, its label and the
    driver capabilities; no driver package (the container runtime mounts the host's)."""
    cuda, plain = load_recipe("debian-bookworm-cuda"), load_recipe("debian-bookworm")
    assert (cuda.cuda, cuda.python, cuda.distro, cuda.kind) == ("11.8", "3.11", "debian-12", "mmdebstrap")
    assert image_labels(cuda)["io.pkgc.base.cuda"] == "11.8" and "io.pkgc.base.cuda" not in image_labels(plain)
    added = set(cuda.bootstrap.packages) - set(plain.bootstrap.packages)
    assert added == {"libcudart11.0", "libcublas11", "libcublaslt11", "libcufft10", "libcurand10", "libcusparse11",
                     "libcusolver11", "libnvrtc11.2"}  # fmt: skip
    assert set(plain.bootstrap.packages) <= set(cuda.bootstrap.packages)
    assert not any(name.startswith(("libcuda1", "nvidia-driver", "libnvidia")) for name in cuda.bootstrap.packages)
    assert dict(cuda.config.env)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    mirrors = bootstrap.Mirrors("http://m/debian", "http://m/debian-security")
    sources = bootstrap.bootstrap_command(cuda, Path("/w/out.tar"), mirrors)[-3:]
    assert sources == ["deb http://m/debian bookworm main contrib non-free",
                       "deb http://m/debian bookworm-updates main contrib non-free",
                       "deb http://m/debian-security bookworm-security main contrib non-free"]  # fmt: skip
    assert 'LABEL io.pkgc.base.cuda="11.8"' in import_changes(cuda)


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ResolveError) as info:
        load_recipe("alpine")
    message = str(info.value)
    assert "\n" not in message
    assert "'alpine'" in message
    for name in ("azureml-ubuntu", "debian-bookworm", "python-slim"):
        assert name in message


def _copy_recipes(tmp_path: Path) -> Path:
    root = tmp_path / "base-images"
    shutil.copytree(base_images_dir(), root)
    return root


def test_digest_is_stable_and_ignores_formatting(tmp_path: Path) -> None:
    original = load_recipe("debian-bookworm")
    assert recipe_digest(original) == recipe_digest(load_recipe("debian-bookworm"))
    assert len(recipe_digest(original)) == 64

    root = _copy_recipes(tmp_path)
    path = root / "debian-bookworm" / "recipe.toml"
    reformatted = "# an extra comment\n\n" + path.read_text().replace(" = ", "   =   ")
    path.write_text(reformatted)
    assert recipe_digest(load_recipe("debian-bookworm", root)) == recipe_digest(original)

    edited = reformatted.replace('"python3-venv",', '"python3-venv", "libsndfile1",')
    assert edited != reformatted
    path.write_text(edited)
    changed = load_recipe("debian-bookworm", root)
    assert recipe_digest(changed) != recipe_digest(original)
    assert changed.image_ref != original.image_ref


def test_malformed_recipe_is_a_spec_error(tmp_path: Path) -> None:
    root = _copy_recipes(tmp_path)
    path = root / "python-slim" / "recipe.toml"
    path.write_text(path.read_text().replace('python = "3.11"', 'python = "three"'))
    with pytest.raises(SpecError) as info:
        load_recipe("python-slim", root)
    assert "metadata.python" in str(info.value)

    (root / "broken").mkdir()
    (root / "broken" / "recipe.toml").write_text('name = "broken"\nkind = "registry"\n')
    with pytest.raises(SpecError):
        load_recipe("broken", root)


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("python:3.11-slim", "python-slim"),
        ("docker.io/library/python:3.11-slim", "python-slim"),
        ("library/python:3.11-slim@sha256:" + "0" * 64, "python-slim"),
        ("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest", "azureml-ubuntu"),
        ("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", "azureml-ubuntu"),
        ("pkgc/base-debian-bookworm:latest", "debian-bookworm"),
        ("pkgc/base-debian-bookworm", "debian-bookworm"),
        ("pkgc/base-python-slim:0123456789ab", "python-slim"),
    ],
)
def test_metadata_for_image_known(ref: str, name: str) -> None:
    recipe = metadata_for_image(ref)
    assert recipe is not None and recipe.name == name


def test_metadata_for_image_current_digest_ref() -> None:
    recipe = load_recipe("debian-bookworm")
    found = metadata_for_image(recipe.image_ref)
    assert found is not None and found.python == "3.11"


@pytest.mark.parametrize(
    "ref", ["python:3.12-slim", "python", "ubuntu:22.04", "pkgc/base-nope:latest", "myreg:5000/python:3.11-slim"]
)
def test_metadata_for_image_unknown(ref: str) -> None:
    assert metadata_for_image(ref) is None


def test_import_changes_carry_env_cmd_and_labels() -> None:
    recipe = load_recipe("debian-bookworm")
    changes = import_changes(recipe)
    assert 'ENV LANG="C.UTF-8"' in changes
    assert any(c.startswith("ENV PATH=") for c in changes)
    assert 'CMD ["python3"]' in changes
    assert 'LABEL io.pkgc.base.name="debian-bookworm"' in changes
    assert 'LABEL io.pkgc.base.python="3.11"' in changes
    assert 'LABEL io.pkgc.base.distro="debian-12"' in changes
    assert f'LABEL io.pkgc.base.recipe-digest="{recipe_digest(recipe)}"' in changes


# --- mirrors and the mmdebstrap command ---------------------------------------------------------


def test_host_mirrors_from_deb822(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    (tmp_path / "sources.list.d" / "other.list.disabled").write_text("deb http://ignored/debian bookworm main\n")
    spec = load_recipe("debian-bookworm").bootstrap
    assert spec is not None
    mirrors = bootstrap.host_mirrors(spec, tmp_path)
    assert mirrors == bootstrap.Mirrors("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_host_mirrors_from_sources_list_and_fallback(tmp_path: Path) -> None:
    spec = load_recipe("debian-bookworm").bootstrap
    assert spec is not None
    assert bootstrap.host_mirrors(spec, tmp_path) == bootstrap.Mirrors(
        "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    )
    (tmp_path / "sources.list").write_text("deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main\n")
    assert bootstrap.host_mirrors(spec, tmp_path).main == "http://m.example/debian"


def test_bootstrap_command() -> None:
    recipe = load_recipe("debian-bookworm")
    mirrors = bootstrap.Mirrors("http://m/debian", "http://m/debian-security")
    stub = Path("/w/pkgc-stub-ca-certificates_1.0_all.deb")
    cmd = bootstrap.bootstrap_command(recipe, Path("/w/out.tar"), mirrors, (stub,))
    assert cmd[:4] == ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar"]
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in cmd
    assert "--include=python3,python3-venv,libgomp1" in cmd
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in cmd
    assert "--dpkgopt=path-exclude=/usr/share/locale/*" in cmd
    assert "--dpkgopt=path-exclude=/usr/share/man/*" in cmd
    assert f"--essential-hook=copy-in {stub} /tmp" in cmd
    hook = next(c for c in cmd if c.startswith("--customize-hook="))
    assert '"$1"/var/lib/apt/lists/*' in hook and '"$1"/var/cache/apt/*' in hook
    assert cmd[-5:] == [
        "bookworm",
        "/w/out.tar",
        "deb http://m/debian bookworm main",
        "deb http://m/debian bookworm-updates main",
        "deb http://m/debian-security bookworm-security main",
    ]
    assert not any("ca-certificates" in c for c in cmd if c.startswith("--include"))


# --- registry recipes: no registry is reachable here, so their pull decisions use a stand-in ----
# (the real engine's no-op rebuild and local-image tagging are in tests/e2e/test_base_image.py;
#  a real pull is exercised from the loopback registry in tests/e2e/test_outputs.py)


class FakeEngine:
    name = "fake"

    def __init__(self, images: dict[str, str] | None = None, pull_error: Exception | None = None):
        self.images = dict(images or {})
        self.pull_error = pull_error
        self.pulled: list[str] = []

    def image_info(self, ref: str) -> ImageInfo | None:
        image_id = self.images.get(ref)
        return ImageInfo(id=image_id, tags=(ref,)) if image_id else None

    def tag(self, image_id: str, ref: str) -> None:
        self.images[ref] = image_id

    def pull(self, ref: str, log: object) -> None:
        if self.pull_error:
            raise self.pull_error
        self.pulled.append(ref)
        self.images[ref] = "sha256:pulled"

    def import_rootfs(self, *args: object) -> str:
        raise AssertionError("must not bootstrap")


def _log(_: str) -> None:
    pass


def test_registry_image_pulled() -> None:
    engine = FakeEngine()
    result = build_base_image("azureml-ubuntu", engine, _log)  # type: ignore[arg-type]
    assert (result.built, result.python) == (True, None)
    assert engine.pulled == ["mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"]


def test_registry_pull_failure_is_a_clear_build_error() -> None:
    engine = FakeEngine(pull_error=RuntimeError("Get https://registry-1.docker.io/v2/: dial tcp: i/o timeout"))
    with pytest.raises(BuildError) as info:
        build_base_image("python-slim", engine, _log)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("cannot pull python:3.11-slim: Get https://registry-1.docker.io")
    assert message.endswith("build the offline 'debian-bookworm' base instead")
    assert info.value.exit_code == 3


def test_a_users_recipe_folder_loads_by_path(tmp_path: Path, monkeypatch) -> None:
    """`pkgc base-image build ./my-base`: a recipe of the user's own, e.g. the offline base plus a library."""
    folder = tmp_path / "my-base"
    folder.mkdir()
    text = (base_images_dir() / "debian-bookworm" / "recipe.toml").read_text()
    text = text.replace('name = "debian-bookworm"', 'name = "my-base"').replace('"libgomp1"]', '"libgomp1", "libsndfile1"]')
    (folder / "recipe.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("./my-base")
    assert recipe.name == "my-base" and "libsndfile1" in recipe.bootstrap.packages
    assert recipe.image_ref.startswith("pkgc/base-my-base:")
    with pytest.raises(ResolveError, match="no recipe.toml"):
        load_recipe("./elsewhere")
