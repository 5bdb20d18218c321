"""Docker engine backend, driven through the ``docker`` Python SDK (legacy builder, no BuildKit).

An engine at a unix socket (the default, or ``DOCKER_HOST=unix://...``) answers a build's inspect,
list, load and tag calls through ``compiler/engines/docker_socket.py``; the SDK is imported on the
first call that needs it (containers, Dockerfile builds, save), so a build that only loads an
OCI-built image never imports it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable, Iterator

from compiler.engines.base import ImageInfo, LogSink, Mount, RunHandle
from compiler.engines.docker_socket import SocketApi
from compiler.engines.gpus import GpuRequest, dropped_message, no_gpu_message, no_gpu_support
from compiler.errors import BuildError, EngineUnavailable, ResolveError, SpecError, SpecProblem, excerpt


# Seconds an engine call may go without a byte back. The SDK's 60 s is too short for a multi-GB layer:
# dockerd answers a load only once it has unpacked the layer (a 3.2 GB torch environment took longer here).
READ_TIMEOUT_S = 900
PING_TIMEOUT_S = 60  # the SDK's: an engine that does not answer is found soon
DEFAULT_HOST = "unix:///var/run/docker.sock"

if TYPE_CHECKING:
    import docker
    import docker.errors


def run_error(
    exc: docker.errors.APIError, image: str, host_port: int | None, name: str | None,
    gpus: GpuRequest | None = None, engine: str = "docker",
) -> Exception:  # fmt: skip
    """One line for an engine refusal to start a container: the user's (exit 2) or the engine's (exit 3)."""
    text = str(exc.explanation or exc)
    if gpus is not None and no_gpu_support(text):
        return BuildError(no_gpu_message(engine, gpus, text))
    if "port is already allocated" in text or "address already in use" in text:
        where = f"port {host_port}" if host_port else "the port"
        return SpecError(SpecProblem("--port", "", f"{where} on 127.0.0.1 is already in use; choose another with --port"))
    if exc.status_code == 409 and name:
        return SpecError(SpecProblem("--name", "", f"a container named '{excerpt(name)}' already exists"))
    return BuildError(f"the engine could not start {excerpt(image)}: {excerpt(text, 200)}")


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


class DockerEngine:
    """A connection to one Docker engine; every image build runs with the network off."""

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None, socket: SocketApi | None = None):
        if client is None and socket is None:
            raise ValueError("DockerEngine needs an SDK client or a socket")
        self._sdk = client
        self._socket = socket
        self._flavor: str | None = None

    @property
    def _client(self) -> docker.DockerClient:
        """The SDK's client, made on first use for an engine connected through its socket."""
        if self._sdk is None:
            import docker

            self._sdk = docker.DockerClient(base_url=f"unix://{self._socket.path}")
            self._sdk.api.timeout = READ_TIMEOUT_S
        return self._sdk

    @property
    def _api(self):
        return self._client.api

    @property
    def flavor(self) -> str:
        """Which engine answers the Docker API: "docker", or "podman" (its Docker-compatible service)."""
        if self._flavor is None:
            components = self._api.version().get("Components") or []
            names = " ".join(str(c.get("Name", "")) for c in components if isinstance(c, dict))
            self._flavor = "podman" if "podman" in names.lower() else "docker"
        return self._flavor

    def _device_requests(self, gpus: GpuRequest | None) -> list | None:
        if gpus is None:
            return None
        req = gpus.device_request(self.flavor)
        import docker.types

        return [docker.types.DeviceRequest(driver=req["Driver"], count=req["Count"], device_ids=req["DeviceIDs"],
                                           capabilities=req["Capabilities"])]  # fmt: skip

    @classmethod
    def connect(cls, base_url: str | None = None) -> "DockerEngine":
        """Connect to the engine at ``base_url`` (or DOCKER_HOST / the default socket)."""
        host = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        if host.startswith("unix://"):
            socket = SocketApi(host.removeprefix("unix://"), READ_TIMEOUT_S)
            try:
                socket.ping(PING_TIMEOUT_S)
            except Exception as exc:
                raise EngineUnavailable(
                    f"no Docker engine answers ({type(exc).__name__}); start one (see README: scripts/ensure-engine.sh)"
                ) from None
            return cls(socket=socket)
        import docker

        try:
            client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
            client.ping()  # with the SDK's 60 s: an engine that does not answer is found soon
        except Exception as exc:  # the SDK raises several unrelated types for "no engine"
            raise EngineUnavailable(
                f"no Docker engine answers ({type(exc).__name__}); start one (see README: scripts/ensure-engine.sh)"
            ) from None
        client.api.timeout = READ_TIMEOUT_S
        return cls(client)

    def image_info(self, ref: str) -> ImageInfo | None:
        if self._socket is not None:
            data = self._socket.inspect_image(ref)
            if data is None:
                return None
        else:
            import docker.errors

            try:
                data = self._api.inspect_image(ref)
            except docker.errors.ImageNotFound:
                return None
            except docker.errors.APIError as exc:
                if exc.status_code in (400, 404):  # 400: not an engine reference (docker://..., oci:...)
                    return None
                raise
        config = data.get("Config") or {}
        return ImageInfo(
            id=data["Id"],
            tags=tuple(data.get("RepoTags") or ()),
            labels=dict(config.get("Labels") or {}),
            env=tuple(config.get("Env") or ()),
            size=int(data.get("Size") or 0),
            layers=tuple((data.get("RootFS") or {}).get("Layers") or ()),
        )

    def image_ids(self, repository: str) -> list[str]:
        """Ids of the engine's images tagged in ``repository``."""
        if self._socket is not None:
            return self._socket.image_ids(repository)
        return [image["Id"] for image in self._api.images(name=repository)]

    def load_archive(self, archive: BinaryIO | Iterable[bytes], size: int | None) -> Iterator[dict]:
        """``docker load`` of a docker-archive of ``size`` bytes (None: the blocks ``archive`` yields,
        sent chunked); the engine's progress messages."""
        if self._socket is not None:
            return self._socket.load(archive, size)
        # quiet=False: the engine reports each layer as it applies it, so a multi-GB layer never
        # leaves the connection silent past the client's read timeout
        return self._api.load_image(archive, quiet=False)

    def build(self, context: BinaryIO, tag: str, log: LogSink, no_cache: bool = False) -> str:
        """Build the tar ``context`` with the network off; tag only on success; return the image id."""
        import docker.errors

        image_id = None
        stream = self._api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="none",
            nocache=no_cache,
            decode=True,
        )
        try:
            for chunk in stream:
                if "stream" in chunk:
                    text = chunk["stream"]
                    log(text)
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                    raise BuildError(f"image build failed: {detail.strip()}")
        except docker.errors.APIError as exc:
            raise BuildError(f"image build failed: {exc.explanation or exc}") from None
        if image_id is None:
            info = self.image_info(tag)
            if info is None:
                raise BuildError("image build finished without producing an image")
            image_id = info.id
        return image_id

    def import_rootfs(self, rootfs_tar: Path, ref: str, changes: list[str]) -> str:
        repository, _, tag = ref.rpartition(":")
        # A generator: the SDK sends a chunked body, which a plain file object would not frame.
        out = self._api.import_image_from_stream(_chunks(rootfs_tar), repository=repository, tag=tag, changes=changes)
        last = {}
        for line in (out.splitlines() if isinstance(out, str) else [out]):
            try:
                last = json.loads(line)
            except (ValueError, TypeError):
                continue
        if "error" in last:
            raise BuildError(f"importing {rootfs_tar} failed: {last['error']}")
        info = self.image_info(ref)
        if info is None:
            raise BuildError(f"importing {rootfs_tar} produced no image {ref}")
        return info.id

    def tag(self, image_id: str, ref: str) -> None:
        repository, _, tag = ref.rpartition(":")
        if self._socket is not None:
            self._socket.tag(image_id, repository, tag)
        else:
            self._api.tag(image_id, repository, tag)

    def remove_image(self, ref: str) -> None:
        import docker.errors

        try:
            self._api.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            pass

    def save(self, ref: str) -> Iterator[bytes]:
        return self._client.images.get(ref).save(named=True)

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
    ) -> RunHandle:
        """Start ``image`` with every container port published on loopback: the first on ``host_port``
        (None: any free port), the others on free ports. ``command`` replaces the image's CMD; ``gpus``
        passes GPUs (compiler/engines/gpus.py), refused when the engine drops the request."""
        import docker.errors

        if isinstance(container_ports, int):  # one port, as callers before the port map passed it
            container_ports = (container_ports,)
        ports = {}
        if network != "none":
            for index, port in enumerate(container_ports):
                ports[f"{port}/tcp"] = ("127.0.0.1", host_port if index == 0 else None)
        try:
            container = self._client.containers.create(
                image,
                command=command,
                detach=True,
                name=name,
                environment=env,
                ports=ports,
                network_mode=network,
                user=user,
                volumes={str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in mounts},
                device_requests=self._device_requests(gpus),
            )
        except docker.errors.ImageNotFound:
            raise ResolveError(f"image '{excerpt(image)}' is not in the local engine") from None
        except docker.errors.APIError as exc:
            raise run_error(exc, image, host_port, name, gpus, self.flavor if gpus else "docker") from None
        except docker.errors.InvalidVersion as exc:  # device requests need API 1.40 (Docker 19.03)
            raise BuildError(f"the engine cannot pass GPUs ({gpus}): {excerpt(str(exc), 160)}") from None
        if gpus is not None and not (container.attrs.get("HostConfig") or {}).get("DeviceRequests"):
            container.remove(force=True)  # it would start on the CPU without a word
            raise BuildError(dropped_message(self.flavor, gpus, image))
        try:
            container.start()
        except docker.errors.APIError as exc:
            container.remove(force=True)  # nothing is left behind in state Created
            raise run_error(exc, image, host_port, name, gpus, self.flavor if gpus else "docker") from None
        published: dict[int, int] = {}
        if ports:
            container.reload()
            bindings = container.attrs["NetworkSettings"]["Ports"] or {}
            for port in container_ports:
                if bindings.get(f"{port}/tcp"):
                    published[port] = int(bindings[f"{port}/tcp"][0]["HostPort"])
        first = published.get(container_ports[0], host_port or 0) if container_ports else 0
        return RunHandle(container_id=container.id, host_port=first, ports=published)

    def wait(self, container_id: str, timeout: float | None = None) -> int:
        """Wait for the container to exit; return its exit code."""
        result = self._client.containers.get(container_id).wait(timeout=timeout)
        return int(result.get("StatusCode", 1))

    def run_command(self, image: str, command: list[str]) -> tuple[int, str]:
        """Run ``command`` in a throw-away container with the network off; return (exit code, output)."""
        container = self._client.containers.create(image, command=command, network_mode="none", entrypoint=[])
        try:
            container.start()
            result = container.wait(timeout=120)
            return int(result.get("StatusCode", 1)), container.logs().decode("utf-8", "replace")
        finally:
            container.remove(force=True)

    def read_file(self, image: str, path: str, limit: int) -> bytes | None:
        """The bytes of the regular file ``path`` in ``image`` (None: no such file), read from a created,
        never started, container (no shell needed in the image); at most ``limit`` bytes."""
        import io
        import tarfile

        import docker.errors
        import docker.utils

        try:
            container = self._client.containers.create(image, command=["/"], entrypoint=[], network_mode="none")
        except docker.errors.ImageNotFound:
            raise ResolveError(f"image '{excerpt(image)}' is not in the local engine") from None
        try:
            # stat first (HEAD): a folder's or a large file's archive is never streamed
            head = self._api.head(self._api._url("/containers/{0}/archive", container.id), params={"path": path})
            if head.status_code == 404:
                return None
            head.raise_for_status()
            stat = docker.utils.decode_json_header(head.headers.get("X-Docker-Container-Path-Stat", "")) or {}
            if int(stat.get("mode", 0)) & (1 << 31 | 1 << 27):  # Go's ModeDir, ModeSymlink: not a regular file
                return None
            if not 0 <= int(stat.get("size", 0)) <= limit:
                raise ResolveError(f"image '{excerpt(image)}': {path} is larger than {limit} bytes")
            stream, _ = container.get_archive(path)
            data = b"".join(stream)
        finally:
            container.remove(force=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                return None
            return tar.extractfile(member).read(limit + 1)[:limit]

    def logs(self, container_id: str) -> str:
        return self._client.containers.get(container_id).logs().decode("utf-8", "replace")

    def container_running(self, container_id: str) -> bool:
        container = self._client.containers.get(container_id)
        container.reload()
        return container.status == "running"

    def exit_code(self, container_id: str) -> int | None:
        container = self._client.containers.get(container_id)
        container.reload()
        if container.status in ("exited", "dead"):
            return int(container.attrs["State"]["ExitCode"])
        return None

    def stop(self, container_id: str, remove: bool = True) -> None:
        import docker.errors

        try:
            container = self._client.containers.get(container_id)
        except docker.errors.NotFound:
            return
        try:
            container.stop(timeout=5)
        except docker.errors.APIError:
            pass
        if remove:
            container.remove(force=True)
