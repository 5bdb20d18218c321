"""pkgc: a multi-stage model package compiler (ModelVersionPackage spec -> OCI inference image)."""

__version__ = "0.1.0"
