"""Publish an OCI-built image from pkgc's store: every ``--output`` written from the stored blobs
(no engine, no recompression), a push through skopeo from a layout of the same blobs; all carry the
build's manifest digest. Outputs are renamed into place only once everything succeeded."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from compiler.cache.owner import staging_name
from compiler.errors import BuildError
from compiler.oci import native_push, outputs, referrers
from compiler.oci.skopeo import LogSink
from compiler.oci.store import OciStore
from compiler.outputs.attach import attach_to_outputs
from compiler.outputs.publish import PublishRequest, PublishResult
from compiler.outputs.push import push_image
from compiler.outputs.targets import EmittedOutput, OutputTarget, PreparedOutput, StagedImage, commit_output, default_tag, discard_output


def publish_stored(store: OciStore, manifest_digest: str, request: PublishRequest, log: LogSink) -> PublishResult:
    image = outputs.StoredImage.read(store, manifest_digest)
    tag = default_tag(request.image)
    prepared: list[PreparedOutput] = []
    scratch = Path(tempfile.mkdtemp(prefix=staging_name("pkgc-stage-"), dir=store.root))  # a killed run's: swept by the next
    try:
        refs = request.attest(store.root, request.image, manifest_digest) if request.attest else ()
        native = request.push is not None and native_push.wanted(store, image, request.push)
        if request.outputs or (request.push is not None and not native):  # blobs found in the cache: their bytes now
            native_push.fetch_missing(store, image.blobs, log)
        for target in request.outputs:
            prepared.append(prepare(store, image, target, tag))
        attach_to_outputs(prepared, refs)
        pushed, index = None, None
        if native:
            pushed = native_push.push_stored(store, image, request.push, request.push.tag or tag, log)  # type: ignore[arg-type]
        elif request.push is not None:
            started = time.monotonic()
            outputs.write_layout(store, image, scratch / "layout", tag)
            staged = StagedImage(request.image, scratch / "layout", tag, manifest_digest, time.monotonic() - started)
            pushed = push_image(staged, request.push, log)
        if pushed is not None and refs:
            index = referrers.push_referrers(refs, pushed.digest, pushed.repository, pushed.tls_verify, log)
        written = tuple(commit_output(p) for p in prepared)
    finally:
        for p in prepared:
            discard_output(p)
        shutil.rmtree(scratch, ignore_errors=True)
    return PublishResult(manifest_digest, 0.0, written, pushed, index)


def prepare(store: OciStore, image: outputs.StoredImage, target: OutputTarget, default_tag: str) -> PreparedOutput:
    """Write one ``--output`` beside its target, ready to be renamed into place."""
    started = time.monotonic()
    tag = target.tag or default_tag
    try:
        target.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.path.name}.pkgc-", dir=target.path.parent))
    except OSError as exc:
        raise BuildError(f"cannot write {target.path}: {exc.strerror or exc}") from None
    try:
        if target.kind == "oci":
            written = scratch / "layout"
            size = outputs.write_layout(store, image, written, tag)
        else:
            written = scratch / "image.tar"
            size = outputs.write_archive(store, image, written, tag)
    except OSError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise BuildError(f"cannot write {target.path}: {exc.strerror or exc}") from None
    emitted = EmittedOutput(target.kind, target.path, tag, image.manifest_digest, size, time.monotonic() - started)
    return PreparedOutput(emitted, written, scratch)
