"""Run the compiler's stages in order: ``compile()`` (spec -> resolve -> deps/merge -> strategy ->
lock -> fetch -> base -> plan), ``build(plan, backend)`` -> BuiltImage, then the record; ``ship()``
(compiler/ship.py) verifies and publishes. ``emit`` stops after a stage and returns its IR as text.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compiler.backends import Backend, choose_backend
from compiler.built import BuiltImage
from compiler.compiled import Compiled, Resolved
from compiler.request import BuildRequest
from compiler.deps.base_packages import conflicts as base_conflicts
from compiler.deps.conda_file import parse_conda_file
from compiler.deps.merge import DEFAULT_CHANNELS, merge
from compiler.deps.python_override import override_python
from compiler.servers.pins import describe_server, server_depset
from compiler.deps.types import DepSet, MergedEnvironment
from compiler.engines.base import Engine
from compiler.envbuild.choices import apply_environment_choices
from compiler.environment.strategy import EnvironmentStrategy, choose_strategy
from compiler.errors import EngineUnavailable, LockError, ResolveError, SpecError
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.lock.locker import LockResult, load_or_lock
from compiler.lock.lock_memo import FOLDER as LOCKS_READ
from compiler.labels import SBOM_DIGEST
from compiler.lock.lockfile import read_lock
from compiler.lock.types import Lock
from compiler.mlflow.deps import mlflow_depsets
from compiler.mlflow.versions import version_drift
from compiler.options import Options
from compiler.platform import Platform
from compiler.backends.oci.model_image import ModelImage, package_model_image
from compiler.plan import ContextFile, ImagePlan, plan_image
from compiler.reporter import Reporter
from compiler.resolve import ResolvedPackage, resolve_package
from compiler.resolve.baseimage import base_image_facts
from compiler.result import BuildResult
from compiler.sbom.collect import DRAFTS as SBOM_DRAFTS
from compiler.sbom.collect import sbom_context_file
from compiler.spec import load_package_spec
from compiler.spec.load import SpecFile
from compiler.spec.model import ModelMode
from compiler.workspace import EnvironmentRecord, Workspace
from compiler.workspace.records import PackageInfo



def lock_path_for(spec_path: Path, explicit: Path | None) -> Path:
    """``package.yml`` is locked in ``package.conda-lock.yml`` beside it, unless told otherwise."""
    return explicit or spec_path.with_name(f"{spec_path.stem}.conda-lock.yml")


def package_lock_path(spec_path: Path, explicit: Path | None, pkg: ResolvedPackage, workspace_root: Path) -> Path:
    """Where the package's lock goes: beside the spec, unless that is inside the model's or the code's
    own folder (a YAML beside its model, ``model: {path: .}``): the lock would change the very tree it
    packages, so it goes to the workspace (``locks/<target>/``) instead. ``--lock-file`` wins."""
    path = lock_path_for(spec_path, explicit)
    if explicit is not None:
        return path
    folders = [Path(pkg.model.reference)] + ([pkg.code.directory] if pkg.code is not None else [])
    for folder in folders:
        try:
            if folder.is_dir() and path.resolve().is_relative_to(folder.resolve()):
                return workspace_root / "locks" / pkg.target_name / path.name
        except (OSError, RuntimeError, ValueError):
            continue
    return path


def collect_depsets(pkg: ResolvedPackage, default_channels: tuple[str, ...] = DEFAULT_CHANNELS) -> list[DepSet]:
    """Every source of dependencies: the base environment's conda file, the MLflow model's own
    requirements (and what serving it needs) unless the spec brings both environment and scoring
    script, then the inference server."""
    depsets = []
    if pkg.environment and pkg.environment.conda_file:
        depsets.append(parse_conda_file(pkg.environment.conda_file, pkg.environment.conda_label))
    if pkg.mlflow is not None and pkg.mlflow_environment:
        label = f"{pkg.model.name}:{pkg.model.version}"
        trusted = tuple(dict.fromkeys(default_channels + tuple(c for d in depsets for c in d.channels)))
        depsets.extend(mlflow_depsets(pkg.mlflow, label, trusted))
    depsets.append(server_depset(pkg.server, depsets))
    return depsets


def describe_merged(merged: MergedEnvironment, strategy: EnvironmentStrategy | None) -> str:
    lines = [f"channels: {', '.join(merged.channels) or '(none)'}"]
    for dep in merged.conda + merged.pip:
        lines.append(f"{dep.manager:<5} {dep.name}{dep.specifier or ''}    <- {'; '.join(dep.sources)}")
    if strategy:
        lines.append(f"strategy: {strategy.kind} (Python {strategy.python}): {strategy.reason}")
    return "\n".join(lines) + "\n"


def image_repository(target_name: str) -> str:
    return "pkgc/" + re.sub(r"[^a-z0-9._-]", "-", target_name.lower())


def _provisional_version(pkg: ResolvedPackage, workspace: Workspace) -> str:
    """The version a build would take now (for ``--emit``, which reserves nothing)."""
    if pkg.target_version is not None:
        return pkg.target_version
    existing = [r.version for r in workspace.list_environments() if r.name == pkg.target_name]
    return str(max((int(v) for v in existing if v.isdigit()), default=0) + 1)


def _reserve_version(pkg: ResolvedPackage, workspace: Workspace) -> str:
    try:
        return workspace.reserve_environment_version(pkg.target_name, pkg.target_version)
    except ResolveError as exc:
        if pkg.target_version is None:
            raise
        raise ResolveError(f"{pkg.spec_path}: target_environment_version: {exc}") from None


def load_spec(request: BuildRequest, reporter: Reporter) -> SpecFile:
    spec_file = load_package_spec(request.spec_path, request.target_environment, request.overrides)
    if spec_file.deployment is not None and spec_file.deployment.ignored:
        reporter.warn(f"{spec_file.path.name}: ignored (no meaning for a container image): {', '.join(spec_file.deployment.ignored)}")
    return spec_file


def emit_spec(spec_file: SpecFile) -> str:
    emitted = spec_file.spec.model_dump(mode="json", by_alias=True)
    if spec_file.deployment is not None:
        emitted["x-pkgc-deployment"] = spec_file.deployment.summary()
    return json.dumps(emitted, indent=2) + "\n"


def resolve(spec_file: SpecFile, request: BuildRequest, options: Options, connect: Callable[[], Engine], reporter: Reporter) -> Resolved:
    """spec -> model, base environment, server -> merged dependencies -> environment strategy and back end."""
    reporter.step(f"resolving {spec_file.path.name}")
    pkg = resolve_package(spec_file, request.model, Workspace.with_digests(options.workspace, options.cache_dir), options, request.base_image)
    reporter.detail(f"model {pkg.model.name}:{pkg.model.version} ({pkg.model.type}) from {pkg.model.reference}")
    if pkg.mlflow is not None and pkg.mlflow.serving_example_note:
        reporter.detail(f"{pkg.mlflow.serving_example_note}: verify needs --request-file to score it")
    depsets = collect_depsets(pkg, options.conda_default_channels)
    if request.python_version:
        depsets, note = override_python(depsets, request.python_version)
        if note:
            reporter.warn(note)
    merged = merge(depsets, options.conda_default_channels)
    engine = connect() if request.builder == "docker" else _engine_if_any(connect)
    facts = _base_facts(pkg.environment.image, engine, options)
    strategy = choose_strategy(merged, facts, conda_available=_conda_path_available())
    platforms = request.platforms or options.platforms or (Platform.host(),)
    backend = choose_backend(request, strategy, pkg.environment.image, platforms, engine, connect, options, reporter.detail)
    engine = getattr(backend, "engine", engine)
    return Resolved(spec_file, pkg, merged, describe_server(pkg.server, merged), strategy, backend, engine, platforms)


def lock(resolved: Resolved, request: BuildRequest, options: Options, reporter: Reporter) -> LockResult:
    """The lock stage: reuse the lock beside the spec, or resolve the merged environment and write it."""
    lock_path = package_lock_path(resolved.spec_file.path, request.lock_path, resolved.package, options.workspace)
    if lock_path != lock_path_for(resolved.spec_file.path, request.lock_path):
        reporter.step(f"lock: {lock_path} (beside the spec it would be inside the packaged model or code folder)")
    if request.check_lock and not lock_path.exists():
        raise LockError(f"{lock_path}: no lock file to check; write one with 'pkgc lock {resolved.spec_file.path}'")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    cache_root = PackageCache(options.cache_dir).cache_root
    with reporter.stage("lock"):
        locked = load_or_lock(resolved.strategy, lock_path, request.relock, [resolved.spec_file.path.name], cache_root,
                              reporter.detail, memo_dir=options.cache_dir / LOCKS_READ, platforms=resolved.platforms,
                              extend=not request.check_lock)  # fmt: skip
        reporter.step(f"lock {locked.status}: {lock_path} ({len(locked.lock.packages)} packages)")
    pkg = resolved.package
    if pkg.mlflow is not None:  # a pickle saved with another library version: said now, not as a 500 at run time
        versions = {p.name: p.version for p in locked.lock.packages}
        for line in version_drift(pkg.mlflow.flavor_versions, versions, f"{pkg.model.name}:{pkg.model.version}"):
            reporter.warn(line)
    return locked


def lock_package(request: BuildRequest, options: Options, connect: Callable[[], Engine], reporter: Reporter) -> dict:
    """``pkgc lock``: spec -> resolve -> lock, and what the lock holds."""
    with reporter.stage("resolve"):
        resolved = resolve(load_spec(request, reporter), request, options, connect, reporter)
    locked = lock(resolved, request, options, reporter)
    return {
        "lock_file": str(locked.path),
        "lock_status": locked.status,
        "environment_strategy": resolved.strategy.kind,
        "python": resolved.strategy.python,
        "packages": [f"{p.manager}:{p.name}=={p.version}" for p in locked.lock.packages],
        "platforms": {str(platform): len(lock.packages) for platform, lock in locked.locks.items()},
    }


def compile_package(
    request: BuildRequest, options: Options, connect: Callable[[], Engine], reporter: Reporter, reserve: bool = True
) -> Compiled | str:
    """spec -> resolve -> merge -> lock -> fetch -> base -> plan; the text of ``request.emit`` when it
    names a stage before the plan. ``reserve`` takes the target version atomically (a build does;
    ``--emit`` only looks)."""
    spec_file = load_spec(request, reporter)
    if request.emit == "spec":
        return emit_spec(spec_file)
    with reporter.stage("resolve"):
        resolved = resolve(spec_file, request, options, connect, reporter)
    if request.emit == "deps":
        return describe_merged(resolved.merged, resolved.strategy) + (f"{resolved.server_note}\n" if resolved.server_note else "")
    pkg, strategy, engine = resolved.package, resolved.strategy, resolved.engine
    if request.model_image_wanted and pkg.mode is not ModelMode.READONLY_MOUNT:  # said before any build work
        raise SpecError(resolved.spec_file.problem(("model_configuration", "mode"), f"is {pkg.mode.value}: the model is inside "
                                                   "the image; --model-output/--model-push are for readonly_mount packages"))  # fmt: skip
    if resolved.server_note:
        reporter.step(resolved.server_note)
    reporter.step(f"environment strategy: {strategy.kind}: {strategy.reason}")
    reporter.step(f"builder: {resolved.builder}" + ("" if engine is not None else " (no engine answers: the image goes to the OCI store)"))
    locked = lock(resolved, request, options, reporter)
    workspace = Workspace.with_digests(options.workspace, options.cache_dir)
    version = _reserve_version(pkg, workspace) if reserve else _provisional_version(pkg, workspace)
    try:
        tag = f"{image_repository(pkg.target_name)}:{version}"
        model_image = package_model_image(pkg, options.cache_dir, options.source_date_epoch, reuse=not request.no_cache,
                                          platforms=tuple(resolved.platforms))  # fmt: skip
        plans = tuple(plan_platform(resolved, request, options, reporter, locked.path, locked.locks[platform], platform, tag, model_image, reserve)
                      for platform in resolved.platforms)  # fmt: skip
    except BaseException:
        if reserve:
            workspace.release_environment_version(pkg.target_name, version)
        raise
    return Compiled(resolved, locked, plans, version, reserve, model_image)


def plan_platform(
    resolved: Resolved, request: BuildRequest, options: Options, reporter: Reporter, lock_path: Path, lock: Lock,
    platform: Platform, tag: str, model_image: ModelImage | None, required: bool,
) -> ImagePlan:  # fmt: skip
    """fetch -> base -> plan for one platform; ``required``: the base must be at hand (a build)."""
    pkg, strategy = resolved.package, resolved.strategy
    cache = PackageCache(options.cache_dir)
    where = f" for {platform}" if len(resolved.platforms) > 1 else ""
    with reporter.stage("fetch") as fetching:
        fetched = fetch_lock(lock, cache, reporter.detail, fetching.update)
        conda = None
        if strategy.kind == "conda":
            from compiler.fetch.conda_inputs import prepare_conda_inputs

            conda = prepare_conda_inputs(lock, fetched, cache)
    with reporter.stage("base"):
        base = resolved.backend.resolve_base(pkg.environment.image, platform, strategy.python, required, reporter.detail)
    for line in base_conflicts(base.packages, lock):
        reporter.warn(line + where)
    lock_file = ContextFile("pkgc/conda-lock.yml", source=lock_path)
    shipped_lock = read_lock(lock_path, options.cache_dir / LOCKS_READ, platform)  # the lock as shipped
    sbom_file = sbom_context_file(pkg, shipped_lock, base.image_id, base.packages, options.cache_dir / SBOM_DRAFTS)
    plan = plan_image(pkg, strategy, lock, lock_file, fetched, tag, sbom_file, conda, base,
                      model_image.manifest_digest if model_image else None)  # fmt: skip
    plan, note = apply_environment_choices(
        plan,
        options.slim if request.slim is None else request.slim, options.bytecode if request.bytecode is None else request.bytecode,
        keep=resolved.merged.pinned_installers(),  # a conda file's bare `pip` only enables its pip: part
    )  # fmt: skip
    if note:
        reporter.warn(note)
    return plan


@dataclass(frozen=True)
class Finished:
    """A build: its result, and the back end that made it (which publishes it)."""

    result: BuildResult
    backend: Backend


def run_build(
    request: BuildRequest,
    options: Options,
    connect: Callable[[], Engine],
    reporter: Reporter,
) -> Finished | str:
    """compile -> build -> record; the text of the stage ``request.emit`` names instead, if any."""
    started = time.monotonic()
    compiled = compile_package(request, options, connect, reporter, reserve=request.emit is None)
    if isinstance(compiled, str):
        return compiled
    plan, pkg = compiled.plan, compiled.resolved.package
    if request.emit == "plan":
        if len(compiled.plans) == 1:
            return "\n".join(plan.layer_summary()) + "\n"
        return "".join(f"# {p.platform}\n" + "\n".join(p.layer_summary()) + "\n" for p in compiled.plans)
    if request.emit == "dockerfile":
        from compiler.render import render_dockerfile

        return render_dockerfile(plan, request.template)
    workspace = Workspace.with_digests(options.workspace, options.cache_dir)
    try:
        built = compiled.resolved.backend.build(compiled.plans, reporter)
        lock_blob = workspace.store_blob(compiled.locked.path.read_bytes())
        record = _record(pkg, plan, built.image, built.image_id, compiled.version, workspace, lock_blob)
    finally:
        workspace.release_environment_version(pkg.target_name, compiled.version)
    verb = "reused" if built.reused else "built"
    reporter.step(f"{verb} {built.image} = {built.content_tag} ({built.size / 1e6:.0f} MB) in "
                  f"{time.monotonic() - started:.1f} s, the image's layers and load {built.seconds:.1f} s")  # fmt: skip
    return Finished(build_result(compiled, built, f"{record.name}:{record.version}"), compiled.resolved.backend)


def build_result(compiled: Compiled, built: BuiltImage, target_environment: str) -> BuildResult:
    """The build's typed result: what ``--json`` prints."""
    resolved, plan = compiled.resolved, compiled.plan
    pkg, strategy = resolved.package, resolved.strategy
    return BuildResult(
        image=built.image, image_id=built.image_id, mode=pkg.mode.value, model=f"{pkg.model.name}:{pkg.model.version}",
        model_dir=pkg.model_dir, environment_strategy=strategy.kind, environment_reason=strategy.reason,
        python=strategy.python, lock_file=str(compiled.locked.path), lock_status=compiled.locked.status,
        target_environment=target_environment, port=plan.config.port, content_tag=built.content_tag,
        content_hash=built.content_hash, sbom_digest=plan.config.labels.get(SBOM_DIGEST), reused=built.reused,
        size_bytes=built.size, build_seconds=round(built.seconds, 2), builder=built.builder,
        slim=bool(plan.environment and plan.environment.slim),
        bytecode=bool(plan.environment is None or plan.environment.bytecode),
        base_digest=plan.base.digest or plan.base.image_id, manifest_digest=built.manifest_digest, loaded=built.loaded,
        deployment=resolved.spec_file.deployment.summary() if resolved.spec_file.deployment else None,
        model_image=compiled.model_image.as_dict() if compiled.model_image else None, layers=built.layers,
        platforms=built.platforms,
    )  # fmt: skip


def _base_facts(image: str, engine: Engine | None, options: Options):
    """Recipe, engine labels or probe; with no engine, or for an ``oci:``/``oci-archive:`` or
    registry base, the labels of the image in pkgc's OCI store."""
    from compiler.oci.base import split_oci_reference
    from compiler.backends.oci.facts import stored_base_facts
    from compiler.oci.registry import registry_base

    if split_oci_reference(image) is not None or registry_base(image, engine):
        return stored_base_facts(image, options.cache_dir, required=True) or base_image_facts(image, None)
    facts = base_image_facts(image, engine)
    if engine is None and facts.python is None:
        facts = stored_base_facts(image, options.cache_dir) or facts
    return facts


def _engine_if_any(connect: Callable[[], Engine]) -> Engine | None:
    try:
        return connect()
    except EngineUnavailable:
        return None


def _conda_path_available() -> bool:
    """The conda path needs py-rattler on the host (to solve) and pkgc's conda planner."""
    return all(importlib.util.find_spec(m) is not None for m in ("rattler", "compiler.plan.conda"))


def _record(
    pkg: ResolvedPackage, plan: ImagePlan, image: str, image_id: str, version: str, workspace: Workspace, lock: str
) -> EnvironmentRecord:
    """The package, materialised as an environment version (as Azure ML does), with its lock."""
    package = PackageInfo(
        image=image,
        image_id=image_id,
        mode=pkg.mode.value,
        model=f"{pkg.model.name}:{pkg.model.version}",
        model_tree=pkg.model.tree_digest,
        model_dir=pkg.model_dir,
        spec=str(pkg.spec_path),
        port=plan.config.port,
        lock=lock,
    )
    record = EnvironmentRecord(
        name=pkg.target_name, version=version, image=image, description=plan.config.labels["org.opencontainers.image.description"],
        package=package, tags=pkg.tags,
    )
    return workspace.create_environment(record, explicit_version=True)
