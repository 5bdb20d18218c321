"""``pkgc verify IMAGE [--platform linux/arm64]``: check every ELF file is built for the platform,
start the package (in the engine, or under qemu-user for another platform), check its health route
and a scoring request, clean up.

Exit codes: 0 passed, 2 bad input (request/expect file, unknown image, model not in the
workspace; a foreign platform without root or qemu-user-static), 4 verification failed (foreign ELF
files named; the reason and the server's last log lines), 5 no engine.
"""

from __future__ import annotations

import json
from pathlib import Path

from dataclasses import replace
from typing import TYPE_CHECKING

from compiler.commands import connect_engine, print_result
from compiler.engines.gpus import parse_gpus
from compiler.errors import SpecError, SpecProblem
from compiler.platform import Platform

if TYPE_CHECKING:
    from compiler.runtime.verify import VerifyRequest


def register(sub) -> None:
    p = sub.add_parser("verify", help="smoke-test a package image: health route, one scoring request, cleanup")
    p.add_argument("image")
    add_verify_arguments(p)
    p.add_argument("--model-path", help="model folder to mount instead of the workspace's copy")
    p.add_argument("--no-model-mount", action="store_true", help="start a readonly_mount package without its model")
    p.add_argument("--platform", metavar="OS/ARCH", help="the image's platform (default: this host's): another one is "
                   "read from pkgc's OCI store or an oci: layout and run under qemu-user in a chroot (needs root "
                   "and qemu-user-static); every ELF file is checked against it")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def add_verify_arguments(parser, timeout_flag: str = "--timeout") -> None:
    """The options ``pkgc verify`` and ``pkgc build --verify`` share."""
    parser.add_argument("--request-file", help="JSON body to POST to the score route (default: an MLflow model's serving_input_example.json, else health route only)")
    parser.add_argument("--expect", help="JSON the response must match: only the keys it names (at any depth; "
                        "extra keys such as a V2 'id' are ignored), lists element by element, numbers within --rel-tol")
    parser.add_argument("--rel-tol", type=float, default=1e-6, help="relative tolerance for numbers (default 1e-6)")
    parser.add_argument(timeout_flag, dest="verify_timeout", metavar="SECONDS", type=float, default=120.0,
                        help="seconds to wait for the health route and the response (default 120)")  # fmt: skip
    start_flag = timeout_flag.replace("timeout", "start-timeout")  # --start-timeout, build's --verify-start-timeout
    parser.add_argument(start_flag, dest="start_timeout", metavar="SECONDS", type=float, default=None,
                        help="seconds to wait for the health route (default: the timeout; 900 under qemu-user, where "
                        "the server starts 10-50x slower)")  # fmt: skip
    add_gpus_argument(parser)


def add_gpus_argument(parser) -> None:
    """``--gpus``, as ``docker run`` spells it (``pkgc run``, ``pkgc verify``, ``pkgc build --verify``)."""
    parser.add_argument("--gpus", metavar="all|N|device=ID[,ID...]",
                        help="give the container GPUs (docker: --gpus; podman: CDI nvidia.com/gpu=...); the engine's "
                        "host needs the NVIDIA driver and nvidia-container-toolkit")  # fmt: skip


def verify_request(image: str, args) -> VerifyRequest:
    """Read and check the request and expect files (bad input, exit 2) before anything starts."""
    from compiler.runtime.request_body import json_file
    from compiler.runtime.verify import Expected, VerifyRequest  # the smoke test's machinery: only when asked

    body = json_file(Path(args.request_file)) if args.request_file else None
    expected = None
    if args.expect:
        if body is None:
            raise SpecError(SpecProblem("--expect", "", "needs --request-file (the request whose answer it is)"))
        path = Path(args.expect)
        expected = Expected(json.loads(json_file(path, "expect file")), str(path), rel_tol=args.rel_tol)
    return VerifyRequest(
        image=image, body=body, expected=expected, timeout=args.verify_timeout,
        model_path=Path(args.model_path) if getattr(args, "model_path", None) else None,
        mount_model=not getattr(args, "no_model_mount", False), gpus=parse_gpus(args.gpus),
        start_timeout=getattr(args, "start_timeout", None),
    )  # fmt: skip


def platform_option(text: str | None) -> Platform | None:
    """``--platform`` parsed (bad input, exit 2, naming the platforms pkgc knows); None when not given."""
    if not text:
        return None
    try:
        return Platform.parse(text)
    except ValueError as exc:
        raise SpecError(SpecProblem("--platform", "", str(exc))) from None


def run(args, options, reporter) -> int:
    from compiler.oci.store import OciStore
    from compiler.runtime.verify import describe, verify_image
    from compiler.workspace import Workspace

    req = replace(verify_request(args.image, args), platform=platform_option(args.platform))
    reporter.step(f"verifying {args.image}" + (f" for {req.platform}" if req.platform else ""))
    result = verify_image(req, Workspace(options.workspace), OciStore.in_cache(options.cache_dir), options.cache_dir,
                          connect_engine).as_dict()  # fmt: skip
    print_result(result, args.json, describe(result))
    return 0
