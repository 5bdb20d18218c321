"""The part of the engine interface ``pkgc verify`` uses (labels, run, logs, files, stop), answered by
one image run under qemu-user (``compiler.runtime.qemu.QemuContainer``) instead of a container engine,
so the verify flow (``compiler.runtime.verify``) is the same for a foreign platform. The server shares
the host's network: each container port is its own host port."""

from __future__ import annotations

from compiler.engines.base import ImageInfo, Mount, RunHandle
from compiler.engines.gpus import GpuRequest
from compiler.errors import ResolveError, excerpt
from compiler.runtime.qemu import Mount as QemuMount
from compiler.runtime.qemu import QemuContainer, QemuProcess


class QemuEngine:
    name = "qemu"

    def __init__(self, container: QemuContainer, image: str):
        self.container, self.image = container, image
        self._processes: dict[str, QemuProcess] = {}

    def _known(self, ref: str) -> None:
        if ref != self.image:
            raise ResolveError(f"image '{excerpt(ref)}' is not the one unpacked for qemu ('{excerpt(self.image)}')")

    def image_info(self, ref: str) -> ImageInfo | None:
        self._known(ref)
        config = self.container.config
        labels = config.get("Labels") if isinstance(config.get("Labels"), dict) else {}
        env = config.get("Env") if isinstance(config.get("Env"), list) else []
        return ImageInfo(self.container.name, (ref,), {str(k): str(v) for k, v in labels.items()}, tuple(map(str, env)))

    def run(self, image: str, container_ports: tuple[int, ...] | int, host_port: int | None, mounts: list[Mount],
            env: dict[str, str], network: str | None = None, name: str | None = None, command: list[str] | None = None,
            user: str | None = None, gpus: GpuRequest | None = None) -> RunHandle:  # fmt: skip
        self._known(image)
        ports = (container_ports,) if isinstance(container_ports, int) else tuple(container_ports)
        if gpus is not None or network is not None:
            raise ResolveError(f"under qemu-user pkgc runs the image's server with no engine: --gpus and a network "
                               f"are not available ({self.container.platform})")  # fmt: skip
        if host_port is not None and ports and host_port != ports[0]:
            raise ResolveError(f"under qemu-user the server binds its own port {ports[0]} on this host, not {host_port}")
        process = self.container.start(ports[0] if ports else None, command, env,
                                       [QemuMount(m.source, m.target, m.read_only) for m in mounts], ports, user)  # fmt: skip
        self._processes[process.id] = process
        return RunHandle(process.id, ports[0] if ports else 0, {p: p for p in ports})

    def read_file(self, image: str, path: str, limit: int) -> bytes | None:
        self._known(image)
        return self.container.read_file(path, limit)

    def logs(self, container_id: str) -> str:
        return self._processes[container_id].output()

    def container_running(self, container_id: str) -> bool:
        return self._processes[container_id].running()

    def exit_code(self, container_id: str) -> int | None:
        return self._processes[container_id].exit_code()

    def stop(self, container_id: str, remove: bool = True) -> None:
        process = self._processes.pop(container_id, None)
        if process is not None:
            process.stop()
