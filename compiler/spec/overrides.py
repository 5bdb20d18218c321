"""``--set KEY=VALUE`` and ``--endpoint-name NAME``: fill a deployment YAML's placeholders, set its keys.

Azure's samples leave values for the user to fill: ``endpoint_name: <ENDPOINT_NAME>``,
``endpoint_name: {{ENDPOINT_NAME}}``, ``version: {{MODEL_VERSION}}``. As ``az ml ... --set`` does,
pkgc takes them from the command line, so the files work unchanged:

- ``--set KEY=VALUE`` fills every placeholder named KEY (``<KEY>`` or ``{{KEY}}``, any case) in the
  document's text, before it is parsed (an unquoted ``{{KEY}}`` is not YAML until it is filled); the
  value must then be a plain word (a name, version, path or image reference). With no placeholder
  named KEY, KEY is a dotted key path (``settings.mini_batch_size``) set to VALUE read as a YAML
  scalar, creating the mappings on the way, as ``az ml`` does.
- ``--endpoint-name NAME`` fills ``endpoint_name`` placeholders and sets ``endpoint_name``.
- A placeholder left unfilled is one line naming the file, the key, the line and the ``--set`` to give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.spec.yamldoc import KeyPath, YamlDocument

NAME = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
PLACEHOLDER = re.compile(r"\{\{\s*(" + NAME + r")\s*\}\}|<(" + NAME + r")>")
KEY_PATH = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$-]{0,200}$")
PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/:@+=~-]{0,511}$")  # safe in any YAML scalar
LINE_KEY = re.compile(r"^\s*(?:-\s+)?([^\s:#][^:#]*?)\s*:(?:\s|$)")
MAX_VALUE = 4096
FREE_TEXT = ("description",)  # prose may hold <angle brackets>


@dataclass(frozen=True)
class Overrides:
    """``--set`` pairs in order, and ``--endpoint-name``."""

    values: tuple[tuple[str, str], ...] = ()
    endpoint_name: str | None = None

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every pair once (the last given wins), ``--endpoint-name`` as ``endpoint_name``, last."""
        given = dict(self.values)
        if self.endpoint_name is not None:
            given.pop("endpoint_name", None)
            given["endpoint_name"] = self.endpoint_name
        return tuple(given.items())


def parse_overrides(texts: list[str] | None, endpoint_name: str | None = None) -> Overrides:
    """``KEY=VALUE`` texts as given on the command line; a malformed one is bad input naming it."""
    pairs = []
    for text in texts or ():
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not KEY_PATH.match(key):
            raise SpecError(SpecProblem("--set", "", f"'{excerpt(text)}' is not KEY=VALUE (a dotted key such as settings.mini_batch_size)"))
        if len(value) > MAX_VALUE or "\n" in value or "\0" in value:
            raise SpecError(SpecProblem("--set", key, f"the value must be one line of at most {MAX_VALUE} characters"))
        pairs.append((key, value))
    if endpoint_name is not None and not PLAIN_VALUE.match(endpoint_name):
        raise SpecError(SpecProblem("--endpoint-name", "", f"'{excerpt(endpoint_name)}' is not a name"))
    return Overrides(tuple(pairs), endpoint_name)


def _named(name: str, match: re.Match) -> bool:
    return (match.group(1) or match.group(2)).lower() == name.lower()


def fill_text(text: str, overrides: Overrides) -> tuple[str, frozenset[str]]:
    """The text with every placeholder a pair names filled; and the keys that filled one."""
    used = set()
    for key, value in overrides.pairs:
        if not any(_named(key, m) for m in PLACEHOLDER.finditer(text)):
            continue
        if not PLAIN_VALUE.match(value):
            flag, named = ("--endpoint-name", "") if key == "endpoint_name" and value == overrides.endpoint_name else ("--set", key)
            raise SpecError(SpecProblem(flag, named, f"'{excerpt(value)}' fills a placeholder: give a plain name, version, "
                                                  "path or image reference (letters, digits and ._/:@+=~-)"))  # fmt: skip
        text = PLACEHOLDER.sub(lambda m: value if _named(key, m) else m.group(0), text)
        used.add(key)
    return text, frozenset(used)


def check_text(text: str, path) -> None:
    """A ``{{NAME}}`` left in the text (outside comments) is not filled: name its line and key."""
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split(" #", 1)[0]
        if code.lstrip().startswith("#"):
            continue
        found = re.search(r"\{\{\s*(" + NAME + r")\s*\}\}", code)
        if found:
            key = LINE_KEY.match(code)
            raise SpecError(SpecProblem(path, key.group(1) if key else "", _unfilled(found.group(0), found.group(1)), number))


def _unfilled(placeholder: str, name: str) -> str:
    hint = " (or --endpoint-name NAME)" if name.lower() == "endpoint_name" else ""
    return f"placeholder '{excerpt(placeholder)}' is not filled: pass --set {name}=VALUE{hint}"


def set_keys(doc: YamlDocument, overrides: Overrides, used: frozenset[str]) -> None:
    """Set every pair that filled no placeholder as a dotted key path (``--endpoint-name`` always)."""
    for key, value in overrides.pairs:
        if key in used and not (key == "endpoint_name" and value == overrides.endpoint_name):
            continue
        parts = tuple(key.split("."))
        parent: Any = doc.data
        for depth, part in enumerate(parts[:-1]):
            child = parent.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(SpecProblem("--set", key, f"'{'.'.join(parts[: depth + 1])}' is not a mapping in {doc.path.name}"))
            parent = child
        parent[parts[-1]] = _scalar(key, value) if not (key == "endpoint_name" and value == overrides.endpoint_name) else value


def _scalar(key: str, value: str) -> Any:
    """VALUE as YAML reads a scalar (5 -> 5, true -> True, text -> text); mappings and lists stay text."""
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (str, int, float, bool)) else value


def check_values(doc: YamlDocument) -> None:
    """A ``<NAME>`` left in a value is a placeholder nobody filled: one line naming the key and line."""
    problems: list[SpecProblem] = []

    def visit(value: Any, key: KeyPath) -> None:
        if isinstance(value, dict):
            for child_key, child in value.items():
                if not (key == () and child_key in FREE_TEXT):
                    visit(child, key + (child_key,))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, key + (index,))
        elif isinstance(value, str):
            found = PLACEHOLDER.search(value)
            if found:
                problems.append(doc.problem(key, _unfilled(found.group(0), found.group(1) or found.group(2))))

    visit(doc.data, ())
    if problems:
        raise SpecError(problems[:1])
