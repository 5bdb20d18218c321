"""The build's engine calls over the unix socket (compiler/engines/docker_socket.py) answer as the
Docker SDK does, on the real engine: inspect, list, tag and a load of a one-layer image, whose
progress messages arrive as objects; a refused load is one BuildError line."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from compiler.engines import DockerEngine
from compiler.errors import BuildError

REPOSITORY = "pkgc-e2e/fast-rebuild-socket"


def one_layer_archive(tag: str) -> bytes:
    """A docker-archive of a one-file image (no base), tagged ``tag``."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = f"{tag}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello.txt"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in ((config_name, config), ("layer/layer.tar", layer.getvalue()), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def socket_engine(engine) -> DockerEngine:
    connected = DockerEngine.connect()
    assert connected._socket is not None, "the e2e engine is expected at a unix socket"
    yield connected
    for image_id in connected.image_ids(REPOSITORY):
        connected.remove_image(image_id)


def test_inspect_list_tag_and_load_answer_as_the_sdk_does(socket_engine, base_image):
    sdk = socket_engine._api  # the SDK, made on first use
    info = socket_engine.image_info(base_image)
    assert info is not None and info.id == sdk.inspect_image(base_image)["Id"]
    assert info.layers == tuple(sdk.inspect_image(base_image)["RootFS"]["Layers"])
    assert socket_engine.image_info("pkgc-e2e/no-such-image:1") is None
    assert socket_engine.image_info("docker://example.invalid/x:1") is None  # not an engine reference
    archive = one_layer_archive(f"{REPOSITORY}:1")
    messages = list(socket_engine.load_archive(io.BytesIO(archive), len(archive)))
    assert messages and all(isinstance(m, dict) for m in messages)
    assert any(f"{REPOSITORY}:1" in m.get("stream", "") for m in messages)
    loaded = socket_engine.image_info(f"{REPOSITORY}:1")
    socket_engine.tag(loaded.id, f"{REPOSITORY}:2")
    assert socket_engine.image_info(f"{REPOSITORY}:2").id == loaded.id
    assert socket_engine.image_ids(REPOSITORY) == [image["Id"] for image in sdk.images(name=REPOSITORY)] == [loaded.id]


def test_a_refused_load_is_one_line(socket_engine):
    garbage = b"not a docker archive" * 100
    with pytest.raises(BuildError, match="the engine refused"):
        for message in socket_engine.load_archive(io.BytesIO(garbage), len(garbage)):
            if "error" in message:
                raise BuildError(f"the engine refused the image: {message['error']}")


def test_the_socket_client_on_podman_s_docker_api(podman, podman_service):
    """The same calls through podman's Docker-compatible service (`podman system service`): a build
    with DOCKER_HOST at podman's socket inspects, loads, tags and lists with the socket client too."""
    import subprocess

    engine = DockerEngine.connect(podman_service)
    assert engine._socket is not None
    tag = f"localhost/{REPOSITORY}-podman:1"
    archive = one_layer_archive(tag)
    try:
        messages = list(engine.load_archive(io.BytesIO(archive), len(archive)))
        assert messages and all(isinstance(m, dict) for m in messages) and not any("error" in m for m in messages)
        loaded = engine.image_info(tag)
        listed = subprocess.run([podman, "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True)
        assert loaded is not None and loaded.id.removeprefix("sha256:") == listed.stdout.strip()
        engine.tag(loaded.id, f"localhost/{REPOSITORY}-podman:2")
        assert engine.image_info(f"localhost/{REPOSITORY}-podman:2").id == loaded.id
        assert loaded.id in engine.image_ids(f"localhost/{REPOSITORY}-podman")
        assert engine.image_info("localhost/pkgc-e2e/no-such-image:1") is None
    finally:
        subprocess.run([podman, "rmi", "-f", tag, f"localhost/{REPOSITORY}-podman:2"], capture_output=True)


def test_a_streamed_archive_loads_through_the_socket_and_through_the_sdk(socket_engine):
    """The build's load sends the archive chunked as it is written (size unknown): through the socket
    client, and through the SDK (the path of engines not at a unix socket)."""
    import docker

    from compiler.oci.archive_stream import StreamedArchive

    for engine, tag in ((socket_engine, f"{REPOSITORY}:streamed-socket"), (DockerEngine(client=docker.from_env()), f"{REPOSITORY}:streamed-sdk")):
        archive = one_layer_archive(tag)
        with StreamedArchive(lambda out, data=archive: out.write(data), len(archive), lambda *_: None) as body:
            messages = list(engine.load_archive(body, None))
        assert not any("error" in m for m in messages), messages
        assert any(tag in m.get("stream", "") for m in messages)
        assert socket_engine.image_info(tag) is not None
