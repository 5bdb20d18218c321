"""Stage 1 (load + validate): package.yml becomes a typed ``PackageSpec``."""

from compiler.spec.load import load_package_spec
from compiler.spec.model import PackageSpec

__all__ = ["load_package_spec", "PackageSpec"]
