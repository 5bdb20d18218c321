"""``pkgc model|environment create|list|show`` and ``pkgc schema``: the workspace's assets."""

from __future__ import annotations

import json
from pathlib import Path

from compiler.commands import print_result
from compiler.errors import ResolveError, SpecError, SpecProblem, excerpt


def _properties(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs (``--properties azureml.unpack=true``)."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(SpecProblem("--properties", "", f"'{excerpt(pair, 60)}' is not KEY=VALUE"))
        result[key] = value
    return result


def register(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of package.yml (or of a deployment YAML)")
    p.add_argument("kind", nargs="?", choices=["package", "deployment", "batch-deployment"], default="package")
    p.set_defaults(func=schema)
    for asset in ("model", "environment"):
        group = sub.add_parser(asset, help=f"manage {asset}s in the workspace").add_subparsers(dest="action", required=True)
        c = group.add_parser("create", help=f"register a new {asset} version (az ml {asset} create flags)")
        c.add_argument("--name", "-n")
        c.add_argument("--version", "-v")
        c.add_argument("--file", "-f", help=f"an Azure ML {asset} YAML (flags override its values)")
        if asset == "model":
            c.add_argument("--path", "-p", help="the model's file or folder (or a .tar.gz with azureml.unpack=true)")
            c.add_argument("--type", "-t", choices=["custom_model", "mlflow_model"], default=None)
            c.add_argument("--description", "-d")
            c.add_argument("--properties", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                           help="model properties, e.g. azureml.unpack=true to unpack an archive")  # fmt: skip
            c.set_defaults(func=model_create)
        else:
            c.add_argument("--image", "-i", help="the base image (with --name, instead of --file)")
            c.add_argument("--conda-file", help="a conda file (with --image)")
            c.set_defaults(func=environment_create)
        c.add_argument("--json", action="store_true")
        c = group.add_parser("list", help=f"list {asset} versions")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=list_assets, asset=asset)
        c = group.add_parser("show", help=f"show one {asset} version")
        c.add_argument("ref", help="NAME:VERSION, NAME@latest, azureml:... or a long id")
        c.add_argument("--json", action="store_true", help="print the record as JSON (the default, as az ml prints it)")
        c.set_defaults(func=show, asset=asset)
        if asset == "model":
            from compiler.commands import package

            package.register(group)  # pkgc model package (az ml model package)


def schema(args, options, reporter) -> int:
    if args.kind == "deployment":
        from compiler.spec.deployment import OnlineDeployment as Model
    elif args.kind == "batch-deployment":
        from compiler.spec.batch_deployment import BatchDeployment as Model
    else:
        from compiler.spec.model import PackageSpec as Model

    print(json.dumps(Model.model_json_schema(by_alias=True), indent=2))
    return 0


def model_create(args, options, reporter) -> int:
    from compiler.resolve.models import check_utf8, store_failure
    from compiler.workspace import Workspace
    from compiler.workspace.archives import model_source
    from compiler.workspace.modelfile import ModelArgs, model_args

    given = ModelArgs(args.name, args.version, args.path, args.type, args.description, _properties(args.properties))
    spec = model_args(Path(args.file), given) if args.file else given
    if not spec.name or not spec.path:
        missing = " and ".join(flag for flag, value in (("--name", spec.name), ("--path", spec.path)) if not value)
        raise SpecError(SpecProblem("pkgc model create", "", f"{missing} required (or --file with name and path)"))
    path = Path(spec.path)
    check_utf8(path.absolute(), "--path")
    try:
        with model_source(path, spec.properties) as stored:
            has_mlmodel = (stored / "MLmodel").is_file()
            model_type = spec.type or ("mlflow_model" if has_mlmodel else "custom_model")
            if model_type == "mlflow_model" and not has_mlmodel:
                raise ResolveError(f"--type mlflow_model: {excerpt(spec.path)} has no MLmodel file at its root")
            record = Workspace.with_digests(options.workspace, options.cache_dir).create_model(
                spec.name, stored, model_type, spec.version, spec.description or "", spec.properties, source=path
            )
    except (ValueError, OSError, RuntimeError) as exc:  # the path is the user's: a link loop, a bad name, unreadable
        raise ResolveError(f"--path '{excerpt(spec.path)}': {store_failure(exc)}") from None
    print_result(record.model_dump(), args.json, f"azureml:{record.name}:{record.version}")
    return 0


def environment_create(args, options, reporter) -> int:
    from compiler.workspace import Workspace
    from compiler.workspace.envfile import create_environment_from_file

    workspace = Workspace.with_digests(options.workspace, options.cache_dir)
    if args.file and (args.image or args.conda_file):
        raise SpecError(SpecProblem("pkgc environment create", "", "give --file, or --name with --image [--conda-file], not both"))
    if args.file:
        record = create_environment_from_file(Path(args.file), workspace, args.name, args.version)
    elif args.name and args.image:
        from compiler.workspace.envfile import create_environment_from_flags

        record = create_environment_from_flags(args.name, args.image, args.conda_file, args.version, workspace)
    else:
        raise SpecError(SpecProblem("pkgc environment create", "", "--file/-f ENVIRONMENT.yml (or --name and --image) is required"))
    print_result(record.model_dump(), args.json, f"azureml:{record.name}:{record.version}")
    return 0


def list_assets(args, options, reporter) -> int:
    from compiler.workspace import Workspace

    ws = Workspace.with_digests(options.workspace, options.cache_dir)
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
    ws = workspace_for(ref, Workspace.with_digests(options.workspace, options.cache_dir), options)
    get = ws.get_model if kind == "models" else ws.get_environment
    print(json.dumps(get(ref.name, ref.version, ref.label).model_dump(), indent=2))
    return 0
