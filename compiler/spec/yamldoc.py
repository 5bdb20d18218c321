"""YAML documents with positions: every key path maps to the line it was written on.

Every file read here is untrusted (package specs, environment files, conda files, MLmodel files), so
reading has limits, each refused with one line naming the file, the line and the key:

- the file: a regular file of at most ``max_bytes`` (1 MiB for specs), UTF-8 (UTF-16/32 with a BOM);
- the node graph is composed once, with a budget of values that counts an alias each time it is used
  (so an alias bomb stops at the budget, not at the machine's memory), a nesting depth, no recursive
  aliases, no duplicate keys and no integer longer than ``MAX_INT_CHARS``;
- the data is constructed from that same node graph; positions are recorded while composing.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from compiler.errors import SpecError, SpecProblem, excerpt

KeyPath = tuple[str | int, ...]

MAX_BYTES = 4 * 1024 * 1024  # MLmodel files carry their signature; specs pass a tighter limit
MAX_VALUES = 50_000  # values (keys count) in the document with every alias expanded
MAX_DEPTH = 64
MAX_INT_CHARS = 100
MAX_KEY_CHARS = 80  # a key path in an error line
INT_TAG = "tag:yaml.org,2002:int"
MERGE_TAG = "tag:yaml.org,2002:merge"
NOT_IN_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)  # fmt: skip


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
    """``a.b[0].c``; parts shortened, control characters escaped and a deep path elided, so it stays short."""
    parts = []
    for part in key:
        text = excerpt(str(part), 60)
        parts.append(f"[{text}]" if isinstance(part, int) else (f".{text}" if parts else text))
    if len(parts) > 8:
        parts = parts[:4] + ["..."] + parts[-3:]
    text = "".join(parts)
    return text if len(text) <= MAX_KEY_CHARS else text[: MAX_KEY_CHARS // 2 - 2] + "..." + text[-(MAX_KEY_CHARS // 2 - 1) :]


class _Refused(Exception):
    """A limit or rule of ``load_yaml`` broken at one place in the document."""

    def __init__(self, key: KeyPath, line: int, message: str):
        super().__init__(message)
        self.key, self.line, self.message = key, line, message


def _key_label(node: Node) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


class _LimitedComposer(Composer):
    """Composer that counts values (aliases expanded), limits depth, and refuses recursive aliases,
    duplicate keys and over-long integers, naming the key path of each refusal. It records the line
    of every key path as it goes (an alias at the line it is used), so nothing walks the graph again."""

    def __init__(self) -> None:
        super().__init__()
        self._path: list[str | int] = []
        self._depth = 0
        self._values = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its size with aliases expanded, once composed
        self.lines: dict[KeyPath, int] = {}  # key path -> line (of the key, for a mapping's value)
        self.node_paths: dict[int, KeyPath] = {}  # id(node) -> where it was first written

    def _refuse(self, mark, message: str, key: KeyPath | None = None) -> _Refused:
        return _Refused(tuple(self._path) if key is None else key, mark.line + 1, message)

    def _parsed(self, step, *args):
        """A parser step, libyaml's own nesting limit (in PyYAML 6.0.4's wheels) refused as pkgc's, at this key."""
        try:
            return step(*args)
        except yaml.MarkedYAMLError as exc:
            if exc.problem_mark is not None and "maximum nesting depth" in str(exc.problem):
                raise self._refuse(exc.problem_mark, f"nested more than {MAX_DEPTH} levels deep") from None
            raise

    def peek_event(self):
        return self._parsed(super().peek_event)  # type: ignore[misc]

    def check_event(self, *choices):
        return self._parsed(super().check_event, *choices)  # type: ignore[misc]

    def get_event(self):
        return self._parsed(super().get_event)  # type: ignore[misc]

    def _count(self, size: int, mark) -> None:
        self._values += size
        if self._values > MAX_VALUES:
            raise self._refuse(
                mark, f"the document holds more than {MAX_VALUES} values (aliases counted each time used)"
            )

    def compose_node(self, parent, index):
        part = index if isinstance(parent, SequenceNode) else _key_label(index) if index is not None else None
        if part is not None:
            self._path.append(part)
        where = index if isinstance(parent, MappingNode) and index is not None else self.peek_event()
        self.lines.setdefault(tuple(self._path), where.start_mark.line + 1)
        self._depth += 1
        try:
            return self._compose_counted(parent, index)
        finally:
            self._depth -= 1
            if part is not None:
                self._path.pop()

    def _compose_counted(self, parent, index):
        event = self.peek_event()
        if self._depth > MAX_DEPTH:
            raise self._refuse(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(event, AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                if id(node) not in self._sizes:
                    anchor = excerpt(event.anchor, 40)
                    raise self._refuse(event.start_mark, f"alias *{anchor} is used inside its own anchor")
                self._count(self._sizes[id(node)], event.start_mark)
            return super().compose_node(parent, index)
        before = self._values
        self._count(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._values - before
        self.node_paths.setdefault(id(node), tuple(self._path))
        return node

    def compose_scalar_node(self, anchor):
        node = super().compose_scalar_node(anchor)
        if node.tag == INT_TAG and len(node.value) > MAX_INT_CHARS:
            raise self._refuse(
                node.start_mark, f"an integer of {len(node.value)} characters is too long (at most {MAX_INT_CHARS}); quote text"
            )
        return node

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            earlier = first.setdefault((key_node.tag, key_node.value), key_node)
            if earlier is not key_node:
                raise self._refuse(
                    key_node.start_mark,
                    f"invalid YAML: duplicate key '{excerpt(key_node.value, 60)}' (first on line {earlier.start_mark.line + 1})",
                )
        return node


class _SafeValues(SafeConstructor):
    """SafeConstructor whose bad values (``!!int x``, a 13th month) are refusals naming key and line
    (``node_paths`` comes from the composer)."""

    node_paths: dict[int, KeyPath]

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            reason = f": {excerpt(str(exc), 100)}" if type(exc) is ValueError and str(exc) else ""
            key = self.node_paths.get(id(node), ())
            raise _Refused(key, node.start_mark.line + 1, f"not a valid {kind} value{reason}") from None


def _loaders() -> dict[str, type]:
    """Our composer on libyaml's parser (fast on large files) when PyYAML has it, and on PyYAML's own."""
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class PythonLoader(Reader, Scanner, Parser, _LimitedComposer, _SafeValues, Resolver):
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _LimitedComposer.__init__(self)
            _SafeValues.__init__(self)
            Resolver.__init__(self)

    loaders: dict[str, type] = {"python": PythonLoader}
    try:
        from yaml.cyaml import CParser
    except ImportError:  # PyYAML built without libyaml
        return loaders

    class LibyamlLoader(_LimitedComposer, CParser, _SafeValues, Resolver):
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            _SafeValues.__init__(self)
            Resolver.__init__(self)
            _LimitedComposer.__init__(self)

    loaders["libyaml"] = LibyamlLoader
    return loaders


LOADERS = _loaders()
_Loader = LOADERS.get("libyaml", LOADERS["python"])


def _read_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    def fail(message: str) -> SpecError:
        return SpecError(SpecProblem(path, "", message))

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks on a FIFO
    except FileNotFoundError:
        raise fail(f"{what} not found") from None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise fail(f"{what} is a folder, not a file" if stat.S_ISDIR(mode) else f"{what} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise fail(f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise fail(f"{what} is larger than {max_bytes // 1024} KiB")
    return data


def _decode(data: bytes, path: Path, what: str) -> str:
    """UTF-8 (with or without a BOM), or UTF-16/UTF-32 with a BOM, as YAML allows."""
    encoding = next((enc for bom, enc in BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1 if encoding == "utf-8" else None
        byte = f" (byte 0x{data[exc.start]:02x})" if encoding == "utf-8" else ""
        name = encoding.upper().removesuffix("-SIG")
        raise SpecError(SpecProblem(path, "", f"{what} is not valid {name}{byte}: save it as UTF-8", line)) from None


def read_text(path: Path, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """A small input text file (requirements.txt, ...) read within the same limits as YAML."""
    return _decode(_read_bytes(path, what, max_bytes), path, what)


def _check_characters(text: str, path: Path) -> None:
    found = NOT_IN_YAML.search(text)
    if found:
        char = found.group()
        line = text.count("\n", 0, found.start()) + 1
        hint = " (a UTF-16 file without a byte-order mark?)" if char == "\x00" else ""
        raise SpecError(SpecProblem(path, "", f"invalid YAML: character U+{ord(char):04X} is not allowed{hint}", line))


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> SpecProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.context_mark and exc.context_mark.line + 1 != line:
            reason += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        return SpecProblem(path, "", f"invalid YAML: {excerpt(reason, 200)}", line)
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SpecProblem(path, "", f"invalid YAML: {excerpt(first_line, 200)}")


def load_yaml(path: Path, what: str = "file", max_bytes: int = MAX_BYTES, transform: Callable[[str], str] | None = None) -> YamlDocument:
    """Read ``path`` as one YAML document within the limits above; any problem is a one-line SpecError.
    ``transform`` rewrites the text before it is parsed, line for line (``--set`` fills placeholders)."""
    path = Path(path)
    text = _decode(_read_bytes(path, what, max_bytes), path, what)
    if transform is not None:
        text = transform(text)
    _check_characters(text, path)
    loader = _Loader(text)
    data = None
    try:
        node = loader.get_single_node()
        if node is not None:
            data = loader.construct_document(node)
    except _Refused as exc:
        raise SpecError(SpecProblem(path, format_key(exc.key), exc.message, exc.line)) from None
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_problem(path, exc)) from None
    finally:
        loader.dispose()
    return YamlDocument(path=path, data=data, lines=loader.lines if node is not None else {})
