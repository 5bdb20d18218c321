"""The Jinja2 environment (StrictUndefined, quoting filters) and Dockerfile rendering."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jinja2

from compiler import __version__
from compiler.plan.types import ImagePlan
from compiler.resources import templates_dir


def dockerquote(value: object) -> str:
    """A double-quoted Dockerfile value (ENV, LABEL): JSON escaping, and ``$`` kept literal."""
    return json.dumps(str(value)).replace("$", "\\$")


def make_environment(extra_dir: Path | None = None) -> jinja2.Environment:
    """Templates from ``extra_dir`` (a user's) first, then pkgc's; undefined values are errors."""
    search = [str(extra_dir)] if extra_dir else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search + [str(templates_dir())]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shquote"] = shlex.quote
    env.filters["dockerquote"] = dockerquote
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    return env


def render_dockerfile(plan: ImagePlan, template: Path | None = None) -> str:
    """Render ``template`` (default: pkgc's Dockerfile.j2) for ``plan``."""
    env = make_environment(template.parent if template else None)
    name = template.name if template else "Dockerfile.j2"
    text = env.get_template(name).render(plan=plan, pkgc_version=__version__)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"
