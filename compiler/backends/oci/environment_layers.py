"""The environment's layers (OCI back end): the venv or conda environment, assembled on the host, in a
few layers by what changes together (``compiler.envbuild.layer_groups``: CUDA libraries, torch, other
big distributions, then the rest).

Two caches. The whole environment's key (the lock, the target, the options) names the list of its
layers: an unchanged lock assembles nothing. Each layer's key names its blob, so a lock change writes
(and an engine or registry receives) only the layers whose content changed; the others keep their
digests. For a venv (no ``--slim``) a layer's key is made of its inputs before anything is installed:
its wheels (file name and locked sha256), the paths it shares with other groups, the target and the
options; a group whose layer is cached is not even installed (its ELF facts are remembered, so the
library check still sees the whole environment). A conda environment, or a slimmed one (slim looks
across distributions), is assembled whole and each layer keyed by what it holds: its distributions'
records (pip ``RECORD``: a sha256 per file; ``conda-meta``) and its files' paths, modes and links.
"The rest" (scaffolding, shared files, small distributions) is also keyed by the whole environment."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compiler.cache.owner import staging_dir
from compiler.envbuild import slim as slim_module
from compiler.backends.oci.base_python import SandboxCompiler, make_compiler, plan_compiler
from compiler.envbuild.bytecode import COMPILER, CompileFailed, compile_site_packages
from compiler.envbuild.layer_groups import (REST, LayerGroup, canonical, file_owners, group_distributions, installed_sizes,
                                            shared_paths, wheel_facts)  # fmt: skip
from compiler.envbuild.libraries import ElfScan, Need, needs_of, scan_elf
from compiler.envbuild.slim import slim_environment
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.errors import BuildError
from compiler.backends.oci.config import BuiltLayer
from compiler.backends.oci.environment_split import group_of_file, split_entries
from compiler.oci.base import BaseImage
from compiler.oci.compress import cache_key
from compiler.oci.layer import Entry, LayerBlob, staging_entries, write_layer
from compiler.backends.oci.layers import LayerOptions, check_libraries
from compiler.backends.oci.scan import BaseScan
from compiler.oci.store import OciStore
from compiler.plan.types import ContextFile, ImagePlan

if TYPE_CHECKING:
    from compiler.cache.registry_cache import RegistryCache

ENV_FORMAT = 3  # bump when the environment layers' content or split rules change (invalidates their caches)
Log = Callable[[str], None]
Assemble = Callable[[Path, list[Path]], Path]  # (staging, the wheels to install) -> the environment's root


@dataclass(frozen=True)
class EnvLayer:
    """One environment layer as remembered: its group's name, its members, its key and blob."""

    group: str
    members: tuple[str, ...]
    key: str
    blob: LayerBlob


@dataclass(frozen=True)
class PlannedGroup:
    """A venv's layer group known before installing: its key, its wheels, and whether it shares a
    path with another group (then it is always installed: the rest holds that path)."""

    group: LayerGroup
    key: str
    wheels: tuple[Path, ...]
    entangled: bool


def environment_layers(
    plan: ImagePlan, scan: BaseScan, store: OciStore, options: LayerOptions, log: Log,
    on_layer: Callable[[BuiltLayer], None] = lambda _layer: None, base: BaseImage | None = None,
) -> list[BuiltLayer]:
    """The environment's layers, in layer order (the big, rarely changing groups first, the rest last);
    their byte-code compiled by ``base``'s own Python where it can (``base_python``)."""
    env = plan.environment
    if env is None or not env.wheels or not env.requirements:
        raise BuildError("the plan has no environment the OCI back end can assemble; use --builder docker")
    requirements = next(f.data for f in plan.files if f.dest == env.requirements and f.data is not None)
    wheels = sorted((f for f in plan.files if f.dest.startswith(env.wheels + "/")), key=lambda f: f.dest)
    wheels = [f for f in wheels if f.source is not None]  # not the NO-PIP-PACKAGES note of a conda plan
    if env.strategy == "conda":
        target_key, assemble = _conda_assembly(plan, scan, options, log)
    else:
        target_key, assemble = _venv_assembly(plan, scan, options, log)
    bytecode = options.bytecode and env.bytecode
    compiling = plan_compiler(scan, options.python, plan.platform, options.cache_dir, base)
    # absent when off: the rules' own digest, so a change to them rebuilds
    slim = [["slim", list(env.slim_keep), hashlib.sha256(Path(slim_module.__file__).read_bytes()).hexdigest()]] if env.slim else []
    common = [ENV_FORMAT, str(plan.platform), *target_key, bytecode, (compiling.identity or COMPILER).hex() if bytecode else "", options.epoch, *slim,
              cache_key(options.compression)]  # fmt: skip
    key = _digest([requirements.decode(), [f.dest for f in wheels], *common])
    why = layer.why if (layer := plan.layer("environment")) else "the locked environment"
    remembered = _remembered_environment(store, key) if options.reuse else None
    if remembered is None and options.reuse and options.cache is not None:
        remembered = _cached_environment(options.cache, key)
    elif remembered is not None and options.cache is not None:
        _offer_environment(options.cache, store, key, *remembered)
    if remembered is not None:
        layers, needs = remembered
        log(f"environment layers reused ({len(layers)}, {sum(l.blob.size for l in layers) / 1e6:.0f} MB)")
        check_libraries(plan, scan, needs, options.allow_missing, options.python)
        built = [_built(layer, why, len(layers)) for layer in layers]
        for item in built:
            on_layer(item)
        return built
    planned = _planned_groups(wheels, requirements.decode(), common) if env.strategy == "venv" and not env.slim else None
    skipped = _skippable(store, planned, options.cache) if planned is not None and options.reuse else {}
    not_installed = {wheel for p in planned or [] if p.group.name in skipped for wheel in p.wheels}
    install = [f.source for f in wheels if f.source is not None and f.source not in not_installed]
    # staging beside the blobs (one file system, no copy across), named for this process: a killed
    # build's is removed by the next run (compiler/cache/use.py)
    with staging_dir(store.root, "pkgc-env-") as staging:
        started = time.monotonic()
        root = assemble(Path(staging), install)
        kept = f" ({', '.join(skipped)}: cached, not installed)" if skipped else ""
        log(f"assembled the {env.strategy} environment at {env.prefix} on the host in {time.monotonic() - started:.1f} s{kept}")
        elf = scan_elf(root, env.prefix, plan.platform)  # an ELF file of another machine is refused
        needs = needs_of([elf, *(scan for _layer, scan in skipped.values())], env.prefix)
        check_libraries(plan, scan, needs, options.allow_missing, options.python)
        if env.slim:
            started = time.monotonic()
            report = slim_environment(root, python=options.python, keep=env.slim_keep)
            log(f"{report.summary} in {time.monotonic() - started:.1f} s")
        if bytecode:
            started = time.monotonic()
            in_image = f"{env.prefix}/lib/python{options.python}/site-packages"
            site = Path(staging) / in_image.lstrip("/")
            compiler = make_compiler(compiling, store, base, plan.platform, options.cache_dir, site, in_image) if base else None
            try:
                result = compile_site_packages(site, in_image, options.python, workers=2, cache=options.pyc_cache, compiler=compiler)
            except CompileFailed as exc:
                raise BuildError(f"compiling the environment's byte-code: {exc}; build with --no-bytecode to ship none") from None
            finally:
                if isinstance(compiler, SandboxCompiler):
                    compiler.close()
            log(f"{result.note} by {compiling.why} in {time.monotonic() - started:.1f} s")
        owners = file_owners(root)
        groups = [p.group for p in planned] if planned is not None else group_distributions(installed_sizes(root, owners))
        keys = {p.group.name: p.key for p in planned or []}
        split = dict((group.name, entries) for group, entries in split_entries(staging_entries(root, env.prefix), env.prefix, owners, groups))
        identities = _identities(root, owners, [f.dest.rsplit("/", 1)[1] for f in wheels]) if planned is None else {}
        group_of = {member: group.name for group in groups for member in group.members}
        count = len([g for g in groups if g.name in skipped or g.name in split])
        layers: list[EnvLayer] = []
        for group in groups:
            if group.name in skipped and group.name in split:  # its wheels were not installed: nothing can be its
                raise BuildError(f"environment layer {group.name}: files of a group that was not installed")
            if group.name in skipped:
                layers.append(skipped[group.name][0])
                log(f"environment layer {group.name} reused ({layers[-1].blob.size / 1e6:.0f} MB, {layers[-1].blob.digest[:19]})")
            elif group.name in split:
                entries = split[group.name]
                members = [[m, identities.get(m, "")] for m in group.members]
                group_key = keys.get(group.name) or _digest([*common, group.name, members, _listing(entries)])
                if group.name == REST:
                    group_key = _digest([group_key, key, _listing(entries)])
                layers.append(_write_group(store, group, group_key, entries, options, log))
                if group.name in keys and group.name != REST:  # what a build that skips installing it checks
                    part = elf.part(lambda rel, name=group.name: group_of_file(rel, owners, group_of) == name).open_needs()
                    record = {"digest": layers[-1].blob.digest, "elf": part.as_json()}  # kept by pkgc cache prune with its blob
                    _write_record(store.root / "layers", f"{group_key}.elf.json", record)
            else:
                continue
            on_layer(_built(layers[-1], why, count))
    _remember_environment(store, key, layers, needs)
    if options.cache is not None:
        _offer_environment(options.cache, store, key, layers, needs)
    return [_built(layer, why, len(layers)) for layer in layers]


def _planned_groups(wheels: list[ContextFile], requirements: str, common: list) -> list[PlannedGroup]:
    """A venv's groups and their keys from its wheels, before installing: a group's key is its wheels
    (file name and the lock's line, which holds the sha256), the paths it shares with other groups
    (they go in the rest) and ``common`` (target, options); the rest's is completed once installed."""
    facts = {f.source: wheel_facts(f.source) for f in wheels if f.source is not None}
    groups = group_distributions({w.name: w.size for w in facts.values()})
    group_of = {member: group.name for group in groups for member in group.members}
    shared = shared_paths(list(facts.values()), group_of)
    lines = {canonical(line.split("==", 1)[0].strip()): line.strip() for line in requirements.splitlines() if "==" in line}
    planned = []
    for group in groups:
        mine = [(source, w) for source, w in facts.items() if group_of.get(w.name) == group.name]
        inputs = [[w.file, lines.get(w.name) or _file_digest(source)] for source, w in mine]
        key = _digest([*common, "planned", group.name, inputs, shared.get(group.name, [])])
        planned.append(PlannedGroup(group, key, tuple(source for source, _w in mine), group.name in shared))
    return planned


def _skippable(store: OciStore, planned: list[PlannedGroup], cache: "RegistryCache | None" = None) -> dict[str, tuple[EnvLayer, ElfScan]]:
    """The planned groups (not the rest) whose layer and ELF facts are cached (here, or in the shared
    build ``cache``) and that share no path with another group: they need not be installed."""
    skipped = {}
    for p in planned:
        if p.group.name == REST or p.entangled:
            continue
        blob = _cached_blob(store, p.key)
        try:
            elf = ElfScan.from_json(_read_json(store.root / "layers" / f"{p.key}.elf.json", 1 << 20)["elf"])
        except (OSError, ValueError, KeyError, TypeError):
            blob = None
        if blob is None and cache is not None:
            blob, elf = _cached_group(cache, p.key)
        if blob is not None:
            skipped[p.group.name] = (EnvLayer(p.group.name, p.group.members, p.key, blob), elf)
    return skipped


def _cached_group(cache: "RegistryCache", key: str) -> tuple[LayerBlob | None, ElfScan]:
    """A planned group's layer and ELF facts from the shared build cache, or (None, _)."""
    entry = cache.find(key)
    if entry is None or len(entry.layers) != 1 or "elf" not in entry.facts:
        return None, ElfScan()
    try:
        return entry.layers[0], ElfScan.from_json(entry.facts["elf"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise cache.bad(key, "its ELF facts are not readable") from None


def _cached_environment(cache: "RegistryCache", key: str) -> tuple[list[EnvLayer], list[Need]] | None:
    """A whole environment from the shared build cache: its groups' layers (by descriptor) and needs."""
    entry = cache.find(key)
    if entry is None:
        return None
    try:
        data = entry.facts["environment"]
        needs = [Need(str(d["soname"]), tuple(str(p) for p in d["packages"]), str(d["example"])) for d in data["needs"]]
        groups = data["layers"]
        if len(groups) != len(entry.layers):
            raise ValueError("its groups and layers differ in number")
        layers = [EnvLayer(str(g["group"]), tuple(str(m) for m in g["members"]), str(g["key"]), blob) for g, blob in zip(groups, entry.layers)]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise cache.bad(key, "its environment record is not readable") from None
    return layers, needs


def _offer_environment(cache: "RegistryCache", store: OciStore, key: str, layers: list[EnvLayer], needs: list[Need]) -> None:
    """Each group's layer (with its ELF facts when kept), then the whole environment, to the cache."""
    for layer in layers:
        try:
            facts = {"elf": _read_json(store.root / "layers" / f"{layer.key}.elf.json", 1 << 20)["elf"]}
        except (OSError, ValueError, KeyError, TypeError):
            facts = {}
        cache.offer(layer.key, [layer.blob], facts)
    record = {"layers": [{"group": l.group, "members": list(l.members), "key": l.key} for l in layers], "needs": [asdict(n) for n in needs]}
    cache.offer(key, [l.blob for l in layers], {"environment": record})


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _identities(root: Path, owners: dict[str, set[str]], wheel_names: list[str]) -> dict[str, str]:
    """Canonical distribution name -> what its installed files are made of: the sha256 of its record
    (pip ``RECORD``: a sha256 per file; conda: its ``conda-meta`` JSON) and its wheel's file name."""
    wheels: dict[str, list[str]] = {}
    for name in wheel_names:
        wheels.setdefault(canonical(name.split("-", 1)[0]), []).append(name)
    found: dict[str, list[str]] = {}
    for rel, names in owners.items():
        is_record = rel.endswith(".dist-info/RECORD") or (rel.startswith("conda-meta/") and rel.endswith(".json"))
        if is_record and len(names) == 1 and (root / rel).is_file():
            name = next(iter(names))
            found.setdefault(name, []).append(f"{rel}={_file_digest(root / rel)}")
    return {name: " ".join(sorted(parts) + wheels.get(name, [])) for name, parts in found.items()}


def _listing(entries: list[Entry]) -> list[list]:
    return sorted([e.path, e.kind, e.mode, e.target] for e in entries)


def _write_group(store: OciStore, group: LayerGroup, key: str, entries: list[Entry], options: LayerOptions, log: Log) -> EnvLayer:
    cached = _cached_blob(store, key) if options.reuse else None
    if cached is None and options.reuse and options.cache is not None:
        found = options.cache.find(key)
        cached = found.layers[0] if found is not None and len(found.layers) == 1 else None
    if cached is not None:
        log(f"environment layer {group.name} reused ({cached.size / 1e6:.0f} MB, {cached.digest[:19]})")
        return EnvLayer(group.name, group.members, key, cached)
    started = time.monotonic()
    blob = write_layer(entries, store.blobs, options.epoch, compression=options.compression)
    log(f"environment layer {group.name} {blob.size / 1e6:.0f} MB written in {time.monotonic() - started:.1f} s")
    _write_record(store.root / "layers", f"{key}.json", asdict(blob))
    return EnvLayer(group.name, group.members, key, blob)


def _built(layer: EnvLayer, why: str, count: int) -> BuiltLayer:
    if count == 1:
        return BuiltLayer("environment", why, layer.blob)
    shown = ", ".join(layer.members[:3]) + (f" and {len(layer.members) - 3} more" if len(layer.members) > 3 else "")
    what = f"{layer.group}: {shown}" if layer.group != REST or not shown else f"the rest: {len(layer.members)} distributions"
    return BuiltLayer("environment", f"{why} ({what})", layer.blob)


def _digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _python_home(plan: ImagePlan, scan: BaseScan, python: str) -> str:
    home = scan.python_home(python)
    if home is None:
        raise BuildError(f"the base image {plan.base.reference} has no python{python} on a bin path; use --builder docker")
    return home


def _venv_assembly(plan: ImagePlan, scan: BaseScan, options: LayerOptions, log: Log) -> tuple[list, Assemble]:
    assert plan.environment is not None
    env = plan.environment
    target = VenvTarget(env.prefix, options.python, _python_home(plan, scan, options.python),
                        system_site_packages=env.system_site_packages)  # fmt: skip
    key = asdict(target)
    if not target.system_site_packages:
        del key["system_site_packages"]
    return [key], lambda staging, wheels: assemble_venv(wheels, target, staging, workers=2, log=log)


def _conda_assembly(plan: ImagePlan, scan: BaseScan, options: LayerOptions, log: Log) -> tuple[list, Assemble]:
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
    python, has_python, packages = locked_packages(lock, channel, plan.platform)
    if python and python != options.python:
        raise BuildError(f"the conda lock is for Python {python}, the build for {options.python}")
    home = "" if has_python else _python_home(plan, scan, options.python)
    target = CondaTarget(env.prefix, options.python, home)
    # the lock's digest only in the whole environment's key: a layer's key has its packages' records
    key = [{"lock": hashlib.sha256(lock).hexdigest()}, asdict(target), version("py-rattler")]
    return key, lambda staging, wheels: assemble_conda_env(packages, wheels, target, staging, workers=2, log=log,
                                                           platform=plan.platform)  # fmt: skip


def _cached_blob(store: OciStore, key: str) -> LayerBlob | None:
    path = store.root / "layers" / f"{key}.json"
    try:
        blob = LayerBlob(**_read_json(path, 1 << 20))
    except (OSError, ValueError, TypeError):
        return None
    return blob if store.blobs.has(blob.digest) else None


def _read_json(path: Path, limit: int):
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is over {limit} bytes")
    return json.loads(data)


def _write_record(folder: Path, name: str, data: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.partial"
    tmp.write_text(json.dumps(data))
    tmp.replace(folder / name)


def _remember_environment(store: OciStore, key: str, layers: list[EnvLayer], needs: list[Need]) -> None:
    """The whole environment's record: its layers' keys (each layer's own record names its blob, which
    keeps it from ``pkgc cache prune``) and the libraries it needs from outside."""
    record = {"layers": [{"group": l.group, "members": list(l.members), "key": l.key} for l in layers],
              "needs": [asdict(n) for n in needs], "digest": layers[-1].blob.digest}  # pkgc cache prune: kept with it  # fmt: skip
    _write_record(store.root / "layers", f"{key}.environment.json", record)


def _remembered_environment(store: OciStore, key: str) -> tuple[list[EnvLayer], list[Need]] | None:
    """A cached environment's layers and needs; None when a record or a blob is missing or unreadable."""
    try:
        data = _read_json(store.root / "layers" / f"{key}.environment.json", 1 << 20)
        needs = [Need(d["soname"], tuple(d["packages"]), d["example"]) for d in data["needs"]]
        layers = []
        for item in data["layers"]:
            blob = _cached_blob(store, item["key"])
            if blob is None:
                return None
            layers.append(EnvLayer(str(item["group"]), tuple(item["members"]), str(item["key"]), blob))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (layers, needs) if layers else None
