"""A deterministic generator of malformed package specs (and config files), as an attacker or a careless
user would write them: wrong types, odd unicode, huge values, YAML bombs, hostile paths, names and
versions, encodings, odd keys and YAML tags, broken config files, special spec files.

``cases()`` yields a few hundred ``Case``s; each says what it must give: ``error`` (exit 2), ``ok``
(exit 0), or ``any`` (either, as long as it is clean). ``Case.write(folder)`` lays the case out on disk:
``folder/package.yml`` beside a code folder ``src/score.py`` and a model file ``model.pkl``.
"""

from __future__ import annotations

import copy
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Expect = Literal["error", "ok", "any"]
MB = 1_000_000

BASE: dict[str, Any] = {
    "$schema": "http://azureml/sdk-2-0/ModelVersionPackage.json",
    "base_environment_source": {"type": "environment_asset", "resource_id": "azureml:fuzz-env:1"},
    "target_environment": "fuzz-pkg",
    "target_environment_version": "1",
    "inferencing_server": {"type": "azureml_online", "code_configuration": {"code": "src", "scoring_script": "score.py"}},
    "model_configuration": {"mode": "copy", "mount_path": "/var/azureml-app/models"},
    "model": "azureml:fuzz-model:1",
    "tags": {"team": "ml"},
    "environment_variables": {"WORKERS": "2"},
}
# Every value of BASE that is a string, by key path.
STRING_PATHS: tuple[tuple[str, ...], ...] = (
    ("$schema",),
    ("base_environment_source", "type"),
    ("base_environment_source", "resource_id"),
    ("target_environment",),
    ("target_environment_version",),
    ("inferencing_server", "type"),
    ("inferencing_server", "code_configuration", "code"),
    ("inferencing_server", "code_configuration", "scoring_script"),
    ("model_configuration", "mode"),
    ("model_configuration", "mount_path"),
    ("model",),
    ("tags", "team"),
    ("environment_variables", "WORKERS"),
)
MAPPING_PATHS: tuple[tuple[str, ...], ...] = (
    (), ("base_environment_source",), ("inferencing_server",), ("inferencing_server", "code_configuration"),
    ("model_configuration",), ("tags",), ("environment_variables",),
)  # fmt: skip
# Keys whose value, when not a good string, must be refused (the rest may be coerced or are free text).
STRICT_PATHS = {
    ("base_environment_source", "type"), ("target_environment",), ("target_environment_version",),
    ("inferencing_server", "type"), ("inferencing_server", "code_configuration", "code"),
    ("inferencing_server", "code_configuration", "scoring_script"), ("model_configuration", "mode"),
    ("model_configuration", "mount_path"),
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One malformed input: the spec's bytes, other files, and what pkgc must answer."""

    id: str
    spec: bytes
    expect: Expect
    files: tuple[tuple[str, bytes], ...] = ()  # extra files, relative to the case folder
    links: tuple[tuple[str, str], ...] = ()  # symbolic links: (name, target)
    spec_kind: Literal["file", "folder", "fifo", "link-loop", "dangling-link"] = "file"
    mentions: str | None = None  # a word the error must hold (usually the key)

    def write(self, folder: Path) -> Path:
        """Lay the case out in ``folder``; return the spec path to pass to ``pkgc build``."""
        (folder / "src").mkdir(parents=True, exist_ok=True)
        (folder / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
        (folder / "model.pkl").write_bytes(b"model bytes")
        for name, data in self.files:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for name, points_to in self.links:
            os.symlink(points_to, folder / name)
        spec = folder / "package.yml"
        if self.spec_kind == "file":
            spec.write_bytes(self.spec)
        elif self.spec_kind == "folder":
            spec.mkdir()
        elif self.spec_kind == "fifo":
            os.mkfifo(spec)
        elif self.spec_kind == "link-loop":
            os.symlink("package.yml", spec)
        elif self.spec_kind == "dangling-link":
            os.symlink("nowhere.yml", spec)
        return spec


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter: fast on the 1 MB values


def dump(data: Any) -> bytes:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1 << 30).encode("utf-8")


def with_value(path: tuple[str, ...], value: Any, base: dict | None = None) -> dict:
    data = copy.deepcopy(BASE if base is None else base)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


def without(path: tuple[str, ...]) -> dict:
    data = copy.deepcopy(BASE)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return data


def name_of(path: tuple[str, ...]) -> str:
    return ".".join(path) or "root"


def base_text() -> str:
    return dump(BASE).decode("utf-8")


# -- families -------------------------------------------------------------------------------------
def valid() -> Iterator[Case]:
    yield Case("valid/new-spelling", dump(BASE), "ok")
    old = copy.deepcopy(BASE)
    old["target_environment_name"] = old.pop("target_environment")
    old["inferencing_server"]["code_configuration"] = {"code": "src", "entry_script": "score.py"}
    yield Case("valid/old-spelling", dump(old), "ok")
    yield Case("valid/local-model", dump(with_value(("model",), {"path": "model.pkl", "name": "m", "version": "2"})), "ok")
    yield Case("valid/no-model-section", dump(without(("model",))), "ok")
    yield Case("valid/unicode-tag", dump(with_value(("tags", "team"), "équipe 模型 🙂")), "ok")
    yield Case("valid/newline-tag-value", dump(with_value(("tags", "team"), "a\nb")), "ok")  # tags stay in the workspace
    yield Case("valid/merge-into-tags", base_text().replace("tags:\n  team: ml\n", "tags:\n  <<: {a: b}\n  team: ml\n").encode(), "ok")
    yield Case("valid/crlf", base_text().replace("\n", "\r\n").encode(), "ok")
    yield Case("valid/utf8-bom", b"\xef\xbb\xbf" + dump(BASE), "ok")


def wrong_types() -> Iterator[Case]:
    values: list[tuple[str, Any]] = [
        ("null", None), ("zero", 0), ("negative", -7), ("float", 1.5), ("bool", True), ("empty-list", []),
        ("list", ["a", "b"]), ("empty-map", {}), ("map", {"a": 1}), ("empty-string", ""), ("space", " "),
        ("date", datetime.date(2024, 1, 2)), ("bytes", b"\x00\x01binary"),
    ]  # fmt: skip
    for path in STRING_PATHS:
        for label, value in values:
            expect: Expect = "any"
            if path in STRICT_PATHS and label in ("empty-list", "list", "empty-map", "map", "bytes", "date", "empty-string"):
                expect = "error"
            yield Case(f"type/{name_of(path)}/{label}", dump(with_value(path, value)), expect)
    for path in MAPPING_PATHS[1:]:
        for label, value in (("string", "text"), ("list", [1, 2]), ("int", 3), ("null", None)):
            expect = "any" if label == "null" or path == ("model_configuration",) and label == "null" else "error"
            yield Case(f"type/{name_of(path)}/{label}", dump(with_value(path, value)), expect)
    for label, text in (("list", "- a\n- b\n"), ("scalar", "just text\n"), ("int", "42\n"), ("null", "~\n")):
        yield Case(f"type/root/{label}", text.encode(), "error")


UNICODE = (
    ("accent", "café"), ("cjk", "模型"), ("emoji", "🙂"), ("zero-width", "a\u200bb"), ("rtl-override", "a\u202eb"),
    ("combining", "a\u0301"), ("bom-inside", "a\ufeffb"), ("line-separator", "a\u2028b"), ("nel", "a\x85b"),
    ("tab", "a\tb"), ("newline", "a\nb"), ("carriage-return", "a\rb"), ("escape", "\x1b[31mred"), ("del", "a\x7fb"),
    ("nul", "a\x00b"), ("c1", "a\x9bb"),
)  # fmt: skip
CONTROL_LABELS = {"line-separator", "nel", "tab", "newline", "carriage-return", "escape", "del", "nul", "c1"}


def unicode_values() -> Iterator[Case]:
    for path in STRING_PATHS:
        for label, value in UNICODE:
            expect: Expect = "any"
            if label == "nul" or (path in STRICT_PATHS and label in CONTROL_LABELS):
                expect = "error"
            if path in STRICT_PATHS - {("model_configuration", "mount_path")} and label not in ("tab",):
                expect = "error"  # names, types and files that do not exist
            yield Case(f"unicode/{name_of(path)}/{label}", dump(with_value(path, value)), expect)
    for label, value in (("newline", "a\nb"), ("nul", "a\x00b"), ("trailing-newline", "2\n")):  # values reaching the image
        yield Case(f"image-text/env-value/{label}", dump(with_value(("environment_variables", "WORKERS"), value)), "error", mentions="WORKERS")
    raw = base_text()
    for label, escape in (("lone-surrogate", "\\ud800"), ("nul-escape", "\\0"), ("bell", "\\a"), ("bad-escape", "\\q")):
        text = raw.replace("target_environment: fuzz-pkg", f'target_environment: "fuzz{escape}pkg"')
        yield Case(f"unicode/escape/{label}", text.encode(), "error")
    for label, char in (("raw-nul", "\x00"), ("raw-bell", "\x07"), ("raw-escape", "\x1b"), ("raw-del", "\x7f")):
        yield Case(f"unicode/raw/{label}", raw.replace("fuzz-pkg", f"fuzz{char}pkg").encode(), "error")


def huge_values() -> Iterator[Case]:
    big = "x" * MB
    for path in STRING_PATHS:
        expect: Expect = "error" if path in STRICT_PATHS or path == ("model",) or path == ("base_environment_source", "resource_id") else "any"
        yield Case(f"huge/{name_of(path)}/1mb-string", dump(with_value(path, big)), expect)
    for path in (("target_environment_version",), ("tags", "team"), ("model",), ("target_environment",)):
        yield Case(f"huge/{name_of(path)}/5000-digit-int", _replace_value(path, "9" * 5000), "error", mentions=path[-1])
    yield Case("huge/int-101-digits", _replace_value(("target_environment_version",), "1" * 101), "error")
    yield Case("huge/int-100-digits", _replace_value(("target_environment_version",), "1" * 100), "error")
    yield Case("huge/float-5000-digits", _replace_value(("target_environment_version",), "1." + "5" * 5000), "any")
    yield Case("huge/long-key", (base_text() + "k" * 100_000 + ": 1\n").encode(), "error")
    yield Case("huge/long-tag-key", dump(with_value(("tags",), {"k" * 100_000: "v"})), "any")
    yield Case("huge/50k-tags", dump(with_value(("tags",), {f"t{i}": "v" for i in range(50_000)})), "any")
    yield Case("huge/200k-list", ("colour: [" + "0," * 200_000 + "0]\n").encode() + dump(BASE), "error")
    yield Case("huge/over-1mib-file", dump(BASE) + b"# " + b"x" * (1 << 20) + b"\n", "error")
    yield Case("huge/1mb-comment", dump(BASE) + (b"#" + b"c" * 99 + b"\n") * 9_000, "ok")
    yield Case("huge/10k-env-vars", dump(with_value(("environment_variables",), {f"V{i}": "x" * 50 for i in range(10_000)})), "any")


def _replace_value(path: tuple[str, ...], raw: str) -> bytes:
    """BASE with the value at ``path`` written as the raw YAML text ``raw``."""
    marker = "REPLACE-ME-0123"
    marked = dump(with_value(path, marker)).decode()
    return marked.replace(marker, raw).encode()


def yaml_bombs() -> Iterator[Case]:
    levels = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    bomb = "x-bomb:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + levels
    yield Case("bomb/billion-laughs-unknown-key", (bomb + base_text()).encode(), "error", mentions="more than")
    tags_bomb = base_text().replace("tags:\n  team: ml\n", "tags:\n  team: ml\n  boom: *l9\n")
    yield Case("bomb/billion-laughs-in-tags", (bomb + tags_bomb).encode(), "error", mentions="more than")
    mapping_levels = "x-bomb:\n  m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n" + "".join(
        f"  m{i}: &m{i} {{{', '.join(f'k{j}: *m{i - 1}' for j in range(9))}}}\n" for i in range(1, 10)
    )
    yield Case("bomb/mapping-laughs", (mapping_levels + base_text()).encode(), "error", mentions="more than")
    merge = "x-bomb:\n  m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n" + "".join(
        f"  m{i}: &m{i}\n    <<: [{', '.join([f'*m{i - 1}'] * 9)}]\n" for i in range(1, 10)
    )
    yield Case("bomb/merge-key-laughs", (merge + base_text()).encode(), "error", mentions="more than")
    yield Case("bomb/wide-alias-fanout", ("x-wide: &w [" + ",".join(["1"] * 1000) + "]\nx-use: [" + ",".join(["*w"] * 200) + "]\n").encode() + dump(BASE), "error")
    for label, text in (
        ("self-list", "tags: &a [*a]\n"), ("self-map", "tags: &a {b: *a}\n"), ("indirect", "tags: &a {b: [{c: *a}]}\n"),
        ("in-server", "inferencing_server: &s {type: azureml_online, x: *s}\n"), ("merge-self", "tags: &a {<<: *a}\n"),
    ):  # fmt: skip
        yield Case(f"bomb/recursive/{label}", (text + base_text().split("tags:")[0].replace("inferencing_server", "xx_server")).encode(), "error")
    for label, opener, closer in (("list", "[", "]"), ("map", "{a: ", "}")):
        for depth in (65, 1_000, 50_000):
            yield Case(f"bomb/deep-{label}/{depth}", (f"tags: {opener * depth}1{closer * depth}\n").encode() + dump(without(("tags",))), "error", mentions="nested")
    block = "".join(" " * i + f"k{i}:\n" for i in range(300)) + " " * 300 + "v\n"
    yield Case("bomb/deep-block", ("x-deep:\n" + "\n".join(" " + line for line in block.splitlines()) + "\n").encode() + dump(BASE), "error")
    yield Case("bomb/deep-key", ("? " + "[" * 50_000 + "\n").encode(), "error")
    yield Case("bomb/deep-unclosed", ("tags: " + "[" * 50_000 + "\n").encode(), "error")
    yield Case("bomb/many-anchors", ("x-anchors: [" + ",".join(f"&a{i} {i}" for i in range(120_000)) + "]\n").encode() + dump(BASE), "error")
    yield Case("bomb/undefined-alias", (base_text() + "colour: *nowhere\n").encode(), "error")
    yield Case("bomb/duplicate-anchor", (base_text() + "x1: &a 1\nx2: &a 2\n").encode(), "error")
    yield Case("bomb/alias-as-key", (base_text().replace("tags:\n  team: ml\n", "tags:\n  team: &k ml\n  *k : x\n")).encode(), "any")
    yield Case("bomb/multi-document", (base_text() + "---\n" + base_text()).encode(), "error")


PATHS = {
    ("inferencing_server", "code_configuration", "code"): [
        ("root", "/", "error"), ("proc", "/proc", "any"), ("dotdot", "../..", "any"), ("missing", "nope", "error"),
        ("dot", ".", "error"), ("file-not-folder", "model.pkl", "error"), ("nul", "src\x00", "error"),
        ("long-part", "a" * 300, "error"), ("long-path", "/".join(["abcdefgh"] * 600), "error"),
        ("newline", "src\n", "error"), ("trailing-slash", "src/", "ok"), ("absolute-etc", "/etc", "any"),
        ("loop", "loop", "error"), ("home", "~", "error"),
    ],
    ("inferencing_server", "code_configuration", "scoring_script"): [
        ("absolute", "/etc/passwd", "error"), ("escape", "../package.yml", "error"), ("deep-escape", "../../../../etc/passwd", "error"),
        ("inner-dotdot", "x/../score.py", "error"), ("folder", ".", "error"), ("missing", "nope.py", "error"),
        ("nul", "score.py\x00", "error"), ("long", "s" * 300 + ".py", "error"), ("newline", "score.py\nx", "error"),
        ("dot-slash", "./score.py", "ok"), ("link-out", "out.py", "error"),
    ],
    ("model_configuration", "mount_path"): [
        ("root", "/", "error"), ("etc", "/etc", "error"), ("etc-inside", "/etc/models", "error"), ("var", "/var", "error"),
        ("var-lib", "/var/lib/models", "error"), ("opt", "/opt", "error"), ("opt-pkgc", "/opt/pkgc/models", "error"),
        ("tmp", "/tmp/m", "error"), ("usr", "/usr/local/m", "error"), ("proc", "/proc/self", "error"),
        ("lib64", "/lib64/m", "error"), ("app", "/var/azureml-app", "error"), ("code", "/var/azureml-app/src", "error"),
        ("in-code", "/var/azureml-app/src/m", "error"), ("relative", "models", "error"), ("dotdot", "/models/../etc", "error"),
        ("double-slash", "/models//m", "error"), ("trailing-slash", "/models/", "error"), ("dot", "/models/./m", "error"),
        ("newline", "/models\n", "error"), ("nul", "/models\x00", "error"), ("long", "/" + "m" * 2000, "error"),
        ("long-part", "/models/" + "m" * 300, "error"), ("good-app", "/var/azureml-app/models/m", "ok"),
        ("good-top", "/models", "ok"), ("good-unicode", "/modèles", "ok"), ("good-mnt", "/mnt/models", "ok"),
        ("mnt", "/mnt", "error"), ("home", "/home", "error"), ("mount-option", "/models:ro", "error"), ("comma", "/a,b", "error"),
    ],
}


def paths() -> Iterator[Case]:
    links = (("loop", "loop"), ("src/out.py", "../model.pkl"))
    for path, values in PATHS.items():
        for label, value, expect in values:
            yield Case(f"path/{name_of(path)}/{label}", dump(with_value(path, value)), expect, links=links)
    for label, value, expect in (
        ("proc-environ", "/proc/self/environ", "any"), ("dev-zero", "/dev/zero", "any"), ("root", "/", "any"),
        ("dotdot", "../../..", "any"), ("nul", "model\x00.pkl", "error"), ("long-part", "m" * 300, "error"),
        ("long-path", "/".join(["abcdefgh"] * 600), "error"), ("newline", "model.pkl\n", "error"), ("empty", "", "error"),
    ):  # fmt: skip
        yield Case(f"path/model.path/{label}", dump(with_value(("model",), {"path": value})), expect)
        yield Case(f"path/model-string/{label}", dump(with_value(("model",), value)), expect)


BAD_NAMES = (
    ("empty", ""), ("dot", "."), ("dotdot", ".."), ("traversal", "../../x"), ("slash", "a/b"), ("backslash", "a\\b"),
    ("leading-dash", "-x"), ("leading-dot", ".x"), ("space", "a b"), ("colon", "a:b"), ("at", "a@b"), ("too-long", "a" * 65),
    ("accent", "modèle"), ("newline", "a\nb"), ("nul", "a\x00b"), ("dollar", "$HOME"), ("glob", "a*[b]"),
)  # fmt: skip


def names_and_versions() -> Iterator[Case]:
    for label, value in BAD_NAMES:
        yield Case(f"name/target/{label}", dump(with_value(("target_environment",), value)), "error", mentions="target_environment")
        yield Case(f"name/version/{label}", dump(with_value(("target_environment_version",), value)), "error", mentions="target_environment_version")
        yield Case(f"name/model.name/{label}", dump(with_value(("model",), {"path": "model.pkl", "name": value})), "error", mentions="model.name")
        yield Case(f"name/model.version/{label}", dump(with_value(("model",), {"path": "model.pkl", "version": value})), "error", mentions="model.version")
    for label, ref in (
        ("ws-traversal", "azureml:../x:1"), ("registry-dotdot", "azureml://registries/r/models/../versions/1"),
        ("registry-version-dotdot", "azureml://registries/r/models/m/versions/.."), ("mlflow-dotdot", "models:/../1"),
        ("mlflow-newline", "models:/a\nb/1"), ("long-name", "azureml:" + "m" * 500 + ":1"), ("unicode", "azureml:modèle:1"),
    ):  # fmt: skip
        yield Case(f"name/model-ref/{label}", dump(with_value(("model",), ref)), "any")
        yield Case(f"name/env-ref/{label}", dump(with_value(("base_environment_source", "resource_id"), ref)), "any")
    for label, value in (("version-0", "0"), ("version-int", 7), ("version-dotted", "1.2.3"), ("name-max", "a" * 64)):
        path = ("target_environment",) if label.startswith("name") else ("target_environment_version",)
        yield Case(f"name/good/{label}", dump(with_value(path, value)), "ok")


def encodings() -> Iterator[Case]:
    text = base_text().replace("team: ml", "team: équipe")
    for label, data, expect in (
        ("utf-16-le-bom", b"\xff\xfe" + text.encode("utf-16-le"), "ok"), ("utf-16-be-bom", b"\xfe\xff" + text.encode("utf-16-be"), "ok"),
        ("utf-32-bom", text.encode("utf-32"), "ok"), ("utf-8-bom", b"\xef\xbb\xbf" + text.encode(), "ok"),
        ("latin-1", text.encode("latin-1"), "error"), ("utf-16-no-bom", text.encode("utf-16-le"), "error"),
        ("cp1252", text.replace("équipe", "“quoted”").encode("cp1252"), "error"), ("truncated-utf8", text.encode()[:-1] + b"\xc3", "error"),
        ("overlong", text.encode().replace(b"fuzz-pkg", b"fuzz\xc0\xafpkg"), "error"), ("lone-ff", b"\xff" + text.encode(), "error"),
        ("utf-16-bom-odd", b"\xff\xfe" + text.encode("utf-16-le") + b"\x00", "error"), ("cr-only", text.replace("\n", "\r").encode(), "ok"),
        ("mixed-newlines", text.replace("\n", "\r\n", 3).encode(), "ok"), ("nul-bytes", text.encode().replace(b"\n", b"\n\x00", 2), "error"),
        ("empty", b"", "error"), ("whitespace", b"   \n\n\t\n", "error"), ("comment-only", b"# nothing\n", "error"),
        ("document-marker", b"---\n", "error"), ("end-marker", b"...\n", "error"), ("tabs-indent", text.replace("  ", "\t").encode(), "error"),
        ("utf-8-surrogate-bytes", text.encode().replace(b"fuzz-pkg", b"fuzz\xed\xa0\x80pkg"), "error"),
    ):  # fmt: skip
        yield Case(f"encoding/{label}", data, expect)


def keys() -> Iterator[Case]:
    raw = base_text()
    yield Case("key/unknown-top", (raw + "colour: blue\n").encode(), "error", mentions="colour")
    yield Case("key/unknown-nested", dump(with_value(("model_configuration", "colour"), "blue")), "error", mentions="colour")
    yield Case("key/duplicate-top", (raw + "target_environment: again\n").encode(), "error", mentions="duplicate")
    yield Case("key/duplicate-nested", raw.replace("  team: ml\n", "  team: ml\n  team: ai\n").encode(), "error", mentions="duplicate")
    yield Case("key/both-spellings", (raw + "target_environment_name: other\n").encode(), "error")
    both = raw.replace("scoring_script: score.py", "scoring_script: score.py\n      entry_script: score.py")
    yield Case("key/both-script-spellings", both.encode(), "error")
    for label, key in (
        ("int", "1"), ("bool", "true"), ("null", "null"), ("float", "1.5"), ("list", "[a, b]"), ("map", "{a: b}"),
        ("newline", '"a\\nb"'), ("nul", '"a\\0b"'), ("long", "k" * 5000), ("unicode", "clé"), ("empty", '""'),
        ("date", "2024-01-01"), ("merge-scalar", "<<"),
    ):  # fmt: skip
        yield Case(f"key/odd-top/{label}", (raw + f"{key}: 1\n").encode() if label not in ("list", "map") else (raw + f"? {key}\n: 1\n").encode(), "error")
        yield Case(f"key/odd-tag/{label}", raw.replace("  team: ml\n", f"  team: ml\n  {key}: v\n").encode() if label not in ("list", "map") else raw.replace("  team: ml\n", f"  team: ml\n  ? {key}\n  : v\n").encode(), "any")
        yield Case(f"key/odd-env/{label}", raw.replace("  WORKERS: '2'\n", f"  WORKERS: '2'\n  {key}: v\n").encode() if label not in ("list", "map") else raw.replace("  WORKERS: '2'\n", f"  WORKERS: '2'\n  ? {key}\n  : v\n").encode(), "error")
    for label, name in (("digit-first", "1BAD"), ("dash", "A-B"), ("space", "'A B'"), ("accent", "É"), ("empty", "''")):
        yield Case(f"key/env-name/{label}", raw.replace("  WORKERS: '2'\n", f"  {name}: x\n").encode(), "error", mentions="environment_variables")


def yaml_tags() -> Iterator[Case]:
    raw = base_text()
    for label, value, expect in (
        ("python-object", "!!python/object/apply:os.system [echo hi]", "error"), ("python-name", "!!python/name:os.system", "error"),
        ("python-module", "!!python/module:os", "error"), ("binary", "!!binary aGVsbG8=", "any"), ("bad-binary", "!!binary '***'", "error"),
        ("set", "!!set {a, b}", "error"), ("omap", "!!omap [a: 1]", "error"), ("bad-omap", "!!omap 3", "error"),
        ("timestamp", "!!timestamp 2024-01-01", "error"), ("bad-timestamp", "!!timestamp xyz", "error"), ("month-13", "2024-13-01", "error"),
        ("bad-int", "!!int abc", "error"), ("empty-int", "!!int ''", "error"), ("bad-float", "!!float abc", "error"),
        ("bad-bool", "!!bool maybe", "error"), ("local-tag", "!custom x", "error"), ("verbatim-tag", "!<tag:x> y", "error"),
        ("str-int", "!!str 12", "ok"), ("null-tag", "!!null ''", "any"), ("sexagesimal", "1:20:30", "ok"),
        ("hex", "0x1F", "ok"), ("octal", "0o17", "ok"), ("inf", ".inf", "ok"), ("nan", ".nan", "ok"),
    ):  # fmt: skip
        yield Case(f"tag/{label}", raw.replace("target_environment_version: '1'", f"target_environment_version: {value}").encode(), expect)


def config_files() -> Iterator[Case]:
    spec = dump(BASE)
    for label, name, text in (
        ("registries-string", "pkgc.toml", 'registries = "x"\n'), ("registry-int", "pkgc.toml", "[registries]\ncorp = 5\n"),
        ("registry-table", "pkgc.toml", "[registries.corp]\npath = 'x'\n"), ("bad-toml", "pkgc.toml", "a = [\n1,,\n"),
        ("unknown-key", "pkgc.toml", "colour = 1\n"), ("latin-1", "pkgc.toml", "workspace = 'caf\xe9'\n"),
        ("nul-path", "pkgc.toml", '[registries]\nx = "a\\u0000b"\n'), ("workspace-list", "pkgc.toml", "workspace = [1]\n"),
        ("pyproject-tool-string", "pyproject.toml", 'tool = "x"\n'), ("pyproject-pkgc-int", "pyproject.toml", "[tool]\npkgc = 1\n"),
        ("pyproject-bad", "pyproject.toml", "[tool.pkgc\n"), ("image-int", "pkgc.toml", "mlflow_base_image = 1\n"),
    ):  # fmt: skip
        data = text.encode("latin-1") if label == "latin-1" else text.encode()
        yield Case(f"config/{label}", spec, "error", files=((name, data),), mentions=name)
    yield Case("config/good-relative-registry", spec, "ok", files=(("pkgc.toml", b'[registries]\ncorp = "reg"\n'),))
    yield Case("config/good-pyproject", spec, "ok", files=(("pyproject.toml", b'[project]\nname = "x"\n'),))


def spec_files() -> Iterator[Case]:
    for kind in ("folder", "fifo", "link-loop", "dangling-link"):
        yield Case(f"file/{kind}", b"", "error", spec_kind=kind)  # type: ignore[arg-type]


FAMILIES = (valid, wrong_types, unicode_values, huge_values, yaml_bombs, paths, names_and_versions, encodings, keys,
            yaml_tags, config_files, spec_files)  # fmt: skip


def cases() -> list[Case]:
    """Every case, in a fixed order; ids are unique."""
    out = [case for family in FAMILIES for case in family()]
    ids = [case.id for case in out]
    assert len(set(ids)) == len(ids), "duplicate case ids"
    return out


