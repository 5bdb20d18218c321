"""Stage 1 (load + validate): package.yml becomes a typed ``PackageSpec``.

Both names are imported on first use (PEP 562): importing ``compiler.spec.yamldoc`` (the bounded
YAML reader, also used for conda files and pkgc.toml's neighbours) does not load the pydantic models."""

__all__ = ["load_package_spec", "PackageSpec"]


def __getattr__(name: str):
    if name == "load_package_spec":
        from compiler.spec.load import load_package_spec

        return load_package_spec
    if name == "PackageSpec":
        from compiler.spec.model import PackageSpec

        return PackageSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
