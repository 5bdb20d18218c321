"""``triton``: NVIDIA Triton serving the model folder as a Triton model repository, brought by the base
image (NVIDIA's) or the environment (the nvidia-pytriton wheel), started by pkgc's launcher
(templates/runtime/pkgc-triton.sh) on Triton's own (KServe v2) routes unless the spec overrides them."""

from __future__ import annotations

from pathlib import Path

from compiler.errors import SpecError, SpecProblem
from compiler.labels import Route
from compiler.servers.base import InferenceServer, ModelFolder, RuntimeFile, ServerRequest, ServerType
from compiler.servers.configuration import command, route, variables
from compiler.spec.load import SpecFile
from compiler.spec.model import TritonServer
from compiler.spec.values import PKGC_HOME

TRITON_HTTP_PORT = 8000
TRITON_LAUNCHER = f"{PKGC_HOME}/bin/pkgc-triton"  # templates/runtime/pkgc-triton.sh in the image


class Triton(ServerType):
    name = "triton"
    runtime_files = (RuntimeFile("pkgc-triton.sh", TRITON_LAUNCHER,
                                 "finds tritonserver (NVIDIA's image or the nvidia-pytriton wheel)", executable=True),)  # fmt: skip

    def from_spec(self, request: ServerRequest) -> InferenceServer:
        server = request.spec_file.spec.inferencing_server
        assert isinstance(server, TritonServer)
        return triton_from_spec(request.spec_file, server, request.model, request.model_dir)


TYPE = Triton()


def triton_routes(model_name: str, port: int = TRITON_HTTP_PORT) -> tuple[Route, Route, Route]:
    """Triton's own (KServe v2) routes: score, readiness, liveness."""
    return Route(port, f"/v2/models/{model_name}/infer"), Route(port, "/v2/health/ready"), Route(port, "/v2/health/live")


def triton_server(
    score: Route, readiness: Route, liveness: Route, command: tuple[str, ...], environment: dict[str, str]
) -> InferenceServer:
    """Triton with these routes, start command and variables; nothing is injected."""
    return InferenceServer(TYPE, (), score, readiness, liveness, command, tuple(sorted(environment.items())))


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


def triton_from_spec(spec_file: SpecFile, server: TritonServer, model: ModelFolder, model_dir: str) -> InferenceServer:
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
        score = route(config.scoring_route) if config.scoring_route else score
        readiness = route(config.readiness_route) if config.readiness_route else readiness
        liveness = route(config.liveness_route) if config.liveness_route else liveness
    repository = f"{model_dir}/{model.root_name}"
    if config and config.entry_script is not None:
        argv = command(spec_file, config.entry_script, model_dir)
    else:
        argv = (TRITON_LAUNCHER, f"--model-repository={repository}", f"--http-port={score.port}")
    return triton_server(score, readiness, liveness, argv, variables(config, model_dir))
