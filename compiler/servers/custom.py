"""``custom``: a server the base environment brings itself (MLServer, TorchServe, TF Serving, ...).
Nothing is injected; it starts with the spec's entry_script, or, for a deployment's own container
without one, as its base image says (ENTRYPOINT and CMD kept)."""

from __future__ import annotations

from compiler.errors import SpecError
from compiler.labels import Route
from compiler.servers.base import InferenceServer, ServerRequest, ServerType
from compiler.servers.configuration import CONFIG_KEY, command, route, variables
from compiler.spec.load import SpecFile
from compiler.spec.model import CustomOnlineServer


class Custom(ServerType):
    name = "custom"

    def from_spec(self, request: ServerRequest) -> InferenceServer:
        server = request.spec_file.spec.inferencing_server
        assert isinstance(server, CustomOnlineServer)
        return custom_from_spec(request.spec_file, server, request.model_dir)

    def own_container(self, server: InferenceServer) -> bool:
        return not server.command


TYPE = Custom()


def custom_server(
    score: Route, readiness: Route, liveness: Route, command: tuple[str, ...], environment: dict[str, str]
) -> InferenceServer:
    """A server the base environment brings itself: nothing is injected."""
    return InferenceServer(TYPE, (), score, readiness, liveness, command, tuple(sorted(environment.items())))


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
    readiness = route(config.readiness_route or config.liveness_route)
    liveness = route(config.liveness_route or config.readiness_route)
    argv = command(spec_file, config.entry_script, model_dir) if config.entry_script is not None else ()
    return custom_server(route(config.scoring_route), readiness, liveness, argv, variables(config, model_dir))
