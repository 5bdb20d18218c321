"""Stage plan: the one owner of the image's stages, layer order, labels and runtime settings."""

from compiler.plan.planner import plan_image
from compiler.plan.types import ContextFile, ImagePlan

__all__ = ["plan_image", "ImagePlan", "ContextFile"]
