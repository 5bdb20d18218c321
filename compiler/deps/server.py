"""Inference servers: what each injects into the environment, how it is started and probed.

``azureml_online`` is Azure ML's HTTP server (injected, pinned). ``custom`` and ``triton`` bring their
own server through the base environment and start with a command; ``azureml_batch`` is no server
but a job (pkgc's batch driver calls the scoring script's init() and run(mini_batch)).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.deps.specs import parse_pip
from compiler.deps.types import DepSet, Source
from compiler.labels import Route

AZUREML_SERVER_PACKAGE = "azureml-inference-server-http"
AZUREML_SERVER_VERSION = "1.5.1"  # preferred: the version pkgc's tests build and serve
AZUREML_SERVER_SUPPORTED = ">=1.3,<2"  # 1.3 moved to pydantic 2 and werkzeug 3; 2.x is a new major
TRITON_HTTP_PORT = 8000
TRITON_LAUNCHER = "/opt/pkgc/bin/pkgc-triton"  # templates/runtime/pkgc-triton.sh in the image
BATCH_DRIVER = "/opt/pkgc/bin/pkgc_batch.py"  # templates/runtime/pkgc_batch.py in the image


@dataclass(frozen=True)
class InferenceServer:
    """An inference server: what it needs installed, how it starts, and its three HTTP routes.

    ``command`` is the argv started from the working folder (empty: pkgc's entrypoint decides);
    ``environment`` its variables. A batch job has no routes (``score`` is None)."""

    type: str
    requirements: tuple[str, ...]
    score: Route | None
    readiness: Route | None
    liveness: Route | None
    command: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    preferred: tuple[str, ...] = ()  # exact pins taken when no other source names the package
    brought_by: tuple[str, ...] = ()  # packages that bring the server with their own pin

    @property
    def default_port(self) -> int | None:
        """The port the image exposes (the scoring route's), None for a batch job."""
        return self.score.port if self.score else None

    @property
    def ports(self) -> tuple[int, ...]:
        """Every distinct container port of the routes, the scoring port first."""
        routes = [r for r in (self.score, self.readiness, self.liveness) if r is not None]
        return tuple(dict.fromkeys(r.port for r in routes))

    def depset(self) -> DepSet:
        source = Source("server", f"inference server '{self.type}' ({', '.join(self.requirements) or 'nothing'})")
        return DepSet(source=source, requirements=tuple(parse_pip(r, source) for r in self.requirements))


AZUREML_ONLINE = InferenceServer(
    type="azureml_online",
    requirements=(f"{AZUREML_SERVER_PACKAGE}{AZUREML_SERVER_SUPPORTED}",),
    score=Route(5001, "/score"),
    readiness=Route(5001, "/"),
    liveness=Route(5001, "/"),
    preferred=(f"{AZUREML_SERVER_PACKAGE}=={AZUREML_SERVER_VERSION}",),
    brought_by=("azureml-defaults",),
)

AZUREML_BATCH = InferenceServer(type="azureml_batch", requirements=(), score=None, readiness=None, liveness=None)


def custom_server(
    score: Route, readiness: Route, liveness: Route, command: tuple[str, ...], environment: dict[str, str]
) -> InferenceServer:
    """A server the base environment brings itself: nothing is injected."""
    return InferenceServer("custom", (), score, readiness, liveness, command, tuple(sorted(environment.items())))


def triton_routes(model_name: str, port: int = TRITON_HTTP_PORT) -> tuple[Route, Route, Route]:
    """Triton's own (KServe v2) routes: score, readiness, liveness."""
    return Route(port, f"/v2/models/{model_name}/infer"), Route(port, "/v2/health/ready"), Route(port, "/v2/health/live")


def triton_server(
    score: Route, readiness: Route, liveness: Route, command: tuple[str, ...], environment: dict[str, str]
) -> InferenceServer:
    """NVIDIA Triton, brought by the base image (NVIDIA's) or the environment (the nvidia-pytriton wheel)."""
    return InferenceServer("triton", (), score, readiness, liveness, command, tuple(sorted(environment.items())))
