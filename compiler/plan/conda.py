"""Plan the conda environment's recipe: what goes into the build context for it (no I/O).

The context carries a local conda channel of exactly the locked packages and the py-rattler
installer wheels (both prepared before planning, ``compiler.fetch.conda_inputs``), the lock for the
installer (conda-lock's format written as JSON, which the installer reads with the standard
library), and ``pkgc/install_conda_env.py``.
"""

from __future__ import annotations

import json

from compiler.fetch.conda_inputs import CHANNEL, INSTALLER_WHEELS, CondaInputs
from compiler.lock.lockfile import to_conda_lock
from compiler.lock.types import Lock
from compiler.plan.types import ContextFile, EnvironmentBuild
from compiler.resources import templates_dir

INSTALLER_LOCK = "pkgc/conda-env.lock.json"
INSTALL_SCRIPT = "pkgc/install_conda_env.py"


def installer_lock(lock: Lock) -> bytes:
    """The lock in conda-lock's (v1) format, as JSON: valid YAML for conda-lock, stdlib-readable."""
    lockfile = to_conda_lock(lock, [])
    lockfile.alphasort_inplace()
    return (json.dumps(lockfile.to_v1().dict_for_output(), indent=1) + "\n").encode()


def conda_environment(
    lock: Lock, conda: CondaInputs, files: list[ContextFile], prefix: str
) -> tuple[EnvironmentBuild, list[ContextFile]]:
    """The conda recipe for ``lock`` and its context files, added to ``files`` (the pip wheels and
    hashed requirements the caller planned)."""
    out = list(files)
    if not any(f.dest.startswith("pkgc/wheels/") for f in out):
        out.append(ContextFile("pkgc/wheels/NO-PIP-PACKAGES", data=b"this environment has no pip packages\n"))
    out += conda.channel
    out += conda.installer
    out.append(ContextFile(INSTALLER_LOCK, data=installer_lock(lock)))
    out.append(ContextFile(INSTALL_SCRIPT, source=templates_dir() / "runtime" / "install_conda_env.py"))
    build = EnvironmentBuild(
        strategy="conda",
        prefix=prefix,
        requirements="pkgc/requirements.lock.txt",
        wheels="pkgc/wheels",
        conda_lock=INSTALLER_LOCK,
        conda_channel=CHANNEL,
        installer_wheels=INSTALLER_WHEELS,
    )
    return build, out
