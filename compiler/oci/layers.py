"""The layers pkgc adds on the base, in the plan's order: user, environment, runtime, model, inputs, code, sbom.

Each comes from the ImagePlan: the user from its uid (appended to the base's passwd/group), the
environment assembled on the host (cached by the lock's content), the others from the plan's
copies of its context files. Model layers are stored uncompressed: weights rarely compress."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from compiler.envbuild.bytecode import compile_site_packages
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.errors import BuildError
from compiler.oci.config import BuiltLayer
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


def user_layer(plan: ImagePlan, scan: BaseScan, store: OciStore, epoch: int) -> BuiltLayer:
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
    blob = write_layer(entries, store.blobs, epoch)
    layer = plan.layer("user")
    return BuiltLayer("user", layer.why if layer else f"user {user} ({uid})", blob)


def _append(text: str, line: str) -> str:
    return (text if not text or text.endswith("\n") else text + "\n") + line + "\n"


def environment_layer(plan: ImagePlan, scan: BaseScan, store: OciStore, options: LayerOptions, log: Log) -> BuiltLayer:
    """The venv, assembled on the host from the plan's wheels; reused while the lock is unchanged."""
    env = plan.environment
    if env is None or env.strategy != "venv" or not env.wheels or not env.requirements:
        raise BuildError("the OCI back end builds venv environments only; use --builder docker for the conda path")
    home = scan.python_home(options.python)
    if home is None:
        raise BuildError(f"the base image {plan.base.reference} has no python{options.python} on a bin path; "
                         "use --builder docker")  # fmt: skip
    requirements = next(f.data for f in plan.files if f.dest == env.requirements and f.data is not None)
    wheels = sorted((f for f in plan.files if f.dest.startswith(env.wheels + "/")), key=lambda f: f.dest)
    target = VenvTarget(env.prefix, options.python, home)
    key = hashlib.sha256(json.dumps([LAYER_FORMAT, requirements.decode(), [f.dest for f in wheels], asdict(target),
                                     options.bytecode, options.epoch]).encode()).hexdigest()  # fmt: skip
    cached = _cached_layer(store, key) if options.reuse else None
    why = layer.why if (layer := plan.layer("environment")) else "the locked environment"
    if cached is not None:
        log(f"environment layer reused ({cached.size / 1e6:.0f} MB, {cached.digest[:19]})")
        return BuiltLayer("environment", why, cached)
    store.root.mkdir(parents=True, exist_ok=True)  # staging beside the blobs: one file system, no copy across
    with tempfile.TemporaryDirectory(prefix="pkgc-venv-", dir=store.root) as staging:
        started = time.monotonic()
        root = assemble_venv([f.source for f in wheels if f.source is not None], target, Path(staging), workers=2, log=log)
        log(f"installed {len(wheels)} wheels into {env.prefix} on the host in {time.monotonic() - started:.1f} s")
        if options.bytecode:
            started = time.monotonic()
            site = Path(staging) / target.site_packages.lstrip("/")
            result = compile_site_packages(site, target.site_packages, options.python, workers=2)
            log(f"{result.note} in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        blob = write_layer(staging_entries(root, env.prefix), store.blobs, options.epoch)
        log(f"environment layer {blob.size / 1e6:.0f} MB written in {time.monotonic() - started:.1f} s")
    _remember_layer(store, key, blob)
    return BuiltLayer("environment", why, blob)


def _cached_layer(store: OciStore, key: str) -> LayerBlob | None:
    path = store.root / "layers" / f"{key}.json"
    if not path.is_file():
        return None
    try:
        blob = LayerBlob(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    return blob if store.blobs.has(blob.digest) else None


def _remember_layer(store: OciStore, key: str, blob: LayerBlob) -> None:
    folder = store.root / "layers"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.json.partial"
    tmp.write_text(json.dumps(asdict(blob)))
    tmp.replace(folder / f"{key}.json")


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
    plan: ImagePlan, store: OciStore, epoch: int, on_layer: Callable[[BuiltLayer], None] = lambda _layer: None
) -> list[BuiltLayer]:
    """The plan's layers of context copies (runtime, model, inputs, code, sbom), in the plan's order;
    model layers uncompressed (weights rarely compress). ``on_layer`` hears each as it is written."""
    layers = []
    for layer in plan.layers:
        if layer.kind in ("user", "environment"):
            continue
        entries = [e for copy in layer.copies for e in copy_entries(plan, copy)]
        blob = write_layer(entries, store.blobs, epoch, compress=layer.kind != "model")
        layers.append(BuiltLayer(layer.kind, layer.why, blob))
        on_layer(layers[-1])
    return layers
