"""``pkgc base-image build|list``: base images from the recipes in base-images/."""

from __future__ import annotations

from compiler.commands import connect_engine, print_result


def register(sub) -> None:
    group = sub.add_parser("base-image", help="base images built from recipes").add_subparsers(dest="action", required=True)
    c = group.add_parser("build", help="build a base image recipe (a no-op when it exists)")
    c.add_argument("name")
    c.add_argument("--platform", metavar="OS/ARCH[,...]",
                   help="build these platforms (linux/amd64,linux/arm64) into pkgc's OCI store as one image index; "
                        "another architecture's packages are unpacked and configured on the host, nothing emulated "
                        "(default: the host's platform; the host's image is loaded into the engine when one answers)")  # fmt: skip
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=build)
    c = group.add_parser("list", help="list the recipes")
    c.set_defaults(func=list_recipes_cmd)


def build(args, options, reporter) -> int:
    from compiler.errors import EngineUnavailable, SpecError, SpecProblem
    from compiler.oci.baseimage import build_base_image_in_store
    from compiler.oci.store import OciStore
    from compiler.platform import parse_platforms

    platforms = ()
    if args.platform is not None:
        try:
            platforms = parse_platforms(args.platform)
        except ValueError as exc:
            raise SpecError(SpecProblem("--platform", "", str(exc))) from None
    try:
        engine = connect_engine()
    except EngineUnavailable:
        engine = None
        reporter.step("no engine answers: the base image goes to pkgc's OCI store")
    store = OciStore.in_cache(options.cache_dir)
    with reporter.stage("base-image"):  # a registry recipe goes to the engine only (build_base_image)
        result = build_base_image_in_store(args.name, store, reporter.detail, platforms=platforms, engine=engine)
    where = f" ({', '.join(result.platforms)})" if result.platforms else ""
    reporter.step(f"base image {result.image}{where} {'built' if result.built else 'already present'}")
    print_result(result.to_json(), args.json, result.image)
    return 0


def list_recipes_cmd(args, options, reporter) -> int:
    from compiler.baseimages.recipes import list_recipes

    for recipe in list_recipes():
        print(f"{recipe.name}\t{recipe.kind}\tpython {recipe.python or '(conda)'}")
    return 0
