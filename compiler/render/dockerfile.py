"""The Jinja2 environment (StrictUndefined, quoting filters) and Dockerfile rendering."""

from __future__ import annotations

import json
import shlex
from functools import cache
from pathlib import Path

import jinja2

from compiler import __version__
from compiler.plan.types import ImagePlan
from compiler.resources import templates_dir


def _escape_word(value: object) -> str:
    """``value`` for the builder's word processing (quotes, ``\\`` escapes, ``$`` expansion): read back literally."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def dockerquote(value: object) -> str:
    """A double-quoted Dockerfile value (ENV, LABEL, WORKDIR) the builder reads back byte for byte.

    Raw UTF-8 (the builder does not decode ``\\u`` escapes here); inside double quotes it only
    unescapes ``\\"``, ``\\$`` and ``\\\\``, so those three are escaped and nothing expands. A value
    cannot hold a newline (a Dockerfile line cannot): the planner refuses those."""
    return f'"{_escape_word(value)}"'


def dockerwords(values: object) -> str:
    """The JSON-form arguments of COPY: a JSON array (raw UTF-8) whose strings, after the builder's
    JSON decoding and its word processing (quotes, escapes, ``$``), are the values byte for byte.

    Not for ENTRYPOINT/CMD/RUN: their JSON form is taken as it is, without word processing."""
    words = [_escape_word(v).replace("'", "\\'") for v in values]  # type: ignore[union-attr]
    return json.dumps(words, ensure_ascii=False)


@cache
def make_environment(extra_dir: Path | None = None) -> jinja2.Environment:
    """Templates from ``extra_dir`` (a user's) first, then pkgc's; undefined values are errors.
    Loaded once per process (no reload): rendering reads no file after the first use."""
    search = [str(extra_dir)] if extra_dir else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search + [str(templates_dir())]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )
    env.filters["shquote"] = shlex.quote
    env.filters["dockerquote"] = dockerquote
    env.filters["dockerwords"] = dockerwords
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    return env


def environment_template(plan: ImagePlan) -> str:
    """The environment stage's template: one per environment strategy."""
    if plan.environment is None:
        raise ValueError("the Dockerfile back end needs the plan's environment recipe")
    return f"environment/{plan.environment.strategy}.j2"


def render_dockerfile(plan: ImagePlan, template: Path | None = None) -> str:
    """Render ``template`` (default: pkgc's Dockerfile.j2) for ``plan``."""
    env = make_environment(template.parent if template else None)
    name = template.name if template else "Dockerfile.j2"
    text = env.get_template(name).render(plan=plan, pkgc_version=__version__, environment_template=environment_template(plan))
    # split on "\n" only: splitlines() would also break at \r, \x85, \u2028... inside quoted values
    return "\n".join(line.rstrip(" \t") for line in text.strip().split("\n")) + "\n"
