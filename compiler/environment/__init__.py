"""Stage strategy: decide how the merged environment is created in the image (venv or conda)."""

from compiler.environment.strategy import EnvironmentStrategy, choose_strategy

__all__ = ["EnvironmentStrategy", "choose_strategy"]
