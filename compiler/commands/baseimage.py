"""``pkgc base-image build|list``: base images from the recipes in base-images/."""

from __future__ import annotations

from compiler.commands import connect_engine, print_result


def register(sub) -> None:
    group = sub.add_parser("base-image", help="base images built from recipes").add_subparsers(dest="action", required=True)
    c = group.add_parser("build", help="build a base image recipe (a no-op when it exists)")
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=build)
    c = group.add_parser("list", help="list the recipes")
    c.set_defaults(func=list_recipes_cmd)


def build(args, options, reporter) -> int:
    from compiler.baseimages.build import build_base_image

    from compiler.errors import EngineUnavailable

    try:
        engine = connect_engine()
    except EngineUnavailable:
        from compiler.oci.baseimage import build_base_image_in_store
        from compiler.oci.store import OciStore

        reporter.step("no engine answers: the base image goes to pkgc's OCI store")
        with reporter.stage("base-image"):
            result = build_base_image_in_store(args.name, OciStore.in_cache(options.cache_dir), reporter.detail)
    else:
        with reporter.stage("base-image"):
            result = build_base_image(args.name, engine, reporter.detail)
    reporter.step(f"base image {result.image} {'built' if result.built else 'already present'}")
    print_result(result.to_json(), args.json, result.image)
    return 0


def list_recipes_cmd(args, options, reporter) -> int:
    from compiler.baseimages.recipes import list_recipes

    for recipe in list_recipes():
        print(f"{recipe.name}\t{recipe.kind}\tpython {recipe.python or '(conda)'}")
    return 0
