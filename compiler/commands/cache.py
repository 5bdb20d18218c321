"""``pkgc cache du|prune``: what pkgc's host cache holds, part by part, and keeping it bounded."""

from __future__ import annotations

from compiler.commands import print_result
from compiler.errors import SpecError, SpecProblem, excerpt


def register(sub) -> None:
    group = sub.add_parser("cache", help="pkgc's host cache ($PKGC_CACHE_DIR)").add_subparsers(dest="action", required=True)
    c = group.add_parser("du", help="what the cache holds, part by part")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=du)
    c = group.add_parser("prune", help="remove what nothing needs; with --max-size, then the least recently used")
    c.add_argument("--max-size", metavar="SIZE", help="evict pyc and fetched files, least recently used first, "
                   "until the cache is within SIZE (10G, 500M, bytes)")  # fmt: skip
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=prune)


def du(args, options, reporter) -> int:
    from compiler.cache.parts import measure
    from compiler.cache.references import unnamed_bytes
    from compiler.cache.sizes import human_size

    usage = measure(options.cache_dir)
    unnamed = unnamed_bytes(options.cache_dir / "oci")
    result = {"cache": str(options.cache_dir), "total": usage.total, "store_unreferenced": unnamed,
              "parts": {name.replace(" ", "_"): part.as_dict() for name, part in usage.parts.items()}}  # fmt: skip
    lines = [f"{options.cache_dir}"]
    for name, part in usage.parts.items():
        note = f"  ({human_size(unnamed)} named by nothing: 'pkgc cache prune' frees it)" if name == "store blobs" and unnamed else ""
        lines.append(f"  {name:<14} {human_size(part.bytes):>11}  {part.files:>7} files{note}")
    lines.append(f"  {'total':<14} {human_size(usage.total):>11}")
    print_result(result, args.json, "\n".join(lines))
    return 0


def prune(args, options, reporter) -> int:
    from compiler.cache.prune import prune_cache
    from compiler.cache.sizes import human_size, parse_size

    limit = None
    if args.max_size is not None:
        limit = parse_size(args.max_size)
        if limit is None:
            raise SpecError(SpecProblem("--max-size", "", f"'{excerpt(args.max_size)}' is not a size (e.g. 10G, 500M, 1048576)"))
    result = prune_cache(options.cache_dir, limit)
    if result.busy:
        reporter.warn("other pkgc runs are using the cache: only the staging of runs that are gone was removed; "
                      "prune again when they end")  # fmt: skip
    if result.store_left:
        reporter.warn(f"store blobs left as they are: {result.store_left}")
    if result.over:
        reporter.warn(f"the cache still holds {human_size(result.over)} over --max-size: the newest image of each "
                      "repository in the store, records, built wheels and recent logs are not evicted")  # fmt: skip
    parts = ", ".join(f"{name} {human_size(u.bytes)}" for name, u in result.removed.items() if u.files)
    human = f"freed {human_size(result.freed)}{f' ({parts})' if parts else ''}; {options.cache_dir} holds {human_size(result.after)}"
    print_result(result.as_dict(), args.json, human + (f" (limit {human_size(limit)})" if limit is not None else ""))
    return 0
