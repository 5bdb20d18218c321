"""Sub-commands of the ``pkgc`` CLI: each module registers its parsers and wires stages, nothing more."""

from __future__ import annotations

import json
from typing import Callable

from compiler.engines.base import Engine


def connect_engine() -> Engine:
    from compiler.engines import DockerEngine

    return DockerEngine.connect()


def print_result(result: dict, as_json: bool, human: str) -> None:
    """Results go to stdout: the JSON object with --json, else one human line."""
    print(json.dumps(result, indent=2) if as_json else human)


EngineFactory = Callable[[], Engine]
