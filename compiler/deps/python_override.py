"""``--python-version X.Y``: the whole environment's Python, not only the one a model records.

Every source's ``python`` requirement (the base environment's conda file, the MLflow model's file)
is replaced by one from the command line, so they can no longer conflict with each other; the
note names each requirement that was overridden and its source.
"""

from __future__ import annotations

import re
from dataclasses import replace

from compiler.deps.satisfiable import satisfiable
from compiler.deps.specs import parse_conda
from compiler.deps.types import DepSet, Source
from compiler.errors import SpecError, SpecProblem, excerpt

PYTHON_MINOR = re.compile(r"^3\.[0-9]{1,2}$")


def override_python(depsets: list[DepSet], version: str) -> tuple[list[DepSet], str | None]:
    """(depsets with one ``python=X.Y`` from the command line, the warning naming what it replaced)."""
    if not PYTHON_MINOR.match(version):
        raise SpecError(SpecProblem("--python-version", "", f"'{excerpt(version)}' is not a Python version X.Y (e.g. 3.11)"))
    replaced, out = [], []
    for depset in depsets:
        kept = tuple(r for r in depset.requirements if not (r.manager == "conda" and r.name == "python"))
        replaced += [r for r in depset.requirements if r not in kept]
        out.append(replace(depset, requirements=kept))
    source = Source("cli", f"--python-version {version}")
    out.append(DepSet(source, (parse_conda(f"python={version}", source),)))
    differing = [r for r in replaced if not satisfiable(",".join(s for s in (r.specifier, f"=={version}.*") if s))]
    if not differing:
        return out, None
    what = "; ".join(f"'{r.raw}' from {r.source}" for r in differing)
    return out, f"--python-version {version} overrides the environment's Python: {what}; check that the model and code run on Python {version}"
