"""Pick the back end once, when the package is resolved: ``oci`` whenever the image can be assembled
without running code in it, ``docker`` for a user ``--template``; an explicit choice that cannot
work is bad input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal

from compiler.backends.base import Backend
from compiler.errors import SpecError, SpecProblem
from compiler.platform import Platform

if TYPE_CHECKING:
    from compiler.engines.base import Engine
    from compiler.environment.strategy import EnvironmentStrategy
    from compiler.options import Options
    from compiler.request import BuildRequest

BackendName = Literal["oci", "docker"]


def backend_name(request: BuildRequest, strategy: EnvironmentStrategy, base_image: str = "",
                 platforms: tuple[Platform, ...] = ()) -> BackendName:  # fmt: skip
    """Which back end builds this package."""
    from compiler.oci.base import split_oci_reference

    if request.builder == "docker" and (split_oci_reference(base_image) is not None or base_image.startswith("docker://")):
        raise SpecError(SpecProblem("--builder", "", f"docker cannot build on {base_image}; use --builder oci"))
    why_not = None
    if request.template is not None:
        why_not = "a user --template may run steps inside the image"
    if request.builder == "oci" and why_not:
        raise SpecError(SpecProblem("--builder", "", f"oci cannot build this package: {why_not}; use --builder docker"))
    chosen: BackendName = request.builder if request.builder != "auto" else "docker" if why_not else "oci"  # type: ignore[assignment]
    if chosen == "docker" and request.compression not in (None, "gzip"):
        why = why_not or "--builder docker"
        raise SpecError(SpecProblem("--compression", "", f"{request.compression} layers are written by the OCI back end, "
                                    f"which this build does not use ({why}); drop --compression"))  # fmt: skip
    foreign = [p for p in platforms if p != Platform.host()]
    if chosen == "docker" and (foreign or len(platforms) > 1):
        why = why_not or "--builder docker"
        raise SpecError(SpecProblem("--platform", "", f"the Dockerfile back end ({why}) builds for {Platform.host()} only, "
                                    f"not {', '.join(map(str, platforms))}; build with the OCI back end"))  # fmt: skip
    return chosen


def choose_backend(
    request: BuildRequest, strategy: EnvironmentStrategy, base_image: str, platforms: tuple[Platform, ...],
    engine: Engine | None, connect: Callable[[], Engine], options: Options, log: Callable[[str], None] = lambda _msg: None,
) -> Backend:  # fmt: skip
    """The back end, made once with what it needs (the docker one connects to the engine: it raises
    when none answers)."""
    if backend_name(request, strategy, base_image, platforms) == "docker":
        from compiler.backends.dockerfile_backend import DockerfileBackend

        return DockerfileBackend(engine or connect(), request.template, request.no_cache, options.docker_host)
    from compiler.backends.oci.backend import OciBackend
    from compiler.cache.registry_cache import open_cache
    from compiler.backends.oci.layers import LayerOptions
    from compiler.workspace.digest_cache import DigestCache

    layer_options = LayerOptions(epoch=options.source_date_epoch, python=strategy.python, reuse=not request.no_cache,
                                 pyc_cache=options.cache_dir / "pyc", cache_dir=options.cache_dir,
                                 allow_missing=options.allow_missing_libraries,
                                 digests=DigestCache.in_cache(options.cache_dir),
                                 compression=request.compression or options.compression,  # type: ignore[arg-type]
                                 cache=open_cache(options, log, not request.no_cache))  # fmt: skip
    return OciBackend(options.cache_dir, engine, layer_options)
