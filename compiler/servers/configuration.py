"""A custom or Triton server's ``inference_configuration``: routes, start command and variables, each checked.

``entry_script`` is split into an argv with ``shlex.split`` (shell quoting rules, no shell runs it:
no pipes, redirections or variable expansion). In it and in ``configuration`` values,
``${AZUREML_MODEL_DIR}`` is replaced at build time by the model's folder in the container, so one
spec serves every model version.
"""

from __future__ import annotations

import shlex

from compiler.errors import SpecError
from compiler.labels import Route
from compiler.spec.load import SpecFile
from compiler.spec.model import OnlineInferenceConfiguration, Route as SpecRoute

MODEL_DIR_PLACEHOLDER = "${AZUREML_MODEL_DIR}"
CONFIG_KEY = ("inferencing_server", "inference_configuration")


def route(spec_route: SpecRoute) -> Route:
    return Route(spec_route.port, spec_route.path)


def command(spec_file: SpecFile, text: str, model_dir: str) -> tuple[str, ...]:
    """The start command as an argv; raise SpecError naming ``entry_script`` if it cannot be split or is empty."""
    key = CONFIG_KEY + ("entry_script",)
    try:
        argv = [arg.replace(MODEL_DIR_PLACEHOLDER, model_dir) for arg in shlex.split(text)]  # a space in it stays in one arg
    except ValueError as exc:
        raise SpecError(spec_file.problem(key, f"cannot be split into a command: {exc}")) from None
    if not argv:
        raise SpecError(spec_file.problem(key, "must not be empty: it is the server's start command"))
    return tuple(argv)


def variables(config: OnlineInferenceConfiguration | None, model_dir: str) -> dict[str, str]:
    values = config.configuration if config else {}
    return {k: v.replace(MODEL_DIR_PLACEHOLDER, model_dir) for k, v in values.items()}
