"""YAML documents with positions: every key path maps to the line it was written on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compiler.errors import SpecError, SpecProblem

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML data plus the line (1-based) of each key path, for error messages."""

    path: Path
    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, key: KeyPath) -> int | None:
        """The line of ``key``, or of its nearest parent that has one."""
        key = tuple(key)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get(())

    def problem(self, key: KeyPath, message: str) -> SpecProblem:
        return SpecProblem(self.path, format_key(key), message, self.line_of(key))


def format_key(key: KeyPath) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _positions(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = prefix + (str(key_node.value),)
            lines[key] = key_node.start_mark.line + 1
            _positions(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _positions(item, prefix + (index,), lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, what: str = "file") -> YamlDocument:
    """Read ``path`` as one YAML document; a missing file or bad YAML is a one-line SpecError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(SpecProblem(path, "", f"{what} not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(SpecProblem(path, "", f"cannot read {what}: {exc}")) from None
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.context_mark and exc.context_mark.line + 1 != line:
            reason += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise SpecError(SpecProblem(path, "", f"invalid YAML: {reason}", line)) from None
    except yaml.YAMLError as exc:
        raise SpecError(SpecProblem(path, "", f"invalid YAML: {exc}")) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _positions(node, (), lines)
    return YamlDocument(path=path, data=data, lines=lines)
