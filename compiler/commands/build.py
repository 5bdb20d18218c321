"""``pkgc build``: compile package.yml into an image (or stop after a stage with --emit)."""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.commands import connect_engine, print_result


def register(sub) -> None:
    p = sub.add_parser("build", help="build a package image from package.yml")
    p.add_argument("spec")
    p.add_argument("--model", help="model reference or path; wins over the spec's 'model:'")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--emit", choices=["spec", "deps", "plan", "dockerfile"], help="stop after this stage and print it")
    p.add_argument("--relock", action="store_true", help="resolve again even when a lock file exists")
    p.add_argument("--lock-file", help="lock file (default: <spec>.conda-lock.yml beside the spec)")
    p.add_argument("--template", help="a Dockerfile template extending pkgc's Dockerfile.j2")
    p.add_argument("--no-cache", action="store_true", help="rebuild every layer; never reuse an existing image")
    p.set_defaults(func=run)


def run(args, options, reporter) -> int:
    from compiler.pipeline import BuildRequest, run_build

    request = BuildRequest(
        spec_path=Path(args.spec), model=args.model, emit=args.emit, relock=args.relock,
        lock_path=Path(args.lock_file) if args.lock_file else None,
        template=Path(args.template) if args.template else None, no_cache=args.no_cache,
    )  # fmt: skip
    result = run_build(request, options, connect_engine, reporter)
    if isinstance(result, str):
        sys.stdout.write(result)
    else:
        print_result(result, args.json, result["image"])
    return 0
