"""``pkgc build``: compile package.yml into an image (or stop after a stage with --emit), then
optionally verify it, write OCI outputs, push it and print deploy settings.

After the build, in this order: ``--verify`` (a failing package is never published), ``--output``
(each written atomically), ``--push``, ``--deploy-settings``. Flags are checked before any build
work. Exit codes: 2 bad input (including bad --output/--push values), 3 build or publish failure,
4 verification failure, 5 no engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from compiler.commands import connect_engine, print_result
from compiler.commands.verify import add_verify_arguments, describe, verify_request
from compiler.emit.deploy import PLATFORMS, Platform
from compiler.emit.errors import TargetSyntaxError
from compiler.emit.oci import OutputTarget, parse_output
from compiler.emit.registry import PushTarget, parse_push
from compiler.engines.base import Engine
from compiler.errors import BuildError, SpecError, SpecProblem, VerifyError
from compiler.runtime.verify import VerifyRequest


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
    p.add_argument("--slim", action=argparse.BooleanOptionalAction, default=None,
                   help="leave out pip, setuptools, wheel (unless required) and packages' test folders (config: slim)")  # fmt: skip
    p.add_argument("--bytecode", action=argparse.BooleanOptionalAction, default=None,
                   help="ship the environment's byte-code (default; config: bytecode); --no-bytecode: sources only")  # fmt: skip
    p.add_argument("--base-image", help="replace the base image (or an MLflow package's default one)")
    p.add_argument("--python-version", help="override the Python an MLflow model records (X.Y)")
    p.add_argument("--output", action="append", default=[], metavar="oci:DIR[:TAG]|oci-archive:FILE[:TAG]",
                   help="also write the image as an OCI layout or OCI archive (repeatable)")  # fmt: skip
    p.add_argument("--push", metavar="REGISTRY/REPO[:TAG]", help="push the image; the JSON reports the manifest digest")
    p.add_argument("--verify", action="store_true", help="smoke-test the image before publishing it (see pkgc verify)")
    add_verify_arguments(p, timeout_flag="--verify-timeout")
    p.add_argument("--deploy-settings", choices=PLATFORMS, help="print the settings this platform needs")
    p.add_argument("--target-environment", help="the package's name (default: the spec's; <endpoint>-<name>-pkg for a deployment)")
    p.add_argument("--write-deployment", metavar="FILE", help="write the deployment YAML that uses the package (deployment input)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class AfterBuild:
    """What to do with the built image, parsed and checked before the build starts."""

    outputs: tuple[OutputTarget, ...]
    push: PushTarget | None
    verify: VerifyRequest | None
    deploy: Platform | None

    @property
    def any(self) -> bool:
        return bool(self.outputs or self.push or self.verify or self.deploy)


def after_build(args) -> AfterBuild:
    if not args.verify and (args.request_file or args.expect):
        raise SpecError(SpecProblem("--request-file/--expect", "", "need --verify"))
    after = AfterBuild(
        outputs=tuple(parse_output(text) for text in args.output),
        push=parse_push(args.push) if args.push else None,
        verify=verify_request("", args) if args.verify else None,
        deploy=args.deploy_settings,
    )  # fmt: skip
    paths = [out.path for out in after.outputs]
    if len(set(paths)) != len(paths):
        raise TargetSyntaxError(f"--output: the same path is given twice ({', '.join(sorted({str(p) for p in paths if paths.count(p) > 1}))})")
    if args.emit and after.any:
        raise SpecError(SpecProblem("--emit", "", "stops before the image exists; drop --output/--push/--verify/--deploy-settings"))
    return after


def _write_deployment_target(args) -> Path | None:
    """``--write-deployment FILE``, checked before any build work: a deployment input, not itself."""
    target = getattr(args, "write_deployment", None)
    if target is None:
        return None
    if args.emit:
        raise SpecError(SpecProblem("--write-deployment", "", "needs a built package; drop --emit"))
    from compiler.spec.deployment_out import check_write_target

    return check_write_target(Path(args.spec), Path(target))


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

    after = after_build(args)
    request = BuildRequest(
        spec_path=Path(args.spec), model=args.model, emit=args.emit, relock=args.relock,
        lock_path=Path(args.lock_file) if args.lock_file else None,
        template=Path(args.template) if args.template else None, no_cache=args.no_cache,
        base_image=args.base_image, python_version=args.python_version, builder=getattr(args, "builder", None) or "auto",
        target_environment=getattr(args, "target_environment", None),
        slim=getattr(args, "slim", None), bytecode=getattr(args, "bytecode", None),
    )  # fmt: skip
    write_to = _write_deployment_target(args)
    engine = _OneEngine()
    if after.verify is not None and not args.emit:
        engine()  # verifying runs the image: with no engine, fail before any build work (exit 5)
    result = run_build(request, options, engine, reporter)
    if isinstance(result, str):
        sys.stdout.write(result)
        return 0
    settings_text = None
    try:
        settings_text = _after(result, after, engine, options, reporter)
    except VerifyError as exc:
        result["verify"] = {"passed": False, "reason": str(exc)}
        if args.json:
            print(json.dumps(result, indent=2))
        raise
    if write_to is not None:
        from compiler.spec.deployment_out import write_deployment

        result["deployment_file"] = str(write_deployment(Path(args.spec), result["target_environment"], write_to))
        reporter.step(f"wrote {write_to}: the deployment with environment azureml:{result['target_environment']}")
    if settings_text is not None and not args.json:
        sys.stdout.write(settings_text)  # pipeable: `pkgc build ... --deploy-settings kubernetes | kubectl apply -f -`
    else:
        print_result(result, args.json, result["image"])
    return 0


def _after(result: dict, after: AfterBuild, engine: _OneEngine, options, reporter) -> str | None:
    """Verify, publish and describe the built image; fills ``result``; returns the settings text.

    The engine is connected only for what needs it: an OCI-built image is published from pkgc's store."""
    image = result["image"]
    if after.verify is not None:
        from compiler.runtime.verify import verify_package
        from compiler.workspace import Workspace

        reporter.step(f"verifying {image}")
        verified = verify_package(engine(), Workspace(options.workspace), dataclasses.replace(after.verify, image=image))
        result["verify"] = verified.as_dict()
        reporter.step(describe(result["verify"]))
    digest = None
    if after.outputs or after.push:
        digest = _publish(result, after, engine, reporter, options)
    if after.deploy is None:
        return None
    from compiler.emit.deploy import deploy_facts, deploy_settings

    labels = _stored_labels(result, options) if result.get("builder") == "oci" else (engine().image_info(image) or _NoInfo).labels
    pulled = result["push"]["reference"] if after.push else image
    settings = deploy_settings(after.deploy, deploy_facts(pulled, labels, digest if after.push else None))
    result["deploy_settings"] = settings.data
    return settings.text


class _NoInfo:
    labels: dict = {}


def _stored_labels(result: dict, options) -> dict:
    """The labels of an OCI-built image, read from its config in pkgc's store."""
    from compiler.oci.store import OciStore

    store = OciStore.in_cache(options.cache_dir)
    config = store.read_json(store.read_json(result["manifest_digest"])["config"]["digest"])
    return dict((config.get("config") or {}).get("Labels") or {})


def _publish(result: dict, after: AfterBuild, engine: _OneEngine, reporter, options) -> str:
    from compiler.emit.publish import PublishRequest, publish

    request = PublishRequest(result["image"], after.outputs, after.push, options.docker_host)
    if result.get("builder") == "oci":
        from compiler.oci.publish import publish_stored
        from compiler.oci.store import OciStore

        published = publish_stored(OciStore.in_cache(options.cache_dir), result["manifest_digest"], request, reporter.detail)
    else:
        if engine().name != "docker":
            raise BuildError(f"--output/--push read the image from a Docker engine, not {engine().name}")
        published = publish(request, reporter.detail)
    for out in published.outputs:
        reporter.step(f"wrote {out.kind}:{out.path}:{out.tag} ({out.size_bytes / 1e6:.0f} MB, {out.digest[:19]}) in {out.seconds:.1f} s")
    result["outputs"] = [out.as_dict() for out in published.outputs]
    if published.push is not None:
        reporter.step(f"pushed {published.push.reference} ({published.push.digest}) in {published.push.seconds:.1f} s")
        result["push"] = published.push.as_dict()
    result["manifest_digest"] = published.digest
    return published.digest
