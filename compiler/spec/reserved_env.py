"""Environment variable names pkgc sets in every package, which a spec may not set.

``environment_variables`` (and a custom server's ``configuration``) are applied after pkgc's own
variables, so the same name would silently replace the model's folder, its mode or the scoring
script the server loads. Such names are refused when the spec is loaded, naming the key and line.
"""

from __future__ import annotations

# Set by the planner (compiler/plan/planner.py) and read by the entrypoint and the servers.
RESERVED_NAMES = ("AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT", "AML_APP_ROOT", "PATH")
RESERVED_PREFIX = "PKGC_"  # PKGC_MODEL_MODE, PKGC_MODEL_REF, PKGC_SERVER, PKGC_PORT, PKGC_INPUT_PATHS, ...


def reserved_env_problem(name: str) -> str | None:
    """Why a spec may not set the variable ``name``, or None."""
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
        listed = ", ".join(RESERVED_NAMES)
        return f"is set by pkgc (reserved: {listed} and {RESERVED_PREFIX}*); remove it or use another name"
    return None
