"""Emit stage: what happens to a built image after the build.

- ``oci``: ``--output oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]``, written atomically.
- ``registry``: ``--push REGISTRY/REPO[:TAG]``, reporting the manifest digest.
- ``publish``: stages the image once and runs both, so every output shares one digest.
- ``deploy``: ``--deploy-settings app-service|kubernetes`` from the image's ``io.pkgc.*`` labels.

Copies are made by skopeo (see ``skopeo``), which writes spec-conformant layouts and archives and
pushes without daemon configuration; the Docker SDK can push but writes no OCI layout.
"""

from compiler.emit.deploy import DeployFacts, DeploySettings, deploy_facts, deploy_settings
from compiler.emit.errors import TargetSyntaxError
from compiler.emit.oci import EmittedOutput, OutputTarget, parse_output
from compiler.emit.publish import PublishRequest, PublishResult, publish
from compiler.emit.registry import PushResult, PushTarget, parse_push

__all__ = [
    "DeployFacts", "DeploySettings", "EmittedOutput", "OutputTarget", "PublishRequest", "PublishResult",
    "PushResult", "PushTarget", "TargetSyntaxError", "deploy_facts", "deploy_settings", "parse_output",
    "parse_push", "publish",
]  # fmt: skip
