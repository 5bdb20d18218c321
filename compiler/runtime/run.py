"""Start a package: read what it expects from its labels, mount the model read-only when asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.engines.base import Engine, Mount, RunHandle
from compiler.errors import ResolveError, VerifyError
from compiler.runtime.http import wait_ready
from compiler.workspace import Workspace


@dataclass(frozen=True)
class PackageLabels:
    """The run-time contract a pkgc image states in its labels."""

    mode: str
    model_dir: str
    model_tree: str
    model_ref: str
    port: int
    health_route: str
    score_route: str

    @property
    def needs_mount(self) -> bool:
        return self.mode != "copy"


def package_labels(engine: Engine, image: str) -> PackageLabels:
    info = engine.image_info(image)
    if info is None:
        raise ResolveError(f"image '{image}' is not in the local engine")
    labels = info.labels
    if "io.pkgc.model.mode" not in labels:
        raise ResolveError(f"image '{image}' is not a pkgc package (no io.pkgc.* labels)")
    return PackageLabels(
        mode=labels["io.pkgc.model.mode"],
        model_dir=labels["io.pkgc.model.dir"],
        model_tree=labels.get("io.pkgc.model.tree", "").removeprefix("sha256:"),
        model_ref=f"{labels.get('io.pkgc.model.name')}:{labels.get('io.pkgc.model.version')}",
        port=int(labels.get("io.pkgc.port", "5001")),
        health_route=labels.get("io.pkgc.route.health", "/"),
        score_route=labels.get("io.pkgc.route.score", "/score"),
    )


def model_mount(labels: PackageLabels, workspace: Workspace, model_path: Path | None) -> list[Mount]:
    """The read-only model mount a readonly_mount package needs (none for copy packages)."""
    if not labels.needs_mount:
        return []
    source = model_path or workspace.tree_path(labels.model_tree)
    if not source.is_dir():
        raise ResolveError(
            f"the package expects model {labels.model_ref} mounted at {labels.model_dir}, but its files "
            f"(sha256:{labels.model_tree}) are not in workspace {workspace.root}; pass --model-path"
        )
    return [Mount(source.resolve(), labels.model_dir, read_only=True)]


def start_package(
    engine: Engine,
    image: str,
    workspace: Workspace,
    host_port: int | None = None,
    model_path: Path | None = None,
    mount_model: bool = True,
    env: dict[str, str] | None = None,
    name: str | None = None,
    network: str | None = None,
) -> tuple[RunHandle, PackageLabels]:
    labels = package_labels(engine, image)
    mounts = model_mount(labels, workspace, model_path) if mount_model else []
    handle = engine.run(image, labels.port, host_port, mounts, env or {}, network=network, name=name)
    return handle, labels


def wait_until_ready(engine: Engine, handle: RunHandle, labels: PackageLabels, timeout: float) -> float:
    """Wait for the health route; on failure the error carries the container's last log lines."""
    url = f"http://127.0.0.1:{handle.host_port}{labels.health_route}"
    try:
        return wait_ready(url, timeout, lambda: engine.container_running(handle.container_id))
    except VerifyError as exc:
        code = engine.exit_code(handle.container_id)
        reason = f"the package exited with code {code} before {labels.health_route} answered" if code is not None else str(exc)
        tail = " | ".join(engine.logs(handle.container_id).strip().splitlines()[-5:])
        raise VerifyError(f"{reason}; container log: {tail}") from None
