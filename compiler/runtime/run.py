"""Start a package: read what it expects from its labels, mount the model read-only when asked."""

from __future__ import annotations

import re
from pathlib import Path

from compiler.engines.base import Engine, Mount, RunHandle
from compiler.engines.gpus import GpuRequest
from compiler.errors import ResolveError, VerifyError, excerpt
from compiler.labels import PackageLabels
from compiler.runtime.http import wait_ready
from compiler.workspace import Workspace

TRACEBACK = "Traceback (most recent call last):"
FRAME_RE = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$')
# The line that ends a traceback: a (dotted) exception name, alone or with its message.
EXCEPTION_LINE_RE = re.compile(r"^[A-Za-z_][\w.]*(?::\s.*|:)?$")
INTERLEAVED_LINES = 50  # other writers' lines that may come between the frames and the exception line
ERROR_RE = re.compile(r"^pkgc: |\b[A-Z]\w*(?:Error|Exception)\b|\b(?:ERROR|FATAL|CRITICAL|Error|error)\b")


def package_labels(engine: Engine, image: str) -> PackageLabels:
    """The image's label contract, checked (labels are untrusted input)."""
    info = engine.image_info(image)
    if info is None:
        raise ResolveError(f"image '{excerpt(image)}' is not in the local engine")
    return PackageLabels.from_labels(image, info.labels)


def model_mount(labels: PackageLabels, workspace: Workspace, model_path: Path | None) -> list[Mount]:
    """The read-only model mount a readonly_mount package needs (none for copy packages)."""
    if not labels.needs_mount:
        return []
    source = model_path.resolve() if model_path else workspace.stored_tree(labels.model_tree)
    if source is None or not source.is_dir():
        raise ResolveError(
            f"the package expects model {labels.model_ref} mounted at {labels.model_dir}, but its files "
            f"(sha256:{labels.model_tree}) are not in workspace {workspace.root}; pass --model-path"
        )
    return [Mount(source, labels.model_dir, read_only=True)]


def input_mounts(image: str, labels: PackageLabels, workspace: Workspace) -> list[Mount]:
    """Read-only mounts of the inputs a readonly_mount package expects (from this workspace's trees)."""
    from compiler.package_inputs import from_labels, stored_input

    mode, places = from_labels(image, labels.extra)
    if mode == "copy":
        return []
    mounts = []
    for place in places:
        source = stored_input(workspace, place)
        if source is None:
            raise ResolveError(f"the package expects input {place.type} sha256:{place.tree} mounted at {place.path}, "
                               f"but it is not in workspace {workspace.root}")  # fmt: skip
        mounts.append(Mount(source, place.path, read_only=True))
    return mounts


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
    gpus: GpuRequest | None = None,
) -> tuple[RunHandle, PackageLabels]:
    labels = package_labels(engine, image)
    if labels.is_job:
        raise ResolveError(
            f"image '{excerpt(image)}' is a batch package ({labels.server}): it serves no HTTP; "
            "run it as a job with 'pkgc run --batch IMAGE --input DIR --output DIR'"
        )
    mounts = model_mount(labels, workspace, model_path) if mount_model else []
    if mount_model:
        mounts += input_mounts(image, labels, workspace)
    handle = engine.run(image, labels.ports, host_port, mounts, env or {}, network=network, name=name, gpus=gpus)
    return handle, labels


def readiness_url(handle: RunHandle, labels: PackageLabels) -> str:
    """The readiness route on the host port its container port is published on."""
    return f"http://127.0.0.1:{handle.host_port_of(labels.readiness.port)}{labels.readiness.path}"


def score_url(handle: RunHandle, labels: PackageLabels) -> str:
    return f"http://127.0.0.1:{handle.host_port_of(labels.score.port)}{labels.score.path}"


def first_error(log: str) -> str | None:
    """The first error a server printed: the exception line that ends its first traceback, with the
    innermost frame; else the first line that says error; None when there is neither. (A server that
    crashes goes on printing: its last line is rarely the cause.)"""
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if TRACEBACK not in line:
            continue
        frame, other = None, []
        for follow in lines[index + 1 :]:
            if not follow.strip():
                continue
            if follow[:1].isspace():  # a frame, its source line, its carets
                frame = FRAME_RE.match(follow) or frame
                continue
            if EXCEPTION_LINE_RE.match(follow.strip()):
                return excerpt(follow.strip(), 200) + excerpt(where_of(frame), 160)
            other.append(follow)  # another writer's line in the same log (stdout and stderr merged)
            if len(other) >= INTERLEAVED_LINES:
                break
        if other:  # no exception line: the first line after the frames, as before
            return excerpt(other[0].strip(), 200) + excerpt(where_of(frame), 160)
        break  # a traceback cut short: look for an error line instead
    return next((excerpt(line.strip(), 200) for line in lines if ERROR_RE.search(line)), None)


def where_of(frame: re.Match | None) -> str:
    """" (at FILE:LINE, in FUNC)" for a traceback's innermost frame; empty without one."""
    return f" (at {frame['file']}:{frame['line']}{', in ' + frame['func'] if frame['func'] else ''})" if frame else ""


def crash_report(log: str) -> str:
    """One line on a server's log: its first error and its last line, or its last lines."""
    lines = [line.strip() for line in log.splitlines() if line.strip(" ^~\t")]
    error = first_error(log)
    if error is None:
        return f"container log: {' | '.join(excerpt(line, 200) for line in lines[-5:]) or '(empty)'}"
    last = excerpt(lines[-1], 200) if lines else ""
    return f"first error: {error}" + (f"; last line: {last}" if last and last not in error else "")


def wait_until_ready(engine: Engine, handle: RunHandle, labels: PackageLabels, timeout: float) -> float:
    """Wait for the health route; on failure the error carries the server's first error (else its last lines)."""
    url = readiness_url(handle, labels)
    try:
        return wait_ready(url, timeout, lambda: engine.container_running(handle.container_id))
    except VerifyError as exc:
        code = engine.exit_code(handle.container_id)
        reason = f"the package exited with code {code} before {labels.readiness.path} answered" if code is not None else str(exc)
        raise VerifyError(f"{reason}; {crash_report(engine.logs(handle.container_id))}") from None
