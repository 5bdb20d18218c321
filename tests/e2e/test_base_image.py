"""The offline base image for real: bootstrap debian-bookworm with mmdebstrap, import it into a
Docker engine, and check what pkgc relies on (Python 3.11, venv + pip, labels, no CA bundle, size,
idempotence). Set PKGC_E2E_COLD_BASE=1 to remove the image first and time a cold build."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import docker
import pytest

from compiler.baseimages import BaseImageResult, build_base_image, load_recipe, recipe_digest
from compiler.engines import DockerEngine

pytestmark = pytest.mark.engine

NAME = "debian-bookworm"
MAX_SIZE = 200 * 1000 * 1000


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def built(engine: DockerEngine) -> BaseImageResult:
    recipe = load_recipe(NAME)
    if os.environ.get("PKGC_E2E_COLD_BASE") == "1":
        engine.remove_image(recipe.image_ref)
    lines: list[str] = []
    started = time.monotonic()
    result = build_base_image(NAME, engine, lines.append)
    print(f"\nbuild_base_image({NAME!r}): built={result.built} in {time.monotonic() - started:.1f}s")
    return result


def _sh(client: docker.DockerClient, image: str, script: str) -> str:
    out = client.containers.run(image, ["sh", "-c", script], network_mode="none", remove=True, entrypoint=[])
    return out.decode("utf-8", "replace").strip()


def test_image_exists_with_reference_and_labels(engine: DockerEngine, built: BaseImageResult) -> None:
    recipe = load_recipe(NAME)
    assert built.image == f"pkgc/base-{NAME}:{recipe_digest(recipe)[:12]}"
    assert built.python == "3.11"
    info = engine.image_info(built.image)
    assert info is not None and info.id == built.image_id
    assert info.labels["io.pkgc.base.name"] == NAME
    assert info.labels["io.pkgc.base.python"] == "3.11"
    assert info.labels["io.pkgc.base.distro"] == "debian-12"
    assert info.labels["io.pkgc.base.recipe-digest"] == recipe_digest(recipe)
    assert "LANG=C.UTF-8" in info.env
    latest = engine.image_info(f"pkgc/base-{NAME}:latest")
    assert latest is not None and latest.id == built.image_id
    assert 0 < info.size < MAX_SIZE, f"base image is {info.size / 1e6:.0f} MB"


def test_python_is_3_11(client: docker.DockerClient, built: BaseImageResult) -> None:
    out = client.containers.run(built.image, ["python3", "--version"], network_mode="none", remove=True)
    assert out.decode().strip().startswith("Python 3.11.")


def test_default_command_is_python(client: docker.DockerClient, built: BaseImageResult) -> None:
    assert client.images.get(built.image).attrs["Config"]["Cmd"] == ["python3"]


def test_venv_with_pip_works_offline(client: docker.DockerClient, built: BaseImageResult) -> None:
    out = _sh(client, built.image, "python3 -m venv /tmp/v && /tmp/v/bin/python -m pip --version")
    assert out.startswith("pip ") and "python 3.11" in out


def test_no_ca_bundle_no_docs_no_apt_lists(client: docker.DockerClient, built: BaseImageResult) -> None:
    out = _sh(
        client,
        built.image,
        "test -e /etc/ssl/certs/ca-certificates.crt && echo bundle; "
        "dpkg-query -W -f '${Status}\\n' ca-certificates 2>/dev/null | grep -q 'ok installed' && echo ca-pkg; "
        "ls /usr/share/man 2>/dev/null | grep -q . && echo man; "
        "ls /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$' | grep -q . && echo lists; "
        "command -v useradd >/dev/null && command -v groupadd >/dev/null && echo useradd; true",
    )
    assert out.split() == ["useradd"]


def test_second_build_is_a_quick_noop(engine: DockerEngine, built: BaseImageResult) -> None:
    started = time.monotonic()
    again = build_base_image(NAME, engine, lambda _: None)
    elapsed = time.monotonic() - started
    assert again.built is False
    assert again.image == built.image and again.image_id == built.image_id
    assert elapsed < 5, f"no-op rebuild took {elapsed:.1f}s"


def test_registry_recipe_uses_a_local_image_without_pulling(engine: DockerEngine, built: BaseImageResult) -> None:
    """python-slim's upstream image, when the engine has it, is tagged as the recipe's image, not pulled."""
    upstream = "python:3.11-slim"
    had_upstream = engine.image_info(upstream) is not None
    if not had_upstream:
        engine.tag(built.image_id, upstream)  # stands in for the real image, which cannot be pulled here
    try:
        result = build_base_image("python-slim", engine, lambda _line: None)
        assert result.built is False and result.image.startswith("pkgc/base-python-slim:")
        assert engine.image_info(result.image).id == engine.image_info(upstream).id
    finally:
        if not had_upstream:
            engine.remove_image(upstream)
            engine.remove_image(result.image)
            engine.remove_image("pkgc/base-python-slim:latest")
