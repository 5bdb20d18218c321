"""Base-image recipes: the data files ``base-images/<name>/recipe.toml``, loaded and validated.

A recipe is either ``kind = "mmdebstrap"`` (a Debian rootfs bootstrapped on this host, then
imported into the engine: no registry needed) or ``kind = "registry"`` (an image pulled as is).
Both carry the metadata pkgc needs without running the image: distro, Python major.minor ("" when
Python comes from a conda environment), CUDA and conda. The recipe digest is the sha256 of the
recipe's canonical content (its parsed TOML as sorted, compact JSON), so comments and formatting
do not change it; it names the image pkgc builds: ``pkgc/base-<name>:<digest[:12]>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli

from compiler.errors import ResolveError, SpecError, SpecProblem
from compiler.resources import base_images_dir

RECIPE_FILE = "recipe.toml"
IMAGE_REPOSITORY_PREFIX = "pkgc/base-"
KINDS = ("mmdebstrap", "registry")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REMOVE_PATH = re.compile(r"^(/[A-Za-z0-9._+*@-]+)+/?$")


@dataclass(frozen=True)
class BootstrapSpec:
    """How mmdebstrap builds the rootfs (``[bootstrap]`` table of an mmdebstrap recipe)."""

    mode: str
    variant: str
    suite: str
    components: tuple[str, ...]
    mirror: str  # a URI, or "host": the mirror this host's apt uses for ``suite``
    fallback_mirror: str
    security_mirror: str  # a URI, "host", or "" for none
    fallback_security_mirror: str
    extra_suites: tuple[str, ...]
    packages: tuple[str, ...]
    stub_packages: tuple[str, ...]  # dependencies satisfied by an empty local provider, not installed
    hook_dirs: tuple[str, ...]  # mmdebstrap --hook-dir: a path, or a name under its hooks directory
    source_date_epoch: int
    apt_options: tuple[str, ...]
    dpkg_path_exclude: tuple[str, ...]
    dpkg_path_include: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class ImageConfig:
    """Image configuration applied on import (``[image]`` table): environment and command."""

    env: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaseImageRecipe:
    """One base-image recipe with its metadata; ``content`` is the canonical JSON that is hashed."""

    name: str
    kind: str
    description: str
    image: str  # registry reference for kind "registry"; "" for mmdebstrap
    distro: str
    python: str  # "3.11"; "" when Python is provided by the conda environment
    cuda: str  # "" for none
    has_conda: bool
    conda: str  # path of the conda binary in the image, "" for none
    bootstrap: BootstrapSpec | None
    config: ImageConfig
    path: Path
    content: str
    glibc: str = ""  # "2.36": pip may pick manylinux wheels up to this glibc; "" for pkgc's default (2.28)

    @property
    def digest(self) -> str:
        return recipe_digest(self)

    @property
    def image_ref(self) -> str:
        """The reference pkgc gives this base in the engine: ``pkgc/base-<name>:<digest[:12]>``."""
        return f"{IMAGE_REPOSITORY_PREFIX}{self.name}:{self.digest[:12]}"

    @property
    def latest_ref(self) -> str:
        return f"{IMAGE_REPOSITORY_PREFIX}{self.name}:latest"


def recipe_digest(recipe: BaseImageRecipe) -> str:
    """sha256 (hex) of the recipe's canonical content: formatting- and comment-independent."""
    return hashlib.sha256(recipe.content.encode("utf-8")).hexdigest()


def recipe_names(directory: Path | None = None) -> list[str]:
    """Names of the recipes shipped with pkgc (folders holding a recipe.toml), sorted."""
    root = directory or base_images_dir()
    return sorted(p.name for p in root.iterdir() if (p / RECIPE_FILE).is_file())


def list_recipes(directory: Path | None = None) -> list[BaseImageRecipe]:
    """Every shipped recipe, loaded and validated, sorted by name."""
    return [load_recipe(name, directory) for name in recipe_names(directory)]


def load_recipe(name: str, directory: Path | None = None) -> BaseImageRecipe:
    """Load the recipe ``name`` (or a user's recipe folder, a path holding a recipe.toml); unknown
    names raise ResolveError listing the known ones."""
    if directory is None and ("/" in name or name.startswith(".")):
        folder = Path(name)
        if not (folder / RECIPE_FILE).is_file():
            raise ResolveError(f"{name}: no {RECIPE_FILE} in this folder (a base-image recipe folder holds one)")
        return _read(folder / RECIPE_FILE, folder.resolve().name)
    root = directory or base_images_dir()
    known = recipe_names(root)
    if name not in known:
        raise ResolveError(f"unknown base image '{name}'; known base images: {', '.join(known) or '(none)'}")
    return _read(root / name / RECIPE_FILE, name)


def _read(path: Path, name: str) -> BaseImageRecipe:
    try:
        data = tomli.loads(path.read_text(encoding="utf-8"))
    except tomli.TOMLDecodeError as exc:
        raise SpecError(SpecProblem(path, "", f"not valid TOML: {exc}")) from None
    return _parse(data, path, name)


def metadata_for_image(ref: str, directory: Path | None = None) -> BaseImageRecipe | None:
    """The recipe behind an image reference, or None: a registry recipe's image (``python:3.11-slim``,
    ``docker.io/library/python:3.11-slim``, with or without ``@sha256:...``) or a pkgc-built base
    (``pkgc/base-<name>:<any tag>``)."""
    wanted = _normalize_ref(ref)
    repository = wanted.rpartition(":")[0]
    for recipe in list_recipes(directory):
        if repository == f"{IMAGE_REPOSITORY_PREFIX}{recipe.name}":
            return recipe
        if recipe.image and _normalize_ref(recipe.image) == wanted:
            return recipe
    return None


def _normalize_ref(ref: str) -> str:
    """``[registry/]repo[:tag][@digest]`` -> ``repo:tag`` with Docker Hub's defaults made explicit."""
    ref = ref.strip().split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        ref += ":latest"
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        ref = ref.removeprefix(prefix)
    return ref.removeprefix("library/")


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Reader:
    """Typed access to one recipe's tables, collecting problems as SpecProblems."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[SpecProblem] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(SpecProblem(self.path, key, message))

    def table(self, data: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(key, "missing table")
            return {}
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
            return {}
        return value

    def string(self, data: dict[str, Any], key: str, prefix: str = "", default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            self.fail(prefix + key, "missing" if value is None else "must be a string")
            return ""
        return value

    def boolean(self, data: dict[str, Any], key: str, prefix: str = "") -> bool:
        value = data.get(key)
        if not isinstance(value, bool):
            self.fail(prefix + key, "must be true or false")
            return False
        return value

    def strings(self, data: dict[str, Any], key: str, prefix: str = "") -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(prefix + key, "must be a list of strings")
            return ()
        return tuple(value)


def _parse(data: dict[str, Any], path: Path, folder: str) -> BaseImageRecipe:
    r = _Reader(path)
    name = r.string(data, "name")
    if name and name != folder:
        r.fail("name", f"'{name}' does not match its folder '{folder}'")
    if name and not _NAME.match(name):
        r.fail("name", "must be lower-case letters, digits, '.', '_' or '-'")
    kind = r.string(data, "kind")
    if kind and kind not in KINDS:
        r.fail("kind", f"'{kind}' is not one of {', '.join(KINDS)}")
    description = r.string(data, "description", default="")

    meta = r.table(data, "metadata")
    distro = r.string(meta, "distro", "metadata.")
    python = r.string(meta, "python", "metadata.")
    if python and not re.fullmatch(r"\d+\.\d+", python):
        r.fail("metadata.python", f"'{python}' is not a major.minor version (or \"\" for conda-provided)")
    cuda = r.string(meta, "cuda", "metadata.", default="")
    glibc = r.string(meta, "glibc", "metadata.", default="")
    if glibc and not re.fullmatch(r"2\.\d{1,2}", glibc):
        r.fail("metadata.glibc", f"'{glibc}' is not a glibc version such as 2.36 (or \"\" for the default)")
    has_conda = r.boolean(meta, "has_conda", "metadata.")
    conda = r.string(meta, "conda", "metadata.", default="")
    if has_conda and not conda:
        r.fail("metadata.conda", "has_conda is true but no conda path is given")
    if not python and not has_conda:
        r.fail("metadata.python", "empty (conda-provided) but has_conda is false")

    image = ""
    bootstrap: BootstrapSpec | None = None
    config = ImageConfig()
    if kind == "registry":
        image = r.string(data, "image")
    elif kind == "mmdebstrap":
        bootstrap = _parse_bootstrap(r, r.table(data, "bootstrap"))
        config = _parse_image_config(r, r.table(data, "image", required=False))

    if r.problems:
        raise SpecError(r.problems)
    return BaseImageRecipe(
        name=name,
        kind=kind,
        description=description,
        image=image,
        distro=distro,
        python=python,
        cuda=cuda,
        has_conda=has_conda,
        conda=conda,
        bootstrap=bootstrap,
        config=config,
        path=path.parent,
        content=_canonical(data),
        glibc=glibc,
    )


def _parse_bootstrap(r: _Reader, b: dict[str, Any]) -> BootstrapSpec:
    p = "bootstrap."
    epoch = b.get("source_date_epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        r.fail(p + "source_date_epoch", "must be a non-negative integer (seconds since 1970)")
        epoch = 0
    remove = r.strings(b, "remove", p)
    for item in remove:
        if not _REMOVE_PATH.match(item) or "/../" in item + "/":
            r.fail(p + "remove", f"'{item}' must be an absolute path inside the rootfs (letters, digits, ._+@-*)")
    packages = r.strings(b, "packages", p)
    stubs = r.strings(b, "stub_packages", p)
    for key, names in (("packages", packages), ("stub_packages", stubs)):
        for pkg in names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]*(:[a-z0-9]+)?", pkg):
                r.fail(p + key, f"'{pkg}' is not a Debian package name")
    hook_dirs = r.strings(b, "hook_dirs", p)
    for hook in hook_dirs:
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", hook):
            r.fail(p + "hook_dirs", f"'{hook}' must be a plain path or hook name")
    return BootstrapSpec(
        mode=r.string(b, "mode", p, default="root"),
        variant=r.string(b, "variant", p, default="minbase"),
        suite=r.string(b, "suite", p),
        components=r.strings(b, "components", p) or ("main",),
        mirror=r.string(b, "mirror", p, default="host"),
        fallback_mirror=r.string(b, "fallback_mirror", p, default="http://deb.debian.org/debian"),
        security_mirror=r.string(b, "security_mirror", p, default=""),
        fallback_security_mirror=r.string(b, "fallback_security_mirror", p, default=""),
        extra_suites=r.strings(b, "extra_suites", p),
        packages=packages,
        stub_packages=stubs,
        hook_dirs=hook_dirs,
        source_date_epoch=epoch,
        apt_options=r.strings(b, "apt_options", p),
        dpkg_path_exclude=r.strings(b, "dpkg_path_exclude", p),
        dpkg_path_include=r.strings(b, "dpkg_path_include", p),
        remove=remove,
    )


def _parse_image_config(r: _Reader, image: dict[str, Any]) -> ImageConfig:
    env = image.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        r.fail("image.env", "must be a table of strings")
        env = {}
    return ImageConfig(env=tuple(sorted(env.items())), cmd=r.strings(image, "cmd", "image."))
