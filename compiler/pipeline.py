"""Run the compiler's stages in order; ``emit`` stops after a stage and returns its IR as text.

spec -> resolve -> deps/merge -> strategy -> lock -> fetch -> plan -> render -> build -> record
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

from compiler.build import build_image
from compiler.deps.conda_file import parse_conda_file
from compiler.deps.merge import merge
from compiler.deps.server_pin import describe_server, server_depset
from compiler.deps.types import DepSet, MergedEnvironment
from compiler.engines.base import Engine
from compiler.envbuild.choices import apply_environment_choices
from compiler.environment.strategy import EnvironmentStrategy, choose_strategy
from compiler.errors import EngineUnavailable, ResolveError, SpecError, SpecProblem
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.mlflow.deps import mlflow_depsets
from compiler.lock.locker import load_or_lock
from compiler.lock.lockfile import read_lock
from compiler.options import Options
from compiler.plan import ContextFile, ImagePlan, plan_image
from compiler.render import render_dockerfile
from compiler.reporter import Reporter
from compiler.resolve import ResolvedPackage, resolve_package
from compiler.resolve.baseimage import base_image_facts
from compiler.labels import SBOM_DIGEST
from compiler.sbom.collect import sbom_context_file
from compiler.spec import load_package_spec
from compiler.workspace import EnvironmentRecord, Workspace
from compiler.workspace.records import PackageInfo

Emit = Literal["spec", "deps", "lock", "plan", "dockerfile"]
Builder = Literal["auto", "oci", "docker"]


@dataclass(frozen=True)
class BuildRequest:
    spec_path: Path
    model: str | None = None
    emit: Emit | None = None
    relock: bool = False
    lock_path: Path | None = None
    template: Path | None = None
    no_cache: bool = False
    base_image: str | None = None
    python_version: str | None = None
    target_environment: str | None = None  # overrides the spec's name (a deployment's <endpoint>-<name>-pkg)
    builder: Builder = "auto"
    slim: bool | None = None  # --slim/--no-slim; None: the config's ``slim``
    bytecode: bool | None = None  # --bytecode/--no-bytecode; None: the config's ``bytecode``


def lock_path_for(spec_path: Path, explicit: Path | None) -> Path:
    """``package.yml`` is locked in ``package.conda-lock.yml`` beside it, unless told otherwise."""
    return explicit or spec_path.with_name(f"{spec_path.stem}.conda-lock.yml")


def collect_depsets(pkg: ResolvedPackage, python_override: str | None = None) -> list[DepSet]:
    """Every source of dependencies: the base environment's conda file, the MLflow model's own
    requirements (and what serving it needs), then the inference server."""
    depsets = []
    if pkg.environment and pkg.environment.conda_file:
        depsets.append(parse_conda_file(pkg.environment.conda_file, pkg.environment.conda_label))
    if pkg.mlflow is not None:
        label = f"{pkg.model.name}:{pkg.model.version}"
        depsets.extend(mlflow_depsets(pkg.mlflow, label, python_override))
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


def run_build(
    request: BuildRequest,
    options: Options,
    connect: Callable[[], Engine],
    reporter: Reporter,
) -> dict | str:
    """Compile ``request.spec_path``; return the JSON result, or the text of the stage ``emit`` names."""
    spec_file = load_package_spec(request.spec_path, request.target_environment)
    if spec_file.deployment is not None and spec_file.deployment.ignored:
        reporter.warn(f"{spec_file.path.name}: ignored (no meaning for a container image): {', '.join(spec_file.deployment.ignored)}")
    if request.emit == "spec":
        emitted = spec_file.spec.model_dump(mode="json", by_alias=True)
        if spec_file.deployment is not None:
            emitted["x-pkgc-deployment"] = spec_file.deployment.summary()
        return json.dumps(emitted, indent=2) + "\n"
    workspace = Workspace(options.workspace)
    reporter.step(f"resolving {spec_file.path.name}")
    pkg = resolve_package(spec_file, request.model, workspace, options, request.base_image)
    reporter.detail(f"model {pkg.model.name}:{pkg.model.version} ({pkg.model.type}) from {pkg.model.reference}")
    if pkg.mlflow is not None and request.python_version and request.python_version != pkg.mlflow.python_minor:
        reporter.warn(
            f"--python-version {request.python_version} overrides the Python {pkg.mlflow.python_version} "
            f"recorded in MLflow model {pkg.model.name}:{pkg.model.version}; the model may not load"
        )
    merged = merge(collect_depsets(pkg, request.python_version))
    server_note = describe_server(pkg.server, merged)
    engine = connect() if request.builder == "docker" else _engine_if_any(connect)
    facts = _base_facts(pkg.environment.image, engine, options)
    strategy = choose_strategy(merged, facts, conda_available=_conda_path_available())
    builder = choose_builder(request, strategy, pkg.environment.image)
    if builder == "docker" and engine is None:
        engine = connect()  # raises: the docker back end needs the engine
    if request.emit == "deps":
        return describe_merged(merged, strategy) + (f"{server_note}\n" if server_note else "")
    if server_note:
        reporter.step(server_note)
    reporter.step(f"environment strategy: {strategy.kind}: {strategy.reason}")
    reporter.step(f"builder: {builder}" + ("" if engine is not None else " (no engine answers: the image goes to the OCI store)"))
    lock_path = lock_path_for(spec_file.path, request.lock_path)
    cache = PackageCache(options.cache_dir)
    locked = load_or_lock(strategy, lock_path, request.relock, [spec_file.path.name], cache.cache_root, reporter.detail)
    reporter.step(f"lock {locked.status}: {lock_path} ({len(locked.lock.packages)} packages)")
    if request.emit == "lock":
        return {
            "lock_file": str(lock_path),
            "lock_status": locked.status,
            "environment_strategy": strategy.kind,
            "python": strategy.python,
            "packages": [f"{p.manager}:{p.name}=={p.version}" for p in locked.lock.packages],
        }
    fetched = fetch_lock(locked.lock, cache, reporter.detail)
    emit_only = request.emit in ("plan", "dockerfile")
    if emit_only:
        version = _provisional_version(pkg, workspace)
    else:  # taken atomically before anything is tagged or recorded: one writer wins each version
        version = _reserve_version(pkg, workspace)
    try:
        tag = f"{image_repository(pkg.target_name)}:{version}"
        lock_file = ContextFile("pkgc/conda-lock.yml", source=lock_path)
        sbom_file = sbom_context_file(pkg, read_lock(lock_path), engine)  # from the lock as shipped
        plan = plan_image(pkg, strategy, locked.lock, lock_file, fetched, tag, cache, sbom_file=sbom_file)
        plan, note = apply_environment_choices(
            plan, options.slim if request.slim is None else request.slim, options.bytecode if request.bytecode is None else request.bytecode,
            keep=tuple(dep.name for dep in merged.pip),  # a conda file's `pip` only enables its pip: part
        )  # fmt: skip
        if note:
            reporter.warn(note)
        if request.emit == "plan":
            return "\n".join(plan.layer_summary()) + "\n"
        if request.emit == "dockerfile":
            return render_dockerfile(plan, request.template)
        if builder == "oci":
            from compiler.oci.builder import build_oci_image
            from compiler.oci.layers import LayerOptions
            from compiler.oci.store import OciStore

            layer_options = LayerOptions(epoch=options.source_date_epoch, python=strategy.python, reuse=not request.no_cache)
            built = build_oci_image(plan, OciStore.in_cache(options.cache_dir), engine, layer_options, reporter)
        else:
            built = build_image(plan, engine, reporter, request.template, request.no_cache)
        lock_blob = workspace.store_blob(lock_path.read_bytes())
        record = _record(pkg, plan, built.image, built.image_id, version, workspace, lock_blob)
    finally:
        if not emit_only:
            workspace.release_environment_version(pkg.target_name, version)
    verb = "reused" if built.reused else "built"
    reporter.step(f"{verb} {built.image} = {built.content_tag} ({built.size / 1e6:.0f} MB) in {built.seconds:.1f} s")
    return {
        "image": built.image,
        "image_id": built.image_id,
        "mode": pkg.mode.value,
        "model": f"{pkg.model.name}:{pkg.model.version}",
        "model_dir": pkg.model_dir,
        "environment_strategy": strategy.kind,
        "environment_reason": strategy.reason,
        "python": strategy.python,
        "lock_file": str(lock_path),
        "lock_status": locked.status,
        "target_environment": f"{record.name}:{record.version}",
        "port": plan.port,
        "content_tag": built.content_tag,
        "content_hash": built.content_hash,
        "sbom_digest": plan.labels.get(SBOM_DIGEST),
        "reused": built.reused,
        "size_bytes": built.size,
        "build_seconds": round(built.seconds, 2),
        "builder": builder,
        "slim": bool(plan.environment and plan.environment.slim),
        "bytecode": bool(plan.environment is None or plan.environment.bytecode),
        **({"manifest_digest": built.manifest_digest, "loaded": built.loaded} if builder == "oci" else {}),
        **({"deployment": spec_file.deployment.summary()} if spec_file.deployment else {}),
    }


def _base_facts(image: str, engine: Engine | None, options: Options):
    """Recipe, engine labels or probe; with no engine, or for an ``oci:``/``oci-archive:`` base,
    the labels of the image in pkgc's OCI store."""
    from compiler.oci.base import split_oci_reference
    from compiler.oci.facts import stored_base_facts

    if split_oci_reference(image) is not None:
        return stored_base_facts(image, options.cache_dir, required=True) or base_image_facts(image, None)
    facts = base_image_facts(image, engine)
    if engine is None and facts.python is None:
        facts = stored_base_facts(image, options.cache_dir) or facts
    return facts


def choose_builder(request: BuildRequest, strategy: EnvironmentStrategy, base_image: str = "") -> Literal["oci", "docker"]:
    """``oci`` whenever the image can be assembled without running code in it (the venv strategy,
    no user template); ``docker`` otherwise. An explicit choice that cannot work is bad input."""
    from compiler.oci.base import split_oci_reference

    if request.builder == "docker" and split_oci_reference(base_image) is not None:
        raise SpecError(SpecProblem("--builder", "", f"docker cannot build on {base_image}; use --builder oci"))
    why_not = None
    if strategy.kind != "venv":
        why_not = f"the {strategy.kind} strategy runs its installer inside the image"
    elif request.template is not None:
        why_not = "a user --template may run steps inside the image"
    if request.builder == "oci" and why_not:
        raise SpecError(SpecProblem("--builder", "", f"oci cannot build this package: {why_not}; use --builder docker"))
    if request.builder == "auto":
        return "docker" if why_not else "oci"
    return request.builder


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
        port=plan.port,
        lock=lock,
    )
    record = EnvironmentRecord(
        name=pkg.target_name, version=version, image=image, description=plan.labels["org.opencontainers.image.description"],
        package=package, tags=pkg.tags,
    )
    return workspace.create_environment(record, explicit_version=True)
