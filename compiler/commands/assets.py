"""``pkgc model|environment create|list|show`` and ``pkgc schema``: the workspace's assets."""

from __future__ import annotations

import json
from pathlib import Path

from compiler.commands import print_result
from compiler.errors import ResolveError, excerpt


def register(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of package.yml")
    p.set_defaults(func=schema)
    for asset in ("model", "environment"):
        group = sub.add_parser(asset, help=f"manage {asset}s in the workspace").add_subparsers(dest="action", required=True)
        c = group.add_parser("create", help=f"register a new {asset} version")
        if asset == "model":
            c.add_argument("--name", required=True)
            c.add_argument("--path", required=True)
            c.add_argument("--type", choices=["custom_model", "mlflow_model"], default=None)
            c.add_argument("--version")
            c.add_argument("--description")
            c.set_defaults(func=model_create)
        else:
            c.add_argument("--file", "-f", required=True)
            c.set_defaults(func=environment_create)
        c.add_argument("--json", action="store_true")
        c = group.add_parser("list", help=f"list {asset} versions")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=list_assets, asset=asset)
        c = group.add_parser("show", help=f"show one {asset} version")
        c.add_argument("ref", help="NAME:VERSION, NAME@latest, azureml:... or a long id")
        c.set_defaults(func=show, asset=asset)


def schema(args, options, reporter) -> int:
    from compiler.spec.model import PackageSpec

    print(json.dumps(PackageSpec.model_json_schema(by_alias=True), indent=2))
    return 0


def model_create(args, options, reporter) -> int:
    from compiler.resolve.models import check_utf8, store_failure
    from compiler.workspace import Workspace

    path = Path(args.path)
    check_utf8(path.absolute(), "--path")
    try:
        has_mlmodel = (path / "MLmodel").is_file()
        model_type = args.type or ("mlflow_model" if has_mlmodel else "custom_model")
        if model_type == "mlflow_model" and not has_mlmodel:
            raise ResolveError(f"--type mlflow_model: {excerpt(args.path)} has no MLmodel file at its root")
        record = Workspace(options.workspace).create_model(args.name, path, model_type, args.version, args.description or "")
    except (ValueError, OSError, RuntimeError) as exc:  # the path is the user's: a link loop, a bad name, unreadable
        raise ResolveError(f"--path '{excerpt(args.path)}': {store_failure(exc)}") from None
    print_result(record.model_dump(), args.json, f"azureml:{record.name}:{record.version}")
    return 0


def environment_create(args, options, reporter) -> int:
    from compiler.workspace import Workspace
    from compiler.workspace.envfile import create_environment_from_file

    record = create_environment_from_file(Path(args.file), Workspace(options.workspace))
    print_result(record.model_dump(), args.json, f"azureml:{record.name}:{record.version}")
    return 0


def list_assets(args, options, reporter) -> int:
    from compiler.workspace import Workspace

    ws = Workspace(options.workspace)
    records = ws.list_models() if args.asset == "model" else ws.list_environments()
    if args.json:
        print(json.dumps([r.model_dump() for r in records], indent=2))
        return 0
    for r in records:
        print(f"{r.name}:{r.version}\t{getattr(r, 'image', None) or getattr(r, 'type', '')}")
    return 0


def show(args, options, reporter) -> int:
    from compiler.resolve.models import workspace_for
    from compiler.spec.refs import RefSyntaxError, parse_ref
    from compiler.workspace import Workspace

    kind = "models" if args.asset == "model" else "environments"
    try:
        ref = parse_ref(args.ref, kind)
    except RefSyntaxError as exc:
        raise ResolveError(str(exc)) from None
    ws = workspace_for(ref, Workspace(options.workspace), options)
    get = ws.get_model if kind == "models" else ws.get_environment
    print(json.dumps(get(ref.name, ref.version, ref.label).model_dump(), indent=2))
    return 0
