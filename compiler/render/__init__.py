"""Stage render: an ImagePlan becomes a Dockerfile (Jinja2) and a normalised build-context tar."""

from compiler.render.context import write_context
from compiler.render.dockerfile import render_dockerfile

__all__ = ["render_dockerfile", "write_context"]
