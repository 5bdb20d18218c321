"""Container engines behind one small interface (``Engine``); the Docker SDK backend first.

``DockerEngine`` is imported on first use (PEP 562): importing ``compiler.engines.base`` for the
interface does not load the Docker SDK (requests, urllib3: about 0.1 s)."""

from compiler.engines.base import Engine, ImageInfo, RunHandle

__all__ = ["Engine", "ImageInfo", "RunHandle", "DockerEngine"]


def __getattr__(name: str):
    if name == "DockerEngine":
        from compiler.engines.docker_engine import DockerEngine

        return DockerEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
