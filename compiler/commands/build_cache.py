"""``pkgc build --cache REGISTRY/REPO --cache-mode read|readwrite``: the shared build cache's flags
(compiler/cache/registry_cache.py); they win over ``cache``/``cache_mode`` in pkgc.toml."""

from __future__ import annotations

import dataclasses

from compiler.cache.cache_repo import MODES, parse_cache
from compiler.options import Options


def add_cache_arguments(p) -> None:
    p.add_argument("--cache", metavar="REGISTRY/REPO",
                   help="share layers through this registry repository: a layer found there is used without "
                        "downloading it, a push mounts it (config: cache)")  # fmt: skip
    p.add_argument("--cache-mode", choices=MODES, default=None,
                   help="readwrite (default): also upload what was built; read: never write to the cache (config: cache_mode)")


def with_cache_flags(options: Options, args) -> Options:
    """``options`` with the command line's --cache/--cache-mode, checked before any build work."""
    cache = getattr(args, "cache", None) or options.cache
    mode = getattr(args, "cache_mode", None) or options.cache_mode
    if cache is not None:
        parse_cache(cache)
    return dataclasses.replace(options, cache=cache, cache_mode=mode)
