"""pkgc's command line: argument parsing and wiring of stages only.

Every PkgcError becomes one line per problem on stderr and its exit code (2 bad input, 3 build
failure, 4 verification failure, 5 no engine); results go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from compiler import __version__
from compiler.errors import PkgcError
from compiler.options import Options, load_options
from compiler.reporter import Reporter


def _engine():
    from compiler.engines import DockerEngine

    return DockerEngine.connect()


def _print_result(result: dict, as_json: bool, human: str) -> None:
    print(json.dumps(result, indent=2) if as_json else human)


# -- commands ----------------------------------------------------------------------------------
def cmd_build(args, options: Options, reporter: Reporter) -> int:
    from compiler.pipeline import BuildRequest, run_build

    request = BuildRequest(
        spec_path=Path(args.spec), model=args.model, emit=args.emit, relock=args.relock,
        lock_path=Path(args.lock_file) if args.lock_file else None,
        template=Path(args.template) if args.template else None,
    )  # fmt: skip
    result = run_build(request, options, _engine, reporter)
    if isinstance(result, str):
        sys.stdout.write(result)
    else:
        _print_result(result, args.json, result["image"])
    return 0


def cmd_schema(args, options: Options, reporter: Reporter) -> int:
    from compiler.spec.model import PackageSpec

    print(json.dumps(PackageSpec.model_json_schema(by_alias=True), indent=2))
    return 0


def cmd_model_create(args, options: Options, reporter: Reporter) -> int:
    from compiler.workspace import Workspace

    record = Workspace(options.workspace).create_model(
        args.name, Path(args.path), args.type, args.version, args.description or ""
    )
    _print_result(record.model_dump(), args.json, f"azureml:{record.name}:{record.version}")
    return 0


def cmd_environment_create(args, options: Options, reporter: Reporter) -> int:
    from compiler.workspace import Workspace
    from compiler.workspace.envfile import create_environment_from_file

    record = create_environment_from_file(Path(args.file), Workspace(options.workspace))
    _print_result(record.model_dump(), args.json, f"azureml:{record.name}:{record.version}")
    return 0


def _list(records, as_json: bool) -> int:
    if as_json:
        print(json.dumps([r.model_dump() for r in records], indent=2))
    for r in [] if as_json else records:
        extra = getattr(r, "image", None) or getattr(r, "type", "")
        print(f"{r.name}:{r.version}\t{extra}")
    return 0


def cmd_list(args, options: Options, reporter: Reporter) -> int:
    from compiler.workspace import Workspace

    ws = Workspace(options.workspace)
    return _list(ws.list_models() if args.asset == "model" else ws.list_environments(), args.json)


def cmd_show(args, options: Options, reporter: Reporter) -> int:
    from compiler.errors import ResolveError
    from compiler.resolve.models import workspace_for
    from compiler.spec.refs import RefSyntaxError, parse_ref

    kind = "models" if args.asset == "model" else "environments"
    try:
        ref = parse_ref(args.ref, kind)
    except RefSyntaxError as exc:
        raise ResolveError(str(exc)) from None
    from compiler.workspace import Workspace

    ws = workspace_for(ref, Workspace(options.workspace), options)
    record = ws.get_model(ref.name, ref.version, ref.label) if kind == "models" else ws.get_environment(
        ref.name, ref.version, ref.label
    )
    print(json.dumps(record.model_dump(), indent=2))
    return 0


def cmd_base_image_build(args, options: Options, reporter: Reporter) -> int:
    from compiler.baseimages.build import build_base_image

    result = build_base_image(args.name, _engine(), reporter.detail)
    data = {"name": result.name, "image": result.image, "image_id": result.image_id,
            "python": result.python, "built": result.built}  # fmt: skip
    reporter.step(f"base image {result.image} {'built' if result.built else 'already present'}")
    _print_result(data, args.json, result.image)
    return 0


def cmd_base_image_list(args, options: Options, reporter: Reporter) -> int:
    from compiler.baseimages.recipes import list_recipes

    for recipe in list_recipes():
        print(f"{recipe.name}\t{recipe.kind}\tpython {recipe.python or '(conda)'}")
    return 0


def cmd_run(args, options: Options, reporter: Reporter) -> int:
    from compiler.runtime.run import start_package, wait_until_ready
    from compiler.workspace import Workspace

    engine = _engine()
    handle, labels = start_package(
        engine, args.image, Workspace(options.workspace), host_port=args.port,
        model_path=Path(args.model_path) if args.model_path else None, name=args.name,
    )  # fmt: skip
    url = f"http://127.0.0.1:{handle.host_port}"
    try:
        seconds = wait_until_ready(engine, handle, labels, args.timeout)
    except PkgcError:
        engine.stop(handle.container_id)
        raise
    reporter.step(f"{args.image} answers on {url} after {seconds:.1f} s (container {handle.container_id[:12]})")
    result = {"container": handle.container_id, "url": url, "port": handle.host_port,
              "score_url": url + labels.score_route, "model_mounted": labels.needs_mount}  # fmt: skip
    if args.detach:
        _print_result(result, args.json, handle.container_id)
        return 0
    try:
        reporter.step("press Ctrl-C to stop")
        import time

        while engine.container_running(handle.container_id):
            time.sleep(1)
        return engine.exit_code(handle.container_id) or 0
    except KeyboardInterrupt:
        return 0
    finally:
        engine.stop(handle.container_id)


def cmd_invoke(args, options: Options, reporter: Reporter) -> int:
    from compiler.errors import SpecError, SpecProblem
    from compiler.runtime.http import request

    path = Path(args.request_file)
    try:
        data = path.read_bytes()
        json.loads(data)
    except FileNotFoundError:
        raise SpecError(SpecProblem(path, "", "request file not found")) from None
    except ValueError as exc:
        raise SpecError(SpecProblem(path, "", f"request file is not valid JSON: {exc}")) from None
    response = request(f"http://{args.host}:{args.port}{args.route}", data=data, timeout=args.timeout)
    sys.stdout.write(response.body.decode("utf-8", "replace") + "\n")
    if response.status != 200:
        from compiler.errors import VerifyError

        raise VerifyError(f"POST {args.route} answered HTTP {response.status}")
    return 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pkgc", description="Compile a model package spec into an inference image.")
    parser.add_argument("--version", action="version", version=f"pkgc {__version__}")
    parser.add_argument("--workspace", help="workspace folder (default: $PKGC_WORKSPACE or ~/.pkgc/workspace)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build a package image from package.yml")
    p.add_argument("spec")
    p.add_argument("--model", help="model reference or path; wins over the spec's 'model:'")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--emit", choices=["spec", "deps", "plan", "dockerfile"], help="stop after this stage and print it")
    p.add_argument("--relock", action="store_true", help="resolve again even when a lock file exists")
    p.add_argument("--lock-file", help="lock file (default: <spec>.conda-lock.yml beside the spec)")
    p.add_argument("--template", help="a Dockerfile template extending pkgc's Dockerfile.j2")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("schema", help="print the JSON Schema of package.yml")
    p.set_defaults(func=cmd_schema)

    for asset in ("model", "environment"):
        group = sub.add_parser(asset, help=f"manage {asset}s in the workspace").add_subparsers(dest="action", required=True)
        c = group.add_parser("create", help=f"register a new {asset} version")
        if asset == "model":
            c.add_argument("--name", required=True)
            c.add_argument("--path", required=True)
            c.add_argument("--type", choices=["custom_model", "mlflow_model"], default="custom_model")
            c.add_argument("--version")
            c.add_argument("--description")
            c.set_defaults(func=cmd_model_create)
        else:
            c.add_argument("--file", "-f", required=True)
            c.set_defaults(func=cmd_environment_create)
        c.add_argument("--json", action="store_true")
        c = group.add_parser("list", help=f"list {asset} versions")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=cmd_list, asset=asset)
        c = group.add_parser("show", help=f"show one {asset} version")
        c.add_argument("ref", help="NAME:VERSION, NAME@latest, azureml:... or a long id")
        c.set_defaults(func=cmd_show, asset=asset)

    group = sub.add_parser("base-image", help="base images built from recipes").add_subparsers(dest="action", required=True)
    c = group.add_parser("build", help="build a base image recipe (a no-op when it exists)")
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_base_image_build)
    c = group.add_parser("list", help="list the recipes")
    c.set_defaults(func=cmd_base_image_list)

    p = sub.add_parser("run", help="start a package, mounting its model read-only when it expects a mount")
    p.add_argument("image")
    p.add_argument("--port", type=int, help="host port (default: the package's port)")
    p.add_argument("--detach", "-d", action="store_true", help="leave it running and print the container id")
    p.add_argument("--name")
    p.add_argument("--model-path", help="model folder to mount instead of the workspace's copy")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the health route")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("invoke", help="POST a request file to a running package's /score")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--route", default="/score")
    p.add_argument("--request-file", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=cmd_invoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    try:
        spec_dir = Path(args.spec).resolve().parent if getattr(args, "spec", None) else Path.cwd()
        options = load_options(args.workspace, spec_dir)
        return args.func(args, options, reporter)
    except PkgcError as exc:
        for line in exc.lines():
            reporter.console.print(f"pkgc: error: {line}", markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an internal error: one line, the traceback only on request
        if os.environ.get("PKGC_DEBUG"):
            raise
        reporter.console.print(f"pkgc: internal error: {type(exc).__name__}: {exc} (set PKGC_DEBUG=1 for a traceback)", markup=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
