"""Build (or fetch) a base image from its recipe and tag it ``pkgc/base-<name>:<recipe-digest[:12]>``.

Idempotent: when the engine already holds that reference nothing is done (``built=False``). An
mmdebstrap recipe is bootstrapped on this host and imported with labels carrying its metadata; a
registry recipe is taken from the local engine if present, else pulled. Either way the image is
also tagged ``pkgc/base-<name>:latest``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.baseimages.bootstrap import bootstrap_rootfs
from compiler.baseimages.recipes import BaseImageRecipe, load_recipe
from compiler.engines.base import Engine, LogSink
from compiler.errors import BuildError, PkgcError

LABEL_PREFIX = "io.pkgc.base."
OFFLINE_RECIPE = "debian-bookworm"
_PYTHON_PROBE = ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]


@dataclass(frozen=True)
class BaseImageResult:
    """The outcome of ``build_base_image``: the reference to build on and whether work was done."""

    name: str
    image: str  # pkgc/base-<name>:<recipe-digest[:12]>
    image_id: str
    python: str | None  # major.minor; None when Python comes from a conda environment
    built: bool  # False when the engine already had it (or, for a registry image, had it locally)
    platforms: tuple[str, ...] = ()  # the platforms of the index in pkgc's OCI store (--platform), else ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "image_id": self.image_id,
            "python": self.python,
            "built": self.built,
        } | ({"platforms": list(self.platforms)} if self.platforms else {})


def image_labels(recipe: BaseImageRecipe) -> dict[str, str]:
    """The labels an imported base image carries; the resolver reads ``io.pkgc.base.python``/``conda``."""
    return {
        f"{LABEL_PREFIX}name": recipe.name,
        f"{LABEL_PREFIX}python": recipe.python,
        f"{LABEL_PREFIX}distro": recipe.distro,
        f"{LABEL_PREFIX}conda": "true" if recipe.has_conda else "false",
        f"{LABEL_PREFIX}recipe-digest": recipe.digest,
    } | ({f"{LABEL_PREFIX}cuda": recipe.cuda} if recipe.cuda else {})  # the CUDA runtime version the image carries


def import_changes(recipe: BaseImageRecipe) -> list[str]:
    """Dockerfile instructions applied on ``docker import``: ENV, CMD and the metadata labels."""
    changes = [f"ENV {key}={json.dumps(value)}" for key, value in recipe.config.env]
    if recipe.config.cmd:
        changes.append(f"CMD {json.dumps(list(recipe.config.cmd))}")
    changes += [f"LABEL {key}={json.dumps(value)}" for key, value in image_labels(recipe).items()]
    return changes


def build_base_image(name: str, engine: Engine, log: LogSink, *, force: bool = False) -> BaseImageResult:
    """Make the base image ``name`` available in ``engine``; a no-op when it already is (unless
    ``force``: then an mmdebstrap base is bootstrapped again and replaces the tag)."""
    recipe = load_recipe(name)
    ref = recipe.image_ref
    existing = None if force else engine.image_info(ref)
    if existing is not None:
        log(f"base image {ref} is up to date")
        _tag_latest(engine, recipe, existing.id)
        return _result(recipe, existing.id, built=False)
    if recipe.kind == "registry":
        return _from_registry(recipe, engine, log)
    return _bootstrap(recipe, engine, log)


def _bootstrap(recipe: BaseImageRecipe, engine: Engine, log: LogSink) -> BaseImageResult:
    with tempfile.TemporaryDirectory(prefix="pkgc-base-") as tmp:
        image_id = load_into_engine(recipe, bootstrap_rootfs(recipe, log, Path(tmp)), engine, log)
    return _result(recipe, image_id, built=True)


def load_into_engine(recipe: BaseImageRecipe, rootfs: Path, engine: Engine, log: LogSink) -> str:
    """Import the host's ``rootfs`` tar as the recipe's image, check its Python, tag it ``:latest``; its id."""
    ref = recipe.image_ref
    log(f"importing {rootfs.stat().st_size // (1024 * 1024)} MiB rootfs as {ref}")
    try:
        image_id = engine.import_rootfs(rootfs, ref, import_changes(recipe))
    except PkgcError:
        raise
    except Exception as exc:  # an engine/SDK error: report it as a build failure, one line
        detail = " ".join(str(getattr(exc, "explanation", None) or exc).split())
        raise BuildError(f"importing the {recipe.name} rootfs into the engine failed: {detail}") from None
    check_python(recipe, engine, ref)
    _tag_latest(engine, recipe, image_id)
    log(f"built base image {ref} ({image_id[:19]})")
    return image_id


def _from_registry(recipe: BaseImageRecipe, engine: Engine, log: LogSink) -> BaseImageResult:
    built = False
    info = engine.image_info(recipe.image)
    if info is None:
        log(f"pulling {recipe.image}")
        try:
            pull_image(engine, recipe.image, log)
        except Exception as exc:  # the SDK raises APIError, ImageNotFound, requests errors, ...
            detail = " ".join(str(getattr(exc, "explanation", None) or exc).split()) or type(exc).__name__
            raise BuildError(
                f"cannot pull {recipe.image}: {detail}; build the offline '{OFFLINE_RECIPE}' base instead"
            ) from None
        info = engine.image_info(recipe.image)
        if info is None:
            raise BuildError(
                f"cannot pull {recipe.image}: the engine reports no such image after pulling; "
                f"build the offline '{OFFLINE_RECIPE}' base instead"
            )
        built = True
    engine.tag(info.id, recipe.image_ref)
    _tag_latest(engine, recipe, info.id)
    log(f"base image {recipe.image_ref} is {recipe.image} ({info.id[:19]})")
    return _result(recipe, info.id, built=built)


def pull_image(engine: Engine, ref: str, log: LogSink) -> None:
    """Pull ``ref`` into the engine: through ``engine.pull(ref, log)`` if the engine has one, else
    with the Docker SDK (the engine's own client when it is a DockerEngine). Raises on failure."""
    pull = getattr(engine, "pull", None)
    if callable(pull):
        pull(ref, log)
        return
    import docker  # the only engine today; imported here so recipes load without it

    client = getattr(engine, "_client", None) or docker.from_env()
    repository, tag = _split_ref(ref)
    last_status = ""
    for chunk in client.api.pull(repository, tag=tag, stream=True, decode=True):
        if "error" in chunk:
            raise RuntimeError((chunk.get("errorDetail") or {}).get("message") or chunk["error"])
        status = chunk.get("status", "")
        if status and "id" not in chunk and status != last_status:  # skip per-layer progress
            log(status)
            last_status = status


def _split_ref(ref: str) -> tuple[str, str]:
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        repository, _, tag = name.rpartition(":")
        return repository, tag
    return name, "latest"


def check_python(recipe: BaseImageRecipe, engine: Engine, ref: str) -> None:
    """Fail (and drop the image) if the imported image's python3 is not the recipe's version."""
    if not recipe.python:
        return
    code, output = engine.run_command(ref, _PYTHON_PROBE)
    found = output.strip()
    if code != 0 or found != recipe.python:
        engine.remove_image(ref)
        raise BuildError(
            f"base image '{recipe.name}': python3 in the image reports {found or '(nothing)'!r} "
            f"(exit {code}), the recipe says {recipe.python}"
        )


def _tag_latest(engine: Engine, recipe: BaseImageRecipe, image_id: str) -> None:
    latest = engine.image_info(recipe.latest_ref)
    if latest is None or latest.id != image_id:
        engine.tag(image_id, recipe.latest_ref)


def _result(recipe: BaseImageRecipe, image_id: str, built: bool) -> BaseImageResult:
    return BaseImageResult(
        name=recipe.name, image=recipe.image_ref, image_id=image_id, python=recipe.python or None, built=built
    )
