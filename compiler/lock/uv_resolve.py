"""Resolve pip requirements for the image's platform with uv (``uv pip compile``), pip's faster peer.

uv reads neither pip's configuration nor its CA, so this module translates the host's pip settings
(``pip config list``: files and ``PIP_*`` variables) into uv's settings: index URLs, find-links,
constraints, trusted hosts; pip's ``cert`` becomes ``SSL_CERT_FILE`` for uv's process only (else
``--native-tls``: the system store). ``--no-config`` keeps any uv.toml out, so pip's settings alone
decide, as they do for pip. The host CA is used on the host and never reaches the image.

Index URLs may hold credentials (``https://user:token@host/simple``), so every setting that names a
place goes to uv through its environment (``UV_INDEX_URL``, ``UV_EXTRA_INDEX_URL``, ...), which only
its user and root can read (``/proc/PID/environ``), never through its command line, which anyone on
the host can read (``ps``, ``/proc/PID/cmdline``).

uv writes a PEP 751 ``pylock.toml`` listing every wheel of the chosen version compatible with the
platform; the wheel kept is the one pip would install: the best-ranked tag for the image's
interpreter (``packaging.tags``, the tags pip's ``--platform`` options give).

Anything uv cannot do as pip would (no uv, a platform uv does not know, a package published only as a
source distribution, a URL that is not a wheel, any uv failure) raises ``UvUnavailable`` with one line
saying why; the caller then resolves with pip, whose messages name a user's conflict.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from compiler.errors import LockError
from compiler.lock.types import LockedPackage, filename_from_url
from compiler.platform import AMD64, Platform

UV_MANYLINUX_MAX = 40  # uv's --python-platform knows <machine>-manylinux_2_17 .. _2_40
# pip settings (whitespace-separated lists, as pip reads them) by the uv variable they become and the
# separator uv splits that variable at
_UV_VARIABLES = {"index-url": ("UV_INDEX_URL", None), "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
                 "find-links": ("UV_FIND_LINKS", ","), "trusted-host": ("UV_INSECURE_HOST", " "),
                 "constraint": ("UV_CONSTRAINT", " ")}  # fmt: skip


class UvUnavailable(Exception):
    """uv cannot lock these requirements as pip would: the message is one line saying why."""


@dataclass(frozen=True)
class PipSettings:
    """The host's pip settings that decide where packages come from (``pip config list``)."""

    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, listing: str) -> PipSettings:
        """``section.key='value'`` lines; ``:env:`` (PIP_* variables) wins over ``install``, then ``global``."""
        rank = {"global": 0, "install": 1, ":env:": 2}
        chosen: dict[str, tuple[int, str]] = {}
        for line in listing.splitlines():
            name, sep, raw = line.partition("=")
            section, _, key = name.strip().rpartition(".")
            if not sep or section not in rank:
                continue
            try:
                value = ast.literal_eval(raw.strip())
            except (ValueError, SyntaxError):
                value = raw.strip().strip("'\"")
            if key not in chosen or rank[section] >= chosen[key][0]:
                chosen[key] = (rank[section], str(value))
        return cls({key: value for key, (_, value) in chosen.items()})

    @classmethod
    def from_host(cls) -> PipSettings:
        proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
        return cls.parse(proc.stdout if proc.returncode == 0 else "")

    def uv_args(self) -> list[str]:
        """uv's options that name no place (places, which may hold credentials, are in ``uv_env``)."""
        args: list[str] = []
        if self.values.get("no-index", "").lower() in ("1", "true", "yes", "on"):
            args.append("--no-index")
        if not self.values.get("cert"):
            args.append("--native-tls")  # the system store, as pip's truststore/certifi would
        return args

    def uv_env(self, environ: dict[str, str]) -> dict[str, str]:
        """uv's environment: pip's indexes, find-links, constraints and trusted hosts, its CA and proxy,
        for the resolve only; no UV_* setting of the user's changes where packages come from (pip's
        settings decide)."""
        env = {k: v for k, v in environ.items() if not k.startswith("UV_") or k in ("UV_CACHE_DIR",)}
        for key, (variable, separator) in _UV_VARIABLES.items():
            value = self.values.get(key, "").strip()
            if value:
                env[variable] = value if separator is None else separator.join(_list_item(i, separator) for i in value.split())
        if self.values.get("cert"):
            env["SSL_CERT_FILE"] = self.values["cert"]
        if self.values.get("proxy"):
            env["HTTPS_PROXY"] = env["HTTP_PROXY"] = self.values["proxy"]
        return env


def _list_item(item: str, separator: str) -> str:
    """``item`` as one element of a list uv splits at ``separator`` (pip's items hold no whitespace;
    a find-links place may hold a ','): percent-encoded, a local path as a ``file:`` URL."""
    if separator not in item:
        return item
    if "://" not in item:
        return Path(item).absolute().as_uri()  # as_uri percent-encodes ','
    return item.replace(separator, "%2C")


def uv_binary() -> str | None:
    """The uv executable pkgc installs with itself (the ``uv`` package), else one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def uv_platform(glibc_minor: int, platform: Platform = AMD64) -> str:
    """uv's ``--python-platform`` for ``platform`` with glibc 2.``glibc_minor``: ``aarch64-manylinux_2_28``."""
    if glibc_minor > UV_MANYLINUX_MAX:
        raise UvUnavailable(f"uv knows manylinux up to 2.{UV_MANYLINUX_MAX}, the base image has glibc 2.{glibc_minor}")
    return f"{platform.machine}-manylinux_2_{glibc_minor}"


def target_tags(python: str, glibc_minor: int, platform: Platform = AMD64) -> list[Tag]:
    """The tags pip accepts with pkgc's ``--platform`` options, best first (``pip debug --verbose`` order)."""
    platforms = platform.manylinux_tags(glibc_minor)
    version = tuple(int(part) for part in python.split(".")[:2])
    nodot = "".join(str(part) for part in version)
    return [*cpython_tags(version, [f"cp{nodot}"], platforms), *compatible_tags(version, f"cp{nodot}", platforms)]


def best_wheel(urls: list[str], ranks: dict[Tag, int]) -> str | None:
    """The URL of the wheel pip would pick for the target (lowest tag rank), None if none fits."""
    best, best_rank = None, len(ranks)
    for url in urls:
        try:
            _, _, _, tags = parse_wheel_filename(filename_from_url(url))
        except InvalidWheelFilename:
            continue
        rank = min((ranks[t] for t in tags if t in ranks), default=len(ranks))
        if rank < best_rank:
            best, best_rank = url, rank
    return best


def _file_url(entry: dict, base: Path) -> str:
    if entry.get("url"):
        return entry["url"]
    if entry.get("path"):
        return (base / entry["path"]).resolve().as_uri()
    raise UvUnavailable("uv named a file with neither url nor path")


def packages_from_pylock(
    text: str, python: str, glibc_minor: int, base: Path, platform: Platform = AMD64
) -> list[LockedPackage]:
    """The lock's packages from uv's pylock.toml: one wheel each, the one pip would install on ``platform``."""
    ranks = {tag: i for i, tag in enumerate(target_tags(python, glibc_minor, platform))}
    packages = []
    for item in tomllib.loads(text).get("packages", []):
        name, version = item["name"], item.get("version", "")
        entries = list(item.get("wheels") or [])
        if item.get("archive"):
            entries.append(item["archive"])
        by_url = {_file_url(e, base): e for e in entries}
        url = best_wheel(list(by_url), ranks)
        if url is None:
            raise UvUnavailable(f"uv found no wheel of {name} {version} for Python {python} on manylinux 2.{glibc_minor} {platform.machine}")
        sha256 = (by_url[url].get("hashes") or {}).get("sha256")
        if not sha256:
            raise UvUnavailable(f"uv gave no sha256 for {filename_from_url(url)}")
        if not version:
            version = parse_wheel_filename(filename_from_url(url))[1].public
        packages.append(LockedPackage(name=name, version=str(version), manager="pip", url=url,
                                      filename=filename_from_url(url), sha256=sha256))  # fmt: skip
    return sorted(packages, key=lambda p: p.name.lower())


def unsatisfiable_cause(stderr: str) -> str | None:
    """uv's reason when it proved the requirements unsatisfiable for a reason other than missing wheels
    (a source distribution pip may still build: that case goes on to pip), else None."""
    if "No solution found" not in stderr or "no usable wheels" in stderr or "source distribution" in stderr:
        return None
    causes = [line.strip().removeprefix("cause:").strip() for line in stderr.splitlines() if line.strip().startswith("cause:")]
    return (causes[0] if causes else _one_line(stderr))[:400]


def _one_line(stderr: str) -> str:
    lines = [l.strip() for l in stderr.strip().splitlines() if l.strip() and not l.lstrip().startswith("hint:")]
    return " | ".join(lines[:3])[:400] or "no message"


def resolve_with_uv(
    requirements: list[str], python: str, glibc_minor: int, settings: PipSettings | None = None,
    environ: dict[str, str] | None = None, platform: Platform = AMD64,
) -> list[LockedPackage]:
    """``requirements`` pinned to one hashed wheel each for ``platform`` by ``uv pip compile``
    (UvUnavailable: use pip)."""
    uv = uv_binary()
    if uv is None:
        raise UvUnavailable("uv is not installed")
    python_platform = uv_platform(glibc_minor, platform)
    settings = settings if settings is not None else PipSettings.from_host()
    with tempfile.TemporaryDirectory(prefix="pkgc-uv-") as name:
        tmp = Path(name)
        (tmp / "requirements.in").write_text("\n".join(requirements) + "\n")
        command = [
            uv, "pip", "compile", "--quiet", "--no-config", "--no-header", "--no-annotate",
            "--format", "pylock.toml", "-o", str(tmp / "pylock.toml"), "--generate-hashes",
            "--python-platform", python_platform, "--python-version", python, "--only-binary", ":all:",
            "--index-strategy", "unsafe-best-match", *settings.uv_args(), str(tmp / "requirements.in"),
        ]  # fmt: skip
        try:
            proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                                  env=settings.uv_env(dict(os.environ if environ is None else environ)))  # fmt: skip
        except OSError as exc:
            raise UvUnavailable(f"uv did not start: {exc}") from None
        if proc.returncode != 0 or not (tmp / "pylock.toml").exists():
            cause = unsatisfiable_cause(proc.stderr)
            if cause is not None:  # a conflict, a name or version the index does not have: pip cannot do better
                raise LockError(f"the pip requirements cannot be resolved for Python {python} on {platform}: {cause}")
            raise UvUnavailable(f"uv pip compile failed: {_one_line(proc.stderr)}")
        return packages_from_pylock((tmp / "pylock.toml").read_text(), python, glibc_minor, tmp, platform)
