"""The layers pkgc adds on the base, in the plan's order: user, environment, runtime, model, inputs, code, sbom.

Each comes from the ImagePlan: the user from its uid (appended to the base's passwd/group), the
environment (venv or conda) assembled on the host (cached by the lock's content), the others from the plan's
copies of its context files. Model layers are stored uncompressed: weights rarely compress."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from compiler.cache.owner import staging_dir
from compiler.envbuild.bytecode import compile_site_packages
from compiler.envbuild.libraries import Need, external_needs, fix_for, missing_from_base
from compiler.envbuild import slim as slim_module
from compiler.envbuild.slim import slim_environment
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.errors import BuildError, MissingLibraries
from compiler.oci.config import BuiltLayer
from compiler.oci.compress import Compression, cache_key
from compiler.oci.layer import Entry, LayerBlob, staging_entries, write_layer
from compiler.oci.scan import BaseScan
from compiler.oci.store import OciStore
from compiler.plan.types import Copy, ImagePlan
from compiler.workspace.walk import skip_caches, walk

LAYER_FORMAT = 2  # bump when the environment layer's content rules change (invalidates its cache)
Log = Callable[[str], None]


@dataclass(frozen=True)
class LayerOptions:
    epoch: int  # mtime of every entry (SOURCE_DATE_EPOCH or 0)
    python: str  # the image's Python major.minor
    bytecode: bool = True
    reuse: bool = True  # reuse a cached environment layer (--no-cache: assemble it again)
    pyc_cache: Path | None = None  # compiled files kept by source, in-image path and interpreter
    allow_missing: frozenset[str] = frozenset()  # sonames the environment may need that nothing here provides
    compression: Compression = "gzip"  # of every layer but the model's (--compression)


def user_layer(plan: ImagePlan, scan: BaseScan, store: OciStore, epoch: int, compression: Compression = "gzip") -> BuiltLayer:
    """The non-root user: its passwd/group lines appended to the base's, and its home folder."""
    user, uid = plan.config.user, plan.config.uid
    home = f"/home/{user}"
    passwd, group = scan.passwd, scan.group
    if not any(line.split(":")[0] == user for line in passwd.splitlines()):
        passwd = _append(passwd, f"{user}:x:{uid}:{uid}::{home}:/usr/sbin/nologin")
    if not any(line.split(":")[0] == user for line in group.splitlines()):
        group = _append(group, f"{user}:x:{uid}:")
    entries = [
        Entry("etc/passwd", "file", 0o644, data=passwd.encode()),
        Entry("etc/group", "file", 0o644, data=group.encode()),
        Entry(home.lstrip("/"), "dir", 0o750, uid=uid, gid=uid),
    ]
    blob = write_layer(entries, store.blobs, epoch, compression=compression)
    layer = plan.layer("user")
    return BuiltLayer("user", layer.why if layer else f"user {user} ({uid})", blob)


def _append(text: str, line: str) -> str:
    return (text if not text or text.endswith("\n") else text + "\n") + line + "\n"


def environment_layer(plan: ImagePlan, scan: BaseScan, store: OciStore, options: LayerOptions, log: Log) -> BuiltLayer:
    """The environment (a venv, or a conda environment), assembled on the host from the plan's
    files; reused while the lock is unchanged."""
    env = plan.environment
    if env is None or not env.wheels or not env.requirements:
        raise BuildError("the plan has no environment the OCI back end can assemble; use --builder docker")
    requirements = next(f.data for f in plan.files if f.dest == env.requirements and f.data is not None)
    wheels = sorted((f for f in plan.files if f.dest.startswith(env.wheels + "/")), key=lambda f: f.dest)
    wheels = [f for f in wheels if f.source is not None]  # not the NO-PIP-PACKAGES note of a conda plan
    if env.strategy == "conda":
        key_parts, assemble = _conda_assembly(plan, scan, options, [f.source for f in wheels], log)
    else:
        key_parts, assemble = _venv_assembly(plan, scan, options, [f.source for f in wheels], log)
    bytecode = options.bytecode and env.bytecode
    # absent when off: default builds keep their cache key; the rules' own digest, so a change to them rebuilds
    slim = [["slim", list(env.slim_keep), hashlib.sha256(Path(slim_module.__file__).read_bytes()).hexdigest()]] if env.slim else []
    key = hashlib.sha256(json.dumps([LAYER_FORMAT, requirements.decode(), [f.dest for f in wheels], *key_parts,
                                     bytecode, options.epoch, *slim, cache_key(options.compression)]).encode()).hexdigest()  # fmt: skip
    cached = _cached_layer(store, key) if options.reuse else None
    why = layer.why if (layer := plan.layer("environment")) else "the locked environment"
    if cached is not None:
        log(f"environment layer reused ({cached.size / 1e6:.0f} MB, {cached.digest[:19]})")
        check_libraries(plan, scan, _remembered_needs(store, key), options.allow_missing, options.python)
        return BuiltLayer("environment", why, cached)
    # staging beside the blobs (one file system, no copy across), named for this process: a killed
    # build's is removed by the next run (compiler/cache/use.py)
    with staging_dir(store.root, "pkgc-env-") as staging:
        started = time.monotonic()
        root = assemble(Path(staging))
        log(f"assembled the {env.strategy} environment at {env.prefix} on the host in {time.monotonic() - started:.1f} s")
        needs = external_needs(root, env.prefix)
        check_libraries(plan, scan, needs, options.allow_missing, options.python)
        if env.slim:
            started = time.monotonic()
            report = slim_environment(root, python=options.python, keep=env.slim_keep)
            log(f"{report.summary} in {time.monotonic() - started:.1f} s")
        if bytecode:
            started = time.monotonic()
            in_image = f"{env.prefix}/lib/python{options.python}/site-packages"
            result = compile_site_packages(Path(staging) / in_image.lstrip("/"), in_image, options.python, workers=2,
                                            cache=options.pyc_cache)  # fmt: skip
            log(f"{result.note} in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        blob = write_layer(staging_entries(root, env.prefix), store.blobs, options.epoch, compression=options.compression)
        log(f"environment layer {blob.size / 1e6:.0f} MB written in {time.monotonic() - started:.1f} s")
    _remember_layer(store, key, blob, needs)
    return BuiltLayer("environment", why, blob)


def check_libraries(
    plan: ImagePlan, scan: BaseScan, needs: list[Need] | None, allowed: frozenset[str], python: str | None = None
) -> None:
    """Every shared library the environment needs is in it, in the base, or the GPU driver's: else
    stop now, naming the package, the library and the fix (the server would die at start-up)."""
    missing = [n for n in missing_from_base(needs or [], frozenset(scan.libraries), python) if n.soname not in allowed]
    if missing:
        raise MissingLibraries([
            f"{', '.join(n.packages)} needs {n.soname} ({n.example}), which neither the environment nor the base "
            f"image {plan.base.reference} provides: {fix_for(n.soname)}" for n in missing
        ])  # fmt: skip


Assemble = Callable[[Path], Path]


def _python_home(plan: ImagePlan, scan: BaseScan, python: str) -> str:
    home = scan.python_home(python)
    if home is None:
        raise BuildError(f"the base image {plan.base.reference} has no python{python} on a bin path; use --builder docker")
    return home


def _venv_assembly(plan: ImagePlan, scan: BaseScan, options: LayerOptions, wheels: list[Path], log: Log) -> tuple[list, Assemble]:
    assert plan.environment is not None
    env = plan.environment
    target = VenvTarget(env.prefix, options.python, _python_home(plan, scan, options.python),
                        system_site_packages=env.system_site_packages)  # fmt: skip
    key = asdict(target)
    if not target.system_site_packages:
        del key["system_site_packages"]  # absent when off: existing layers keep their cache key
    return [key], lambda staging: assemble_venv(wheels, target, staging, workers=2, log=log)


def _conda_assembly(plan: ImagePlan, scan: BaseScan, options: LayerOptions, wheels: list[Path], log: Log) -> tuple[list, Assemble]:
    """Linked by py-rattler for the in-image prefix (``compiler.envbuild.conda``); keyed by the
    installer lock (every package's URL and sha256), the Python it runs on and rattler's version."""
    from importlib.metadata import version

    from compiler.envbuild.conda import CondaTarget, assemble_conda_env, locked_packages

    env = plan.environment
    assert env is not None and env.conda_lock and env.conda_channel
    lock = next((f.data for f in plan.files if f.dest == env.conda_lock and f.data is not None), None)
    if lock is None:
        raise BuildError(f"the plan has no {env.conda_lock} for the conda environment")
    channel = {f.dest.rsplit("/", 1)[1]: f.source for f in plan.files
               if f.dest.startswith(env.conda_channel + "/") and f.source is not None}  # fmt: skip
    python, has_python, packages = locked_packages(lock, channel)
    if python and python != options.python:
        raise BuildError(f"the conda lock is for Python {python}, the build for {options.python}")
    home = "" if has_python else _python_home(plan, scan, options.python)
    target = CondaTarget(env.prefix, options.python, home)
    key = [hashlib.sha256(lock).hexdigest(), asdict(target), version("py-rattler")]
    return key, lambda staging: assemble_conda_env(packages, wheels, target, staging, workers=2, log=log)


def _cached_layer(store: OciStore, key: str) -> LayerBlob | None:
    path = store.root / "layers" / f"{key}.json"
    if not path.is_file():
        return None
    try:
        blob = LayerBlob(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    return blob if store.blobs.has(blob.digest) else None


def _remember_layer(store: OciStore, key: str, blob: LayerBlob, needs: list[Need]) -> None:
    folder = store.root / "layers"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in ((f"{key}.needs.json", [asdict(n) for n in needs]), (f"{key}.json", asdict(blob))):
        tmp = folder / f".{name}.partial"
        tmp.write_text(json.dumps(data))
        tmp.replace(folder / name)


def _remembered_needs(store: OciStore, key: str) -> list[Need] | None:
    """The libraries a cached environment layer needs from outside it (None: recorded by an older pkgc)."""
    try:
        data = json.loads((store.root / "layers" / f"{key}.needs.json").read_text())
        return [Need(d["soname"], tuple(d["packages"]), d["example"]) for d in data]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def copy_entries(plan: ImagePlan, copy: Copy) -> list[Entry]:
    """The entries one COPY of context files puts at its destination; folders are read through the
    same walker as the Docker context (regular files and folders only, links inside the tree
    dereferenced, caches skipped), so both back ends package the same content."""
    entries: list[Entry] = []
    for item in plan.files:
        if item.dest != copy.src and not item.dest.startswith(copy.src + "/"):
            continue
        dest = copy.dest + item.dest[len(copy.src):]
        if item.data is not None:
            entries.append(Entry(dest, "file", 0o755 if item.executable else 0o644, data=item.data))
            continue
        assert item.source is not None
        for found in walk(item.source, ignore=skip_caches):
            path = f"{dest}/{found.rel}" if found.rel else dest
            if found.is_dir:
                entries.append(Entry(path, "dir", 0o755))
            else:
                entries.append(Entry(path, "file", 0o755 if item.executable or found.executable else 0o644, source=found.path))
    if not entries:
        raise BuildError(f"the plan copies {copy.src} but has no such context file")
    return entries


def copied_layers(
    plan: ImagePlan, store: OciStore, epoch: int, on_layer: Callable[[BuiltLayer], None] = lambda _layer: None,
    compression: Compression = "gzip",
) -> list[BuiltLayer]:
    """The plan's layers of context copies (runtime, model, inputs, code, sbom), in the plan's order;
    model layers uncompressed (weights rarely compress). ``on_layer`` hears each as it is written."""
    layers = []
    for layer in plan.layers:
        if layer.kind in ("user", "environment"):
            continue
        entries = [e for copy in layer.copies for e in copy_entries(plan, copy)]
        blob = write_layer(entries, store.blobs, epoch, compress=layer.kind != "model", compression=compression)
        layers.append(BuiltLayer(layer.kind, layer.why, blob))
        on_layer(layers[-1])
    return layers
