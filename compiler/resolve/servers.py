"""Custom and Triton servers from the spec: routes, start command and variables, each checked.

``entry_script`` is split into an argv with ``shlex.split`` (shell quoting rules, no shell runs it:
no pipes, redirections or variable expansion). In it and in ``configuration`` values,
``${AZUREML_MODEL_DIR}`` is replaced at build time by the model's folder in the container, so one
spec serves every model version.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from compiler.deps.server import TRITON_LAUNCHER, InferenceServer, custom_server, triton_routes, triton_server
from compiler.errors import SpecError, SpecProblem
from compiler.labels import Route
from compiler.resolve.types import ResolvedModel
from compiler.spec.load import SpecFile
from compiler.spec.model import CustomOnlineServer, OnlineInferenceConfiguration, Route as SpecRoute, TritonServer

MODEL_DIR_PLACEHOLDER = "${AZUREML_MODEL_DIR}"
CONFIG_KEY = ("inferencing_server", "inference_configuration")


def _route(route: SpecRoute) -> Route:
    return Route(route.port, route.path)


def _command(spec_file: SpecFile, text: str, model_dir: str) -> tuple[str, ...]:
    key = CONFIG_KEY + ("entry_script",)
    try:
        argv = [arg.replace(MODEL_DIR_PLACEHOLDER, model_dir) for arg in shlex.split(text)]  # a space in it stays in one arg
    except ValueError as exc:
        raise SpecError(spec_file.problem(key, f"cannot be split into a command: {exc}")) from None
    if not argv:
        raise SpecError(spec_file.problem(key, "must not be empty: it is the server's start command"))
    return tuple(argv)


def _variables(config: OnlineInferenceConfiguration | None, model_dir: str) -> dict[str, str]:
    values = config.configuration if config else {}
    return {k: v.replace(MODEL_DIR_PLACEHOLDER, model_dir) for k, v in values.items()}


def custom_from_spec(spec_file: SpecFile, server: CustomOnlineServer, model_dir: str) -> InferenceServer:
    """A custom server needs a scoring route, a readiness or liveness route (each defaults to the
    other) and its start command."""
    config = server.inference_configuration
    if config is None:
        raise SpecError(spec_file.problem(
            ("inferencing_server",),
            "a custom server needs inference_configuration with entry_script, scoring_route and readiness_route",
        ))  # fmt: skip
    missing = [what for what, absent in (
        ("scoring_route {port, path}", config.scoring_route is None),
        ("readiness_route (or liveness_route) {port, path}", config.readiness_route is None and config.liveness_route is None),
        # a deployment's custom container without one runs the image's own ENTRYPOINT and CMD
        ("entry_script (the start command)", config.entry_script is None and spec_file.deployment is None),
    ) if absent]  # fmt: skip
    if missing:
        raise SpecError(spec_file.problem(CONFIG_KEY, f"a custom server needs {', '.join(missing)}"))
    readiness = _route(config.readiness_route or config.liveness_route)
    liveness = _route(config.liveness_route or config.readiness_route)
    command = _command(spec_file, config.entry_script, model_dir) if config.entry_script is not None else ()
    return custom_server(_route(config.scoring_route), readiness, liveness, command, _variables(config, model_dir))


def triton_models(repository: Path) -> list[str]:
    """The model names of a Triton model repository; raise SpecError naming the first bad folder."""
    def bad(path: Path, why: str) -> SpecError:
        return SpecError(SpecProblem(str(path), "", f"not a Triton model repository: {why}"))

    if not repository.is_dir():
        raise bad(repository, "a Triton model is a folder (the repository) holding <model>/config.pbtxt")
    if (repository / "config.pbtxt").exists():
        raise bad(repository, "this is one Triton model; register the folder that holds it (the repository)")
    models = sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not models:
        raise bad(repository, "no model folder (<model>/config.pbtxt, <model>/<version>/...)")
    for model in models:
        if not (model / "config.pbtxt").is_file():
            raise bad(model, "config.pbtxt is missing")
        if not any(p.is_dir() and p.name.isdigit() for p in model.iterdir()):
            raise bad(model, "no version folder (a number, such as 1/)")
    return [m.name for m in models]


def triton_from_spec(spec_file: SpecFile, server: TritonServer, model: ResolvedModel, model_dir: str) -> InferenceServer:
    """Triton serving the model repository; Triton's routes on 8000 unless inference_configuration overrides them."""
    names = triton_models(model.tree_path / model.root_name)
    config = server.inference_configuration
    if len(names) > 1 and not (config and config.scoring_route):
        raise SpecError(spec_file.problem(
            ("inferencing_server",),
            f"the Triton repository holds {len(names)} models ({', '.join(names)}): "
            "name the one to score with inference_configuration.scoring_route",
        ))  # fmt: skip
    score, readiness, liveness = triton_routes(names[0])
    if config:
        score = _route(config.scoring_route) if config.scoring_route else score
        readiness = _route(config.readiness_route) if config.readiness_route else readiness
        liveness = _route(config.liveness_route) if config.liveness_route else liveness
    repository = f"{model_dir}/{model.root_name}"
    if config and config.entry_script is not None:
        command = _command(spec_file, config.entry_script, model_dir)
    else:
        command = (TRITON_LAUNCHER, f"--model-repository={repository}", f"--http-port={score.port}")
    return triton_server(score, readiness, liveness, command, _variables(config, model_dir))
