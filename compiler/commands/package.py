"""``pkgc model package``: package a registered model with a spec, as ``az ml model package`` does.

``pkgc model package -n NAME (-v VERSION | -l latest) -f package.yml [--registry-name R] [--json]`` is
``pkgc build package.yml --model azureml:NAME:VERSION`` (``azureml://registries/R/models/...`` with a
registry); the build's other flags (``--base-image``, ``--output``, ``--verify``...) pass through.
"""

from __future__ import annotations

import argparse

from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.spec.values import ASSET_NAME, ASSET_NAME_RULE

# Build flags that take a value and pass through unchanged.
PASSTHROUGH = ("--base-image", "--lock-file", "--template", "--python-version", "--push", "--deploy-settings",
               "--target-environment", "--write-deployment", "--request-file", "--expect", "--sign-key", "--compression")  # fmt: skip


def register(group) -> None:
    p = group.add_parser("package", help="package a registered model with a spec (az ml model package)")
    p.add_argument("--name", "-n", required=True, help="the registered model's name")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", "-v", help="the model's version")
    which.add_argument("--label", "-l", choices=["latest"], help="the model's label (latest)")
    p.add_argument("--file", "-f", required=True, dest="spec", help="the package spec (package.yml)")
    p.add_argument("--registry-name", help="a registry configured in pkgc.toml ([registries])")
    p.add_argument("--json", action="store_true")
    p.add_argument("--relock", action="store_true")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--verify", action="store_true")
    p.add_argument("--output", action="append", default=[])
    for flag in PASSTHROUGH:
        p.add_argument(flag)
    p.set_defaults(func=run)


def model_reference(name: str, version: str | None, label: str | None, registry: str | None) -> str:
    """The reference ``az ml model package`` means by its flags."""
    for flag, value in (("--name", name), ("--version", version), ("--registry-name", registry)):
        if value is not None and not ASSET_NAME.match(value):
            raise SpecError(SpecProblem(flag, "", f"'{excerpt(value, 60)}' {ASSET_NAME_RULE}"))
    if registry:
        tail = f"versions/{version}" if version else f"labels/{label}"
        return f"azureml://registries/{registry}/models/{name}/{tail}"
    return f"azureml:{name}:{version}" if version else f"azureml:{name}@{label}"


def build_arguments(args: argparse.Namespace) -> list[str]:
    """The ``pkgc build`` command line these flags stand for."""
    argv = ["build", args.spec, "--model", model_reference(args.name, args.version, args.label, args.registry_name)]
    argv += [flag for flag in ("--json", "--relock", "--no-cache", "--verify") if getattr(args, flag[2:].replace("-", "_"))]
    for output in args.output:
        argv += ["--output", output]
    for flag in PASSTHROUGH:
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            argv += [flag, value]
    return argv


def run(args, options, reporter) -> int:
    from compiler.commands import build
    from compiler.spec import load_package_spec

    spec_file = load_package_spec(args.spec)
    if spec_file.spec.model is not None:  # both forms: the spec's model and --name
        raise SpecError(spec_file.problem(("model",), "the model is named by 'pkgc model package --name'; "
                                                      "remove 'model:' from the spec (or use pkgc build)"))  # fmt: skip
    parser = argparse.ArgumentParser(prog="pkgc")
    build.register(parser.add_subparsers(dest="command"))
    return build.run(parser.parse_args(build_arguments(args)), options, reporter)
