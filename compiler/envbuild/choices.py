"""The environment's build choices (``--slim``, ``--no-bytecode``) applied to a plan: no I/O.

Both back ends read them from ``plan.environment``: the OCI back end slims and compiles on the host,
the docker back end's template adds a slim step (this folder's ``slim.py``, shipped in the build
context) and ``pip --no-compile``. A non-default choice is recorded in a label."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from compiler.envbuild import slim as slim_module
from compiler.labels import BYTECODE, SLIM
from compiler.plan.types import ContextFile, ImagePlan

SLIM_IN_CONTEXT = "pkgc/slim.py"


def apply_environment_choices(plan: ImagePlan, slim: bool, bytecode: bool, keep: tuple[str, ...] = ()) -> tuple[ImagePlan, str | None]:
    """``plan`` with the choices made; and a note when one cannot apply (slim on the conda strategy)."""
    env = plan.environment
    if env is None or (slim is False and bytecode is True):
        return plan, None
    note = None
    if slim and env.strategy != "venv":
        note = f"--slim applies to venv environments only; the {env.strategy} environment is kept whole"
        slim = False
    labels = dict(plan.config.labels)
    files = plan.files
    if slim:
        labels[SLIM] = "true"
        files = files + (ContextFile(SLIM_IN_CONTEXT, source=Path(slim_module.__file__)),)
    if not bytecode:
        labels[BYTECODE] = "false"
    installers = {name.replace("_", "-").lower() for name in slim_module.INSTALLERS}
    keep = tuple(sorted({name.replace("_", "-").lower() for name in keep} & installers)) if slim else ()
    environment = dataclasses.replace(env, slim=slim, slim_keep=keep, bytecode=bytecode)
    config = dataclasses.replace(plan.config, labels=labels)
    return dataclasses.replace(plan, environment=environment, config=config, files=files), note
