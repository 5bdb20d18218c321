"""Publish a built image: stage it once as an OCI layout, prepare each output, push, commit the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.emit.oci import (
    EmittedOutput,
    OutputTarget,
    PreparedOutput,
    commit_output,
    discard_output,
    prepare_output,
    staged_image,
)
from compiler.emit.registry import PushResult, PushTarget, push_image
from compiler.emit.skopeo import LogSink
from compiler.oci import referrers


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
            referrers.attach_to_outputs(prepared, refs)
            pushed = push_image(staged, request.push, log) if request.push else None
            index = referrers.push_referrers(refs, pushed.digest, pushed.repository, pushed.tls_verify, log) if pushed and refs else None
        outputs = tuple(commit_output(p) for p in prepared)
    finally:
        for p in prepared:
            discard_output(p)
    return PublishResult(staged.digest, staged.seconds, outputs, pushed, index)
