"""``python -m compiler.selfimage [--no-load] [--json]``: build pkgc's own image (scripts/pkgc-image.sh).

Errors are one line on stderr, exit 2 (bad input) or 3 (build failure), as pkgc's commands give them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from compiler.cache.use import cache_in_use
from compiler.errors import EngineUnavailable, PkgcError
from compiler.oci.store import OciStore
from compiler.options import DEFAULT_CACHE
from compiler.selfimage.build import build_self_image
from compiler.selfimage.runtime import Project

ROOT = Path(__file__).resolve().parents[2]
LOCK = Path("scripts") / "pkgc-image-lock.yml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pkgc-image", description="build pkgc/pkgc:<version> and :latest")
    parser.add_argument("--no-load", action="store_true", help="leave it in pkgc's OCI store; do not load it into the engine")
    parser.add_argument("--json", action="store_true", help="print what was built as JSON")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    cache_dir = Path(os.environ.get("PKGC_CACHE_DIR") or DEFAULT_CACHE).expanduser()  # pkgc's own cache, as pkgc finds it

    def log(line: str) -> None:
        if not args.quiet:
            print(f"pkgc-image: {line}", file=sys.stderr, flush=True)

    try:
        from compiler.engines import DockerEngine

        try:  # the engine holds the base when the store does not yet; the image is loaded into it unless --no-load
            engine = DockerEngine.connect()
        except EngineUnavailable as exc:
            engine = None
            log(f"no engine ({exc.lines()[0]}): the image stays in {cache_dir / 'oci'}")
        with cache_in_use(cache_dir):  # held as pkgc's builds hold it: a prune waits, never removes what this uses
            built = build_self_image(Project.read(ROOT), OciStore.in_cache(cache_dir), cache_dir, engine, ROOT / LOCK, log,
                                         load=not args.no_load)  # fmt: skip
    except PkgcError as exc:
        for line in exc.lines():
            print(f"pkgc-image: error: {line}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"pkgc-image: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(built.to_json(), indent=1))
    else:
        print(f"{built.tags[0]} {built.manifest_digest} ({'loaded into the engine' if built.loaded else 'in the store'}, "
              f"{built.seconds:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
