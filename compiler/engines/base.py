"""The engine interface: what the build, emit and run stages need from a container engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Protocol

from compiler.engines.gpus import GpuRequest

LogSink = Callable[[str], None]


@dataclass(frozen=True)
class ImageInfo:
    """What pkgc reads back from a built or imported image."""

    id: str
    tags: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    size: int = 0
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class RunHandle:
    """A started container: its id, the host port of its first (scoring) port, and every published
    container port with the host port it is published on."""

    container_id: str
    host_port: int
    ports: dict[int, int] = field(default_factory=dict)

    def host_port_of(self, container_port: int) -> int:
        return self.ports.get(container_port, self.host_port)


class Engine(Protocol):
    name: str

    def image_info(self, ref: str) -> ImageInfo | None: ...

    def build(self, context: BinaryIO, tag: str, log: LogSink, no_cache: bool = False) -> str: ...

    def import_rootfs(self, rootfs_tar: Path, ref: str, changes: list[str]) -> str: ...

    def tag(self, image_id: str, ref: str) -> None: ...

    def remove_image(self, ref: str) -> None: ...

    def save(self, ref: str) -> Iterator[bytes]: ...

    def run(
        self,
        image: str,
        container_ports: tuple[int, ...] | int,
        host_port: int | None,
        mounts: list[Mount],
        env: dict[str, str],
        network: str | None = None,
        name: str | None = None,
        command: list[str] | None = None,
        user: str | None = None,
        gpus: GpuRequest | None = None,
    ) -> RunHandle: ...

    def wait(self, container_id: str, timeout: float | None = None) -> int: ...

    def run_command(self, image: str, command: list[str]) -> tuple[int, str]: ...

    def read_file(self, image: str, path: str, limit: int) -> bytes | None: ...

    def logs(self, container_id: str) -> str: ...

    def container_running(self, container_id: str) -> bool: ...

    def exit_code(self, container_id: str) -> int | None: ...

    def stop(self, container_id: str, remove: bool = True) -> None: ...
