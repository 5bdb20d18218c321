"""Publish a built image: stage it once as an OCI layout, prepare each output, push, commit the outputs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.errors import BuildError
from compiler.oci.reference import PushResult, PushTarget
from compiler.oci.skopeo import LogSink, skopeo_copy
from compiler.oci.referrers import push_referrers
from compiler.outputs.push import push_image
from compiler.outputs.attach import attach_to_outputs
from compiler.outputs.targets import (
    EmittedOutput,
    OutputTarget,
    PreparedOutput,
    StagedImage,
    commit_output,
    default_tag,
    discard_output,
)


@dataclass(frozen=True)
class PublishRequest:
    """What to publish: an image in the local Docker engine, its outputs and an optional push."""

    image: str
    outputs: tuple[OutputTarget, ...] = ()
    push: PushTarget | None = None
    daemon_host: str | None = None  # skopeo's --src-daemon-host; None is the default socket
    attest: Any = None  # compiler.oci.referrers.Attest: the referrers (SBOM, provenance) to attach

    @property
    def empty(self) -> bool:
        return not self.outputs and self.push is None


@dataclass(frozen=True)
class PublishResult:
    """Every output written, the push (if any), and the manifest digest they share."""

    digest: str
    stage_seconds: float
    outputs: tuple[EmittedOutput, ...]
    push: PushResult | None
    referrers_pushed: Any = None  # compiler.oci.referrers.PushedReferrers: the fallback tag sha256-<hex>


def publish(request: PublishRequest, log: LogSink) -> PublishResult:
    """Stage ``request.image``, prepare every output, push, then move the outputs into place.

    A failure anywhere (staging, an output, the push) leaves no new output behind."""
    prepared: list[PreparedOutput] = []
    try:
        with staged_image(request.image, log, request.daemon_host) as staged:
            log(f"staged {request.image} as OCI manifest {staged.digest} in {staged.seconds:.1f} s")
            refs = request.attest(staged.layout, staged.tag, staged.digest) if request.attest else ()
            for target in request.outputs:
                prepared.append(prepare_output(staged, target, log))
            attach_to_outputs(prepared, refs)
            pushed = push_image(staged, request.push, log) if request.push else None
            index = push_referrers(refs, pushed.digest, pushed.repository, pushed.tls_verify, log) if pushed and refs else None
        outputs = tuple(commit_output(p) for p in prepared)
    finally:
        for p in prepared:
            discard_output(p)
    return PublishResult(staged.digest, staged.seconds, outputs, pushed, index)


@contextmanager
def staged_image(image: str, log: LogSink, daemon_host: str | None = None) -> Iterator[StagedImage]:
    """Copy ``image`` from the local Docker engine into a temporary OCI layout; removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="pkgc-stage-"))
    try:
        tag = default_tag(image)
        options = ["--src-daemon-host", daemon_host] if daemon_host else []
        copied = skopeo_copy(f"docker-daemon:{image}", f"oci:{scratch / 'layout'}:{tag}", log, options)
        yield StagedImage(image, scratch / "layout", tag, copied.digest, copied.seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def prepare_output(staged: StagedImage, target: OutputTarget, log: LogSink) -> PreparedOutput:
    """Copy the staged layout into a temporary folder beside ``target`` (same file system, so renames are atomic)."""
    tag = target.tag or staged.tag
    path = target.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.pkgc-", dir=path.parent))
    except OSError as exc:
        raise BuildError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if target.kind == "oci":
            written = scratch / "layout"
            copied = skopeo_copy(staged.reference, f"oci:{written}:{tag}", log)
            size = sum(f.stat().st_size for f in written.rglob("*") if f.is_file())
        else:
            written = scratch / "image.tar"
            copied = skopeo_copy(staged.reference, f"oci-archive:{written}:{tag}", log)
            size = written.stat().st_size
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return PreparedOutput(EmittedOutput(target.kind, path, tag, copied.digest, size, copied.seconds), written, scratch)
