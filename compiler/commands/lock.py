"""``pkgc lock``: resolve the merged environment and write its lock file (conda-lock format)."""

from __future__ import annotations

from pathlib import Path

from compiler.commands import connect_engine, print_result
from compiler.commands.build import add_platform_argument, platforms_of


def register(sub) -> None:
    p = sub.add_parser("lock", help="write the lock file of a package's merged environment")
    p.add_argument("spec")
    p.add_argument("--model", help="model reference or path; wins over the spec's 'model:'")
    p.add_argument("--lock-file", help="lock file (default: <spec>.conda-lock.yml beside the spec)")
    p.add_argument("--check", action="store_true", help="only check that the existing lock matches (exit 2 if not)")
    p.add_argument("--base-image", help="replace the base image (or an MLflow package's default one)")
    p.add_argument("--python-version", help="override the Python an MLflow model records (X.Y)")
    p.add_argument("--set", action="append", default=[], dest="set_values", metavar="KEY=VALUE",
                   help="fill a deployment YAML's placeholders or set a dotted key (as pkgc build)")  # fmt: skip
    p.add_argument("--endpoint-name", help="a deployment YAML's endpoint_name (as pkgc build)")
    add_platform_argument(p, "the platforms to lock for, in one lock file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args, options, reporter) -> int:
    from compiler.pipeline import BuildRequest, lock_package
    from compiler.spec.overrides import parse_overrides

    request = BuildRequest(
        spec_path=Path(args.spec), model=args.model, relock=not args.check, check_lock=args.check,
        lock_path=Path(args.lock_file) if args.lock_file else None,
        base_image=args.base_image, python_version=args.python_version,
        overrides=parse_overrides(args.set_values, args.endpoint_name), platforms=platforms_of(args),
    )  # fmt: skip
    result = lock_package(request, options, connect_engine, reporter)
    print_result(result, args.json, result["lock_file"])
    return 0
