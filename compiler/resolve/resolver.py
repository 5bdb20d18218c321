"""Resolve every asset a package spec names; rules that need the model's type are checked here."""

from __future__ import annotations

import hashlib

from dataclasses import replace
from pathlib import Path

from compiler.errors import ResolveError, SpecError, SpecProblem
from compiler.options import Options
from compiler.resolve.environments import resolve_environment
from compiler.resolve.inputs import resolve_inputs
from compiler.resolve.models import resolve_model
from compiler.mlflow.mlmodel import MLflowModel, read_mlflow_model
from compiler.resolve.types import MODELS_ROOT, ResolvedCode, ResolvedEnvironment, ResolvedModel, ResolvedPackage
from compiler.servers.base import InferenceServer, ServerRequest
from compiler.servers.registry import server_type
from compiler.spec.load import SpecFile
from compiler.workspace import Workspace
from compiler.workspace.walk import ContentError, skip_caches, walk

DEFAULT_MLFLOW_BASE_IMAGE = "pkgc/base-debian-bookworm:latest"


def _model(spec_file: SpecFile, cli_model: str | None, workspace: Workspace, options: Options) -> ResolvedModel:
    if cli_model:
        try:
            return resolve_model(cli_model, Path.cwd(), workspace, options)
        except ResolveError as exc:
            raise ResolveError(f"--model: {exc}") from None
    if spec_file.spec.model is None:
        raise SpecError(
            spec_file.problem(("model",), "no model to package: add 'model:' to the spec or pass --model REF")
        )
    try:
        return resolve_model(spec_file.spec.model, spec_file.base_dir, workspace, options)
    except ResolveError as exc:
        raise SpecError(spec_file.problem(("model",), str(exc))) from None


def _mlflow_defaults(
    model: ResolvedModel, environment: ResolvedEnvironment | None, code: ResolvedCode | None, options: Options,
    base_image: str | None, server: InferenceServer,
) -> tuple[MLflowModel, ResolvedEnvironment, ResolvedCode | None]:
    """An MLflow model brings its own dependencies: generate what the spec leaves out."""
    mlflow_model = read_mlflow_model(model.tree_path / model.root_name)
    if environment is None:
        image = base_image or options.mlflow_base_image or DEFAULT_MLFLOW_BASE_IMAGE
        environment = ResolvedEnvironment("mlflow-generated", "1", image, None, "")
    generated = server.kind.mlflow_scoring(mlflow_model, model.root_name, options.cache_dir) if code is None else None
    if generated is not None:  # the server runs a scoring script: pkgc writes the MLflow model's, as Azure does
        code = ResolvedCode(directory=generated.directory, scoring_script=generated.scoring_script)
    return mlflow_model, environment, code


def resolve_package(
    spec_file: SpecFile, cli_model: str | None, workspace: Workspace, options: Options, base_image: str | None = None
) -> ResolvedPackage:
    """Resolve model, base environment, server and code; the CLI's model wins over the spec's.

    ``base_image`` (``--base-image``) replaces the base environment's image, or the default image
    of an MLflow package."""
    spec = spec_file.spec
    model = _model(spec_file, cli_model, workspace, options)
    problems: list[SpecProblem] = []
    inline = spec_file.deployment.inline_environment if spec_file.deployment else None
    if spec.base_environment_source is None and inline is None and not model.is_mlflow:
        problems.append(
            spec_file.problem(("base_environment_source",), "required unless the model is an MLflow model")
        )
    kind = server_type(spec.inferencing_server.type)  # chosen once: the server carries it to every later stage
    if spec.code_configuration is None and kind.needs_code and not model.is_mlflow:
        problems.append(
            spec_file.problem(
                ("inferencing_server", "code_configuration"),
                f"required for {kind.name} unless the model is an MLflow model",
            )
        )
    if problems:
        raise SpecError(problems)
    environment = None
    if spec.base_environment_source is not None:
        try:
            environment = resolve_environment(spec.base_environment_source.resource_id, workspace, options)
        except ResolveError as exc:
            raise SpecError(spec_file.problem(("base_environment_source", "resource_id"), str(exc))) from None
    elif inline is not None:  # a deployment's inline environment: an image and its conda file, not registered
        label = f"conda file '{inline.conda_file.name}' of {spec_file.path.name}" if inline.conda_file else ""
        environment = ResolvedEnvironment(inline.name, "1", inline.image, inline.conda_file, label)
    code = None
    if spec.code_configuration is not None:
        code = ResolvedCode(
            directory=(spec_file.base_dir / spec.code_configuration.code).resolve(),
            scoring_script=spec.code_configuration.scoring_script or "",
        )
        try:  # regular files and folders only, links inside it (compiler/workspace/walk.py): said now, not at build
            walk(code.directory, ignore=skip_caches)
        except ContentError as exc:
            raise SpecError(spec_file.problem(("inferencing_server", "code_configuration", "code"), str(exc))) from None
    model_dir = spec.model_configuration.mount_path or f"{MODELS_ROOT}/{model.name}/{model.version}"
    server = kind.from_spec(ServerRequest(spec_file, model, model_dir))  # routes and start command checked
    mlflow_model = None
    own_environment = environment is not None and code is not None  # Azure then uses them alone
    if model.is_mlflow:
        mlflow_model, environment, code = _mlflow_defaults(model, environment, code, options, base_image, server)
    if base_image and environment:  # --base-image wins over every environment's image, an MLflow model's included
        environment = replace(environment, image=base_image)
    return ResolvedPackage(
        spec_path=spec_file.path,
        target_name=spec.target_environment,
        target_version=spec.target_environment_version,
        mode=spec.mode,
        model=model,
        environment=environment,
        server=server,
        code=code,
        model_dir=model_dir,
        environment_variables=dict(spec.environment_variables),
        tags=dict(spec.tags),
        mlflow=mlflow_model,
        mlflow_environment=not own_environment,
        run_settings=spec_file.deployment.run_settings if spec_file.deployment else None,
        inputs=resolve_inputs(spec_file, workspace, model_dir),
        spec_digest=hashlib.sha256(spec_file.path.read_bytes()).hexdigest(),
    )
