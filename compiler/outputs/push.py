"""``--push REGISTRY/REPO[:TAG]``: copy the staged OCI layout to a registry and report its digest.

The push is ``skopeo copy oci:STAGE docker://REGISTRY/REPO:TAG``: the same manifest bytes as the
``oci:``/``oci-archive:`` outputs, so the digest is identical everywhere. TLS is verified, except
for loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``), which may speak plain HTTP.
Credentials are skopeo's own (``skopeo login`` / ``docker login``); pkgc never handles them.
"""

from __future__ import annotations

from compiler.oci.reference import PushResult, PushTarget
from compiler.oci.skopeo import LogSink, skopeo_copy
from compiler.outputs.targets import StagedImage

def push_image(staged: StagedImage, target: PushTarget, log: LogSink) -> PushResult:
    """Copy the staged layout to ``target``; the digest is the one skopeo wrote for the pushed manifest."""
    reference = target.reference(target.tag or staged.tag)
    tls_verify = not target.loopback
    # --preserve-digests: the registry gets the very manifest built (skopeo would otherwise compress
    # the OCI back end's uncompressed model layer and push another digest); --all: an image index
    # goes with every platform's image
    options = ["--preserve-digests", "--all"] + ([] if tls_verify else ["--dest-tls-verify=false"])
    copied = skopeo_copy(staged.reference, f"docker://{reference}", log, options)
    return PushResult(reference, copied.digest, tls_verify, copied.seconds)
