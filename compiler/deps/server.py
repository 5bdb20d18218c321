"""Source parser: the requirements the inference server injects into every package."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.deps.specs import parse_pip
from compiler.deps.types import DepSet, Source

AZUREML_SERVER_PACKAGE = "azureml-inference-server-http"
AZUREML_SERVER_VERSION = "1.5.1"  # preferred: the version pkgc's tests build and serve
AZUREML_SERVER_SUPPORTED = ">=1.3,<2"  # 1.3 moved to pydantic 2 and werkzeug 3; 2.x is a new major


@dataclass(frozen=True)
class InferenceServer:
    """An inference server: what it needs installed and how it is started and probed."""

    type: str
    requirements: tuple[str, ...]
    default_port: int
    health_route: str
    score_route: str
    preferred: tuple[str, ...] = ()  # exact pins taken when no other source names the package
    brought_by: tuple[str, ...] = ()  # packages that bring the server with their own pin

    def depset(self) -> DepSet:
        source = Source("server", f"inference server '{self.type}' ({', '.join(self.requirements) or 'nothing'})")
        return DepSet(source=source, requirements=tuple(parse_pip(r, source) for r in self.requirements))


AZUREML_ONLINE = InferenceServer(
    type="azureml_online",
    requirements=(f"{AZUREML_SERVER_PACKAGE}{AZUREML_SERVER_SUPPORTED}",),
    default_port=5001,
    health_route="/",
    score_route="/score",
    preferred=(f"{AZUREML_SERVER_PACKAGE}=={AZUREML_SERVER_VERSION}",),
    brought_by=("azureml-defaults",),
)


def custom_server(port: int, health_route: str, score_route: str) -> InferenceServer:
    """A server the base image brings itself: nothing is injected."""
    return InferenceServer("custom", (), port, health_route, score_route)
