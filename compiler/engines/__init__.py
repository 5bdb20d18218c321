"""Container engines behind one small interface (``Engine``); the Docker SDK backend first."""

from compiler.engines.base import Engine, ImageInfo, RunHandle
from compiler.engines.docker_engine import DockerEngine

__all__ = ["Engine", "ImageInfo", "RunHandle", "DockerEngine"]
