"""``pkgc build``: compile package.yml into an image (or stop after a stage with --emit), then
optionally verify it, write OCI outputs, push it and print deploy settings.

After the build, ``ship()`` (compiler/ship.py): ``--verify`` (a failing package is never published),
``--output`` (each written atomically), ``--push``, ``--deploy-settings``. Flags are checked before
any build work; this module only wires. Exit codes: 2 bad input (including bad --output/--push values), 3 build or publish failure,
4 verification failure, 5 no engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from compiler.commands import connect_engine, print_result
from compiler.commands.build_cache import add_cache_arguments, with_cache_flags
from compiler.commands.verify import add_verify_arguments, verify_request
from compiler.deploy.settings import PLATFORMS
from compiler.errors import TargetSyntaxError
from compiler.outputs.model_image import parse_model_targets
from compiler.outputs.targets import parse_output
from compiler.oci.reference import parse_push
from compiler.engines.base import Engine
from compiler.errors import SpecError, SpecProblem, VerifyError
from compiler.ship import AfterBuild, Shipped, ship


def register(sub) -> None:
    p = sub.add_parser("build", help="build a package image from package.yml")
    p.add_argument("spec")
    p.add_argument("--model", help="model reference or path; wins over the spec's 'model:'")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--emit", choices=["spec", "deps", "plan", "dockerfile"], help="stop after this stage and print it")
    p.add_argument("--relock", action="store_true", help="resolve again even when a lock file exists")
    p.add_argument("--lock-file", help="lock file (default: <spec>.conda-lock.yml beside the spec)")
    p.add_argument("--template", help="a Dockerfile template extending pkgc's Dockerfile.j2")
    p.add_argument("--builder", choices=["auto", "oci", "docker"], default="auto",
                   help="oci: write the image directly (no engine needed); docker: build the Dockerfile in the engine; "
                        "auto (default): oci for venv packages without --template, else docker")  # fmt: skip
    p.add_argument("--no-cache", action="store_true", help="rebuild every layer; never reuse an existing image")
    add_cache_arguments(p)
    p.add_argument("--slim", action=argparse.BooleanOptionalAction, default=None,
                   help="leave out pip, setuptools, wheel (unless required) and packages' test folders (config: slim)")  # fmt: skip
    p.add_argument("--bytecode", action=argparse.BooleanOptionalAction, default=None,
                   help="ship the environment's byte-code (default; config: bytecode); --no-bytecode: sources only")  # fmt: skip
    add_platform_argument(p, "the platforms to build for, one image index")
    p.add_argument("--compression", choices=["gzip", "zstd", "none"], default=None,
                   help="layer compression of the OCI back end (default gzip; config: compression): gzip (parallel igzip), "
                        "zstd (application/vnd.oci.image.layer.v1.tar+zstd) or none (plain tar)")  # fmt: skip
    p.add_argument("--base-image", help="replace the base image (or an MLflow package's default one)")
    p.add_argument("--python-version", help="the whole environment's Python (X.Y): overrides the model's and the base environment's")
    p.add_argument("--output", action="append", default=[], metavar="oci:DIR[:TAG]|oci-archive:FILE[:TAG]",
                   help="also write the image as an OCI layout or OCI archive (repeatable)")  # fmt: skip
    p.add_argument("--push", metavar="REGISTRY/REPO[:TAG]", help="push the image; the JSON reports the manifest digest")
    p.add_argument("--model-output", action="append", default=[], metavar="oci:DIR[:TAG]|oci-archive:FILE[:TAG]",
                   help="also write the model image (readonly_mount packages) as an OCI layout or archive (repeatable)")
    p.add_argument("--model-push", metavar="REGISTRY/REPO[:TAG]", help="push the model image (readonly_mount packages)")
    p.add_argument("--verify", action="store_true", help="smoke-test the image before publishing it (see pkgc verify)")
    add_verify_arguments(p, timeout_flag="--verify-timeout")
    p.add_argument("--sign-key", metavar="PEM", help="sign the provenance and SBOM attestations (DSSE) with this private key")
    p.add_argument("--deploy-settings", choices=PLATFORMS, help="print the settings this platform needs")
    p.add_argument("--target-environment", help="the package's name (default: the spec's; <endpoint>-<name>-pkg for a deployment)")
    p.add_argument("--write-deployment", metavar="FILE", help="write the deployment YAML that uses the package (deployment input)")
    p.add_argument("--set", action="append", default=[], dest="set_values", metavar="KEY=VALUE",
                   help="fill the placeholders named KEY (<KEY>, {{KEY}}) or set the dotted key KEY (repeatable)")  # fmt: skip
    p.add_argument("--endpoint-name", help="the deployment's endpoint_name (fills <endpoint_name> placeholders)")
    p.set_defaults(func=run)


def after_build(args) -> AfterBuild:
    if not args.verify and (args.request_file or args.expect):
        raise SpecError(SpecProblem("--request-file/--expect", "", "need --verify"))
    if not args.verify and args.gpus:
        raise SpecError(SpecProblem("--gpus", "", "applies to the smoke test: add --verify"))
    after = AfterBuild(
        outputs=tuple(parse_output(text) for text in args.output),
        push=parse_push(args.push) if args.push else None,
        verify=verify_request("", args) if args.verify else None,
        deploy=args.deploy_settings,
        provenance=_provenance(args),
    )  # fmt: skip
    after = dataclasses.replace(after, model=parse_model_targets(args.model_output, args.model_push, after.outputs))
    paths = [out.path for out in after.outputs]
    if len(set(paths)) != len(paths):
        raise TargetSyntaxError(f"--output: the same path is given twice ({', '.join(sorted({str(p) for p in paths if paths.count(p) > 1}))})")
    if args.emit and after.any:
        raise SpecError(SpecProblem("--emit", "", "stops before the image exists; drop --output/--push/--verify/--deploy-settings"))
    return after


def _provenance(args):
    """The provenance request; ``--sign-key FILE`` is read before any build work (a bad key is bad input)."""
    from compiler.provenance.build_step import ProvenanceRequest

    return ProvenanceRequest.from_args(args)


def _write_deployment_target(args) -> Path | None:
    """``--write-deployment FILE``, checked before any build work: a deployment input, not itself."""
    target = getattr(args, "write_deployment", None)
    if target is None:
        return None
    if args.emit:
        raise SpecError(SpecProblem("--write-deployment", "", "needs a built package; drop --emit"))
    from compiler.spec.deployment_out import check_write_target

    return check_write_target(Path(args.spec), Path(target), _overrides(args))


def add_platform_argument(p, what: str) -> None:
    p.add_argument("--platform", dest="platforms", metavar="OS/ARCH[,OS/ARCH]",
                   help=f"{what} (default: pkgc.toml's platforms, else the host's): linux/amd64, linux/arm64")


def platforms_of(args) -> tuple:
    """``--platform linux/amd64,linux/arm64``, checked before any build work."""
    from compiler.platform import parse_platforms

    text = getattr(args, "platforms", None)
    if text is None:
        return ()
    try:
        return parse_platforms(text)
    except ValueError as exc:
        raise SpecError(SpecProblem("--platform", "", str(exc))) from None


def _overrides(args):
    """``--set KEY=VALUE`` and ``--endpoint-name``, checked before any build work."""
    from compiler.spec.overrides import parse_overrides

    return parse_overrides(getattr(args, "set_values", None), getattr(args, "endpoint_name", None))


class _OneEngine:
    """Connect on first use (a bad spec fails before any engine is needed), then reuse it."""

    def __init__(self) -> None:
        self._engine: Engine | None = None

    def __call__(self) -> Engine:
        if self._engine is None:
            self._engine = connect_engine()
        return self._engine


def run(args, options, reporter) -> int:
    from compiler.pipeline import BuildRequest, run_build

    after, options = after_build(args), with_cache_flags(options, args)
    request = BuildRequest(
        spec_path=Path(args.spec), model=args.model, emit=args.emit, relock=args.relock,
        lock_path=Path(args.lock_file) if args.lock_file else None,
        template=Path(args.template) if args.template else None, no_cache=args.no_cache,
        base_image=args.base_image, python_version=args.python_version, builder=getattr(args, "builder", None) or "auto",
        target_environment=getattr(args, "target_environment", None),
        slim=getattr(args, "slim", None), bytecode=getattr(args, "bytecode", None),
        compression=getattr(args, "compression", None), platforms=platforms_of(args),
        model_image_wanted=after.model is not None and after.model.any, overrides=_overrides(args),
    )  # fmt: skip
    write_to = _write_deployment_target(args)
    engine = _OneEngine()
    if after.verify is not None and not args.emit:
        engine()  # verifying runs the image: with no engine, fail before any build work (exit 5)
    finished = run_build(request, options, engine, reporter)
    if isinstance(finished, str):
        sys.stdout.write(finished)
        return 0
    result, shipped = finished.result, Shipped()
    try:
        ship(result, finished.backend, after, engine, options, reporter, shipped)
    except VerifyError as exc:
        shipped.verify = {"passed": False, "reason": str(exc)}
        if args.json:
            print(json.dumps(result.to_json() | shipped.to_json(), indent=2))
        raise
    data = result.to_json() | shipped.to_json()
    if write_to is not None:
        from compiler.spec.deployment_out import write_deployment

        data["deployment_file"] = str(write_deployment(Path(args.spec), result.target_environment, write_to, request.overrides))
        reporter.step(f"wrote {write_to}: the deployment with environment azureml:{result.target_environment}")
    if shipped.settings_text is not None and not args.json:
        sys.stdout.write(shipped.settings_text)  # pipeable: `pkgc build ... --deploy-settings kubernetes | kubectl apply -f -`
    else:
        print_result(data, args.json, result.image)
    return 0
