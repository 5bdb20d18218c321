"""The one place that reads the process environment and config files into typed options.

Config files (``pkgc.toml``, or ``[tool.pkgc]`` in ``pyproject.toml``, beside the spec) are input like
a spec: a problem is one line naming the file, the line and the key. Paths in them (``workspace``,
each registry) expand ``~`` and are relative to the file's folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import tomli

from compiler.cache.cache_repo import MODES as CACHE_MODES
from compiler.cache.cache_repo import cache_problem
from compiler.deps.conda_file import CHANNEL
from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.platform import Platform, parse_platforms

DEFAULT_WORKSPACE = Path.home() / ".pkgc" / "workspace"
DEFAULT_CACHE = Path.home() / ".cache" / "pkgc"
CONFIG_MAX_BYTES = 1024 * 1024
SONAME = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")
CONFIG_KEYS = ("workspace", "registries", "mlflow_base_image", "slim", "bytecode", "conda_default_channels", "allow_missing_libraries",
               "compression", "platforms", "cache", "cache_mode")
COMPRESSIONS = ("gzip", "zstd", "none")  # compiler.oci.compress.COMPRESSIONS, without importing the codecs
DEFAULT_CONDA_CHANNELS = ("defaults",)  # what conda uses for a file without channels: when .condarc names none


@dataclass(frozen=True)
class Options:
    """Settings that do not come from package.yml."""

    workspace: Path
    cache_dir: Path
    registries: dict[str, Path] = field(default_factory=dict)
    mlflow_tracking_uri: str | None = None
    mlflow_base_image: str | None = None
    docker_host: str | None = None  # DOCKER_HOST, for tools (skopeo) that do not read it themselves
    source_date_epoch: int = 0  # SOURCE_DATE_EPOCH: the time of every file and history entry the OCI back end writes
    slim: bool = False  # config ``slim = true``: build --slim by default
    bytecode: bool = True  # config ``bytecode = false``: build --no-bytecode by default
    conda_default_channels: tuple[str, ...] = DEFAULT_CONDA_CHANNELS  # a conda file without channels; trusted
    allow_missing_libraries: frozenset[str] = frozenset()  # sonames the build check lets through
    compression: str = "gzip"  # config ``compression``: the OCI back end's layer compression (build --compression)
    platforms: tuple[Platform, ...] = ()  # config ``platforms``: what build/lock target by default; empty: the host's
    cache: str | None = None  # config ``cache`` / build --cache: the shared build cache REGISTRY/REPO
    cache_mode: str = "readwrite"  # config ``cache_mode`` / build --cache-mode: read|readwrite


@dataclass(frozen=True)
class Config:
    """The pkgc section of one config file, checked; paths already made absolute."""

    workspace: Path | None = None
    registries: dict[str, Path] = field(default_factory=dict)
    mlflow_base_image: str | None = None
    slim: bool = False
    bytecode: bool = True
    conda_default_channels: tuple[str, ...] = DEFAULT_CONDA_CHANNELS
    allow_missing_libraries: frozenset[str] = frozenset()
    compression: str = "gzip"
    platforms: tuple[Platform, ...] = ()
    cache: str | None = None
    cache_mode: str = "readwrite"


class _ConfigFile:
    """One config file's text and table, for checks that name the key and its line."""

    def __init__(self, path: Path, text: str, section: str):
        self.path, self.text, self.section = path, text, section

    def problem(self, key: str, message: str) -> SpecError:
        full = ".".join(part for part in (self.section, key) if part)
        return SpecError(SpecProblem(self.path, excerpt(full, 80), message, self._line_of(full) if full else None))

    def _line_of(self, key: str) -> int | None:
        """Best effort: the line that writes ``key`` (``key =`` or a ``[...key]`` table header)."""
        last = re.escape(key.rsplit(".", 1)[-1])
        pattern = re.compile(rf"^\s*(\[[^\]]*\b{last}\s*\]|[\"']?{last}[\"']?\s*=)", re.MULTILINE)
        found = pattern.search(self.text)
        return self.text.count("\n", 0, found.start()) + 1 if found else None

    def path_value(self, key: str, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise self.problem(key, f"must be a folder path as a string (got {_shown(value)})")
        if "\x00" in value or len(value.encode("utf-8", "surrogateescape")) > 4096:
            raise self.problem(key, f"is not a usable path (got '{excerpt(value)}')")
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.path.parent / path


def _shown(value: Any) -> str:
    return f"'{excerpt(value)}'" if isinstance(value, str) else excerpt(value)


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(CONFIG_MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError(SpecProblem(path, "", f"cannot read the config file: {exc.strerror or exc}")) from None
    if len(data) > CONFIG_MAX_BYTES:
        raise SpecError(SpecProblem(path, "", f"the config file is larger than {CONFIG_MAX_BYTES // 1024} KiB"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"is not valid UTF-8 (byte 0x{data[exc.start]:02x}): save it as UTF-8"
        raise SpecError(SpecProblem(path, "", message, line)) from None


def _parse(path: Path) -> tuple[str, dict]:
    text = _read_text(path)
    try:
        return text, tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        reason = getattr(exc, "msg", None) or str(exc).split(" (at ")[0]
        line = getattr(exc, "lineno", None)
        raise SpecError(SpecProblem(path, "", f"invalid TOML: {excerpt(reason, 120)}", line)) from None


def _check(file: _ConfigFile, data: Any) -> Config:
    if not isinstance(data, dict):
        raise file.problem("", "must be a table")
    for key in data:
        if key not in CONFIG_KEYS:
            raise file.problem(key, f"unknown key (known: {', '.join(CONFIG_KEYS)})")
    workspace = file.path_value("workspace", data["workspace"]) if "workspace" in data else None
    registries = data.get("registries", {})
    if not isinstance(registries, dict):
        raise file.problem("registries", 'must be a table of NAME = "/path/to/registry" entries')
    paths = {str(name): file.path_value(f"registries.{name}", value) for name, value in registries.items()}
    image = data.get("mlflow_base_image")
    if image is not None and (not isinstance(image, str) or not image or any(ord(c) < 32 for c in image)):
        raise file.problem("mlflow_base_image", f"must be an image name as a string (got {_shown(image)})")
    for flag in ("slim", "bytecode"):
        if flag in data and not isinstance(data[flag], bool):
            raise file.problem(flag, f"must be true or false (got {_shown(data[flag])})")
    channels = data.get("conda_default_channels", list(DEFAULT_CONDA_CHANNELS))
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) and CHANNEL.match(c) for c in channels):
        raise file.problem("conda_default_channels", 'must be a list of conda channel names or URLs (e.g. ["conda-forge"])')
    allowed = data.get("allow_missing_libraries", [])
    if not isinstance(allowed, list) or not all(isinstance(a, str) and SONAME.match(a) for a in allowed):
        raise file.problem("allow_missing_libraries", f"must be a list of library names such as \"libfoo.so.1\" (got {_shown(allowed)})")
    compression = data.get("compression", "gzip")
    if compression not in COMPRESSIONS:
        raise file.problem("compression", f"must be one of {', '.join(repr(c) for c in COMPRESSIONS)} (got {_shown(compression)})")
    cache = data.get("cache")
    if cache is not None and (not isinstance(cache, str) or cache_problem(cache) is not None):
        raise file.problem("cache", f"{cache_problem(cache) if isinstance(cache, str) else 'must be a string'} (got {_shown(cache)})")
    cache_mode = data.get("cache_mode", "readwrite")
    if cache_mode not in CACHE_MODES:
        raise file.problem("cache_mode", f"must be one of {', '.join(repr(m) for m in CACHE_MODES)} (got {_shown(cache_mode)})")
    return Config(workspace=workspace, registries=paths, mlflow_base_image=image,
                  slim=data.get("slim", False), bytecode=data.get("bytecode", True),
                  conda_default_channels=tuple(channels), allow_missing_libraries=frozenset(allowed),
                  compression=compression, platforms=_platforms(file, data.get("platforms", [])),
                  cache=cache, cache_mode=cache_mode)  # fmt: skip


def _platforms(file: _ConfigFile, value: Any) -> tuple[Platform, ...]:
    """``platforms = ["linux/amd64", "linux/arm64"]``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise file.problem("platforms", f'must be a list such as ["linux/amd64", "linux/arm64"] (got {_shown(value)})')
    try:
        return parse_platforms(",".join(value)) if value else ()
    except ValueError as exc:
        raise file.problem("platforms", str(exc)) from None


def read_config(start: Path) -> Config:
    """``pkgc.toml`` or ``pyproject.toml [tool.pkgc]`` in ``start`` (the spec's folder)."""
    for candidate in (start / "pkgc.toml", start / "pyproject.toml"):
        if not candidate.is_file():
            continue
        text, data = _parse(candidate)
        if candidate.name == "pkgc.toml":
            return _check(_ConfigFile(candidate, text, ""), data)
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise _ConfigFile(candidate, text, "").problem("tool", "must be a table")
        if "pkgc" in tool:
            return _check(_ConfigFile(candidate, text, "tool.pkgc"), tool["pkgc"])
    return Config()


def config_dir_for(spec: str) -> Path:
    """The folder whose config applies to ``spec``: the real spec file's (links followed when they can be)."""
    try:
        return Path(spec).resolve().parent
    except (OSError, RuntimeError):  # a link loop: reading the spec will say so, naming it
        return Path(os.path.abspath(spec)).parent


def load_options(
    workspace: str | None = None, config_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Options:
    """Build Options from CLI values, then the environment, then config files, then defaults."""
    env = os.environ if environ is None else environ
    config = read_config(config_dir) if config_dir else Config()
    root = workspace or env.get("PKGC_WORKSPACE")
    return Options(
        workspace=Path(root).expanduser() if root else config.workspace or DEFAULT_WORKSPACE,
        cache_dir=Path(env.get("PKGC_CACHE_DIR") or DEFAULT_CACHE).expanduser(),
        registries=config.registries,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI"),
        mlflow_base_image=config.mlflow_base_image,
        docker_host=env.get("DOCKER_HOST") or None,
        source_date_epoch=_epoch(env.get("SOURCE_DATE_EPOCH")),
        slim=config.slim,
        bytecode=config.bytecode,
        conda_default_channels=config.conda_default_channels,
        allow_missing_libraries=config.allow_missing_libraries,
        compression=config.compression,
        platforms=config.platforms,
        cache=config.cache,
        cache_mode=config.cache_mode,
    )


def progress_mode(flag: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--progress``, else ``PKGC_PROGRESS``, else ``auto``; a value not in auto|tty|plain|json is bad input."""
    from compiler.progress.events import MODES

    env = os.environ if environ is None else environ
    value = flag or env.get("PKGC_PROGRESS") or "auto"
    if value not in MODES:
        raise SpecError(SpecProblem("PKGC_PROGRESS", "", f"'{excerpt(value)}' is not one of {'|'.join(MODES)}"))
    return value


def _epoch(text: str | None) -> int:
    """SOURCE_DATE_EPOCH as reproducible-builds.org defines it: a non-negative integer; unset: 0."""
    if not text:
        return 0
    if not text.strip().isdigit():
        raise SpecError(SpecProblem("SOURCE_DATE_EPOCH", "", f"'{text}' is not a number of seconds since 1970"))
    return int(text)
