"""Bootstrap a Debian rootfs tarball with mmdebstrap, as an mmdebstrap recipe describes.

No container registry is involved: packages come from the apt mirror this host already uses
(read from /etc/apt), so the offline base image can be built wherever apt works. The output tar
is reproducible for a given mirror state: ``SOURCE_DATE_EPOCH`` comes from the recipe and the
host-specific /etc/resolv.conf and /etc/hostname are removed.

For another architecture (``linux/arm64`` on an x86 host) nothing of the target may run: mmdebstrap
downloads the same package set for that architecture and only unpacks it (``--variant=extract``), and
``compiler.baseimages.unpacked`` configures the tree on the host as an extract hook (no emulation, no
binfmt, no ``dpkg --add-architecture`` on the host).
"""

from __future__ import annotations

import collections
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compiler.baseimages.recipes import BaseImageRecipe, BootstrapSpec
from compiler.engines.base import LogSink
from compiler.errors import BuildError
from compiler.platform import Platform

APT_DIR = Path("/etc/apt")
HOOKS_DIR = Path("/usr/share/mmdebstrap/hooks")
STUB_PREFIX = "pkgc-stub-"
_TAIL_LINES = 25


@dataclass(frozen=True)
class Mirrors:
    """The archive URIs the rootfs is built from (``security`` is "" when not used)."""

    main: str
    security: str


def host_mirrors(spec: BootstrapSpec, apt_dir: Path = APT_DIR) -> Mirrors:
    """Resolve the recipe's "host" mirrors from this host's apt sources, else its fallbacks."""
    entries = _apt_sources(apt_dir)
    main = spec.mirror
    if main == "host":
        main = _pick(entries, spec.suite, "/debian") or spec.fallback_mirror
    security = spec.security_mirror
    if security == "host":
        security = _pick(entries, f"{spec.suite}-security", "/debian-security") or spec.fallback_security_mirror
    return Mirrors(main=main.rstrip("/"), security=security.rstrip("/"))


# what mmdebstrap's variants install, as apt patterns for the extract variant
VARIANT_PACKAGES = {
    "essential": ("?essential",),
    "required": ("?or(?essential,?priority(required))", "apt"),
    "minbase": ("?or(?essential,?priority(required))", "apt"),
}


def bootstrap_command(
    recipe: BaseImageRecipe,
    output: Path,
    mirrors: Mirrors,
    stub_debs: tuple[Path, ...] = (),
    platform: Platform | None = None,
) -> list[str]:
    """The mmdebstrap command line that writes the recipe's rootfs for ``platform`` (default: the
    host's) to the tarball ``output``; ``stub_debs`` are installed with dpkg after the essential
    packages, before the others (for another platform: unpacked with them)."""
    spec = _spec(recipe)
    platform = platform or Platform.host()
    components = " ".join(spec.components)
    foreign = platform != Platform.host()
    cmd = ["mmdebstrap", f"--mode={spec.mode}", f"--variant={'extract' if foreign else spec.variant}", "--format=tar"]
    if foreign:
        cmd.append(f"--architectures={platform.debian_arch}")
    cmd += [f"--hook-dir={hook_dir(name)}" for name in spec.hook_dirs]
    if foreign:
        cmd += _unpacked_options(recipe, stub_debs)
    else:
        for deb in stub_debs:
            cmd.append(f"--essential-hook=copy-in {deb} /tmp")
            inside = shlex.quote(f"/tmp/{deb.name}")
            cmd.append(f'--essential-hook=chroot "$1" dpkg --install {inside} && rm -f "$1"{inside}')
    if spec.packages:
        cmd.append("--include=" + ",".join(spec.packages))
    cmd += [f"--aptopt={opt}" for opt in spec.apt_options]
    cmd += [f"--dpkgopt=path-exclude={path}" for path in spec.dpkg_path_exclude]
    cmd += [f"--dpkgopt=path-include={path}" for path in spec.dpkg_path_include]
    if spec.remove and not foreign:
        # Paths were validated to hold no shell metacharacters but '*', which must glob here.
        cmd.append("--customize-hook=rm -rf " + " ".join(f'"$1"{path}' for path in spec.remove))
    sources = [f"deb {mirrors.main} {spec.suite} {components}"]
    for suite in spec.extra_suites:
        if suite.endswith("-security"):
            if mirrors.security:
                sources.append(f"deb {mirrors.security} {suite} {components}")
        else:
            sources.append(f"deb {mirrors.main} {suite} {components}")
    cmd += [spec.suite, str(output), *sources]
    return cmd


def _unpacked_options(recipe: BaseImageRecipe, stub_debs: tuple[Path, ...]) -> list[str]:
    """The extract variant's package set (the recipe variant's, as apt patterns), the stubs unpacked
    with it (apt reads them at the same path inside the rootfs), and the hook configuring the tree on
    the host with this interpreter (``compiler.baseimages.unpacked``: nothing of the target runs)."""
    spec = _spec(recipe)
    if spec.variant not in VARIANT_PACKAGES:
        raise BuildError(f"base image '{recipe.name}': variant '{spec.variant}' cannot be built for another "
                         f"architecture (pkgc unpacks {', '.join(VARIANT_PACKAGES)} there)")  # fmt: skip
    options = [f"--include={pattern}" for pattern in VARIANT_PACKAGES[spec.variant]]
    if "merged-usr" in spec.hook_dirs:  # its essential hook, which puts the real package in, does not run
        options.append("--include=usr-is-merged")
    hook = [sys.executable, "-m", "compiler.baseimages.unpacked", '"$1"', "--python", recipe.python or '""',
            "--epoch", str(spec.source_date_epoch)]  # fmt: skip
    for deb in stub_debs:
        options.append(f"--include={deb}")
        folder, path = shlex.quote(str(deb.parent)), shlex.quote(str(deb))
        options.append(f'--setup-hook=mkdir -p "$1"{folder} && cp {path} "$1"{path}')
        hook += ["--deb", shlex.quote(str(deb))]
    for path in spec.remove:  # validated: no shell metacharacters but '*', quoted for the hook to glob
        hook += ["--remove", shlex.quote(path)]
    options.append("--extract-hook=" + " ".join(a if a.startswith(('"', "'")) else shlex.quote(a) for a in hook))
    return options


def hook_dir(name: str) -> Path:
    """An mmdebstrap hook directory: ``name`` as a path if absolute, else under HOOKS_DIR."""
    return Path(name) if name.startswith("/") else HOOKS_DIR / name


def make_stub_deb(provides: str, directory: Path, source_date_epoch: int) -> Path:
    """Build an empty package ``pkgc-stub-<provides>`` that Provides ``provides`` (with dpkg-deb)."""
    name = f"{STUB_PREFIX}{provides}"
    root = directory / name
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\n"
        "Version: 1.0\n"
        "Architecture: all\n"
        "Multi-Arch: foreign\n"
        "Section: misc\n"
        "Priority: optional\n"
        "Maintainer: pkgc <pkgc@localhost>\n"
        f"Provides: {provides}\n"
        f"Description: pkgc stub satisfying dependencies on {provides}\n"
        f" pkgc base images never use the network, so {provides} itself is left out.\n",
        encoding="utf-8",
    )
    deb = directory / f"{name}_1.0_all.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(source_date_epoch))
    proc = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"cannot build the stub package {name}: {(proc.stderr or proc.stdout).strip()}")
    return deb


def bootstrap_rootfs(recipe: BaseImageRecipe, log: LogSink, workdir: Path | None = None, platform: Platform | None = None) -> Path:
    """Run mmdebstrap for ``recipe`` and ``platform`` (default: the host's) into ``workdir`` (a new
    temp dir if None; the caller removes it) streaming its output lines to ``log``; return the
    rootfs tarball's path."""
    platform = platform or Platform.host()
    spec = _spec(recipe)
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed; run scripts/ensure-engine.sh (installs it with apt)")
    if spec.mode == "root" and os.geteuid() != 0:
        raise BuildError(f"base image '{recipe.name}' bootstraps in mmdebstrap mode 'root'; run pkgc as root")
    for name in spec.hook_dirs:
        if not hook_dir(name).is_dir():
            raise BuildError(f"mmdebstrap hook directory {hook_dir(name)} is missing (recipe '{recipe.name}')")
    directory = workdir or Path(tempfile.mkdtemp(prefix="pkgc-base-"))
    output = directory / f"{recipe.name}-{platform.architecture}.tar"
    mirrors = host_mirrors(spec)
    stubs = tuple(make_stub_deb(pkg, directory, spec.source_date_epoch) for pkg in spec.stub_packages)
    cmd = bootstrap_command(recipe, output, mirrors, stubs, platform)
    how = spec.variant if platform == Platform.host() else f"{spec.variant}'s packages unpacked, configured on the host"
    log(f"bootstrapping {recipe.name} for {platform} from {mirrors.main} ({spec.suite}, {how}) with mmdebstrap")
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(spec.source_date_epoch), LC_ALL="C.UTF-8")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("APT_CONFIG", None)
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        raise BuildError(f"cannot run mmdebstrap: {exc}") from None
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log(line)
    if proc.returncode != 0 or not output.is_file():
        last = "\n".join(tail) or "(no output)"
        raise BuildError(f"mmdebstrap failed for base image '{recipe.name}' (exit {proc.returncode}):\n{last}")
    return output


def _spec(recipe: BaseImageRecipe) -> BootstrapSpec:
    if recipe.bootstrap is None:
        raise BuildError(f"base image '{recipe.name}' is kind '{recipe.kind}', not bootstrapped with mmdebstrap")
    return recipe.bootstrap


@dataclass(frozen=True)
class _Source:
    uris: tuple[str, ...]
    suites: tuple[str, ...]


def _apt_sources(apt_dir: Path) -> list[_Source]:
    """Enabled binary ("deb") sources from sources.list, *.list and deb822 *.sources files."""
    found: list[_Source] = []
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        for line in _read(path).splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2:
                found.append(_Source((words[0],), (words[1],)))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in _deb822(_read(path)):
            if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes").lower() == "no":
                continue
            found.append(_Source(tuple(stanza.get("uris", "").split()), tuple(stanza.get("suites", "").split())))
    return found


def _pick(sources: list[_Source], suite: str, path_suffix: str) -> str | None:
    """The URI serving ``suite``; failing that, any http(s) URI whose path ends in ``path_suffix``."""
    for source in sources:
        if suite in source.suites:
            for uri in source.uris:
                if uri.startswith(("http://", "https://")):
                    return uri
    for source in sources:
        for uri in source.uris:
            if uri.startswith(("http://", "https://")) and uri.rstrip("/").endswith(path_suffix):
                return uri
    return None


def _deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
            continue
        if raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
