"""YAML limits (compiler/spec/yamldoc.py), with both parsers: alias bombs, recursive aliases, deep
nesting, long integers, bad characters and encodings, special files; and the memory a 1 MB spec takes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.spec import yamldoc
from compiler.spec.yamldoc import MAX_VALUES, load_yaml
from tests.conftest import ROOT
from tests.fuzz.malformed import BASE, dump, with_value

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)  # nine levels of nine aliases: 9**9 values once expanded, 10 lines of text
RSS_LIMIT_MB = 200
# Runs a command and prints the peak RSS (MB) of it alone: the wrapper's only child.
MEASURE = (
    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); print(u.ru_utime + u.ru_stime); print(u.ru_maxrss // 1024); "
    "sys.stderr.write(p.stderr); "
    "sys.exit(p.returncode)"
)


@pytest.fixture(params=sorted(yamldoc.LOADERS))
def parser(request, monkeypatch) -> str:
    """Every test below runs with libyaml's parser and with PyYAML's own."""
    monkeypatch.setattr(yamldoc, "_Loader", yamldoc.LOADERS[request.param])
    return request.param


def refusal(tmp_path: Path, text: str | bytes, **kwargs) -> str:
    path = tmp_path / "doc.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    start = time.process_time()
    with pytest.raises(SpecError) as err:
        load_yaml(path, "package spec", **kwargs)
    assert time.process_time() - start < 2.0
    (line,) = err.value.lines()
    return line.removeprefix(str(path))


def test_alias_bomb_is_refused_at_the_value_budget(tmp_path, parser):
    assert refusal(tmp_path, BOMB) == f":5: e[5]: the document holds more than {MAX_VALUES} values (aliases counted each time used)"


def test_alias_bomb_through_mapping_merges_is_refused(tmp_path, parser):
    merges = "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n" + "".join(
        f"m{i}: &m{i}\n  <<: [{', '.join([f'*m{i - 1}'] * 9)}]\n" for i in range(1, 10)
    )
    assert "more than" in refusal(tmp_path, merges)


@pytest.mark.parametrize("text, key", [("a: &a [1, *a]\n", "a[1]"), ("a: &a {b: {c: *a}}\n", "a.b.c"), ("&r [*r]\n", "[0]")])
def test_recursive_aliases_are_refused(tmp_path, parser, text, key):
    assert refusal(tmp_path, text).endswith(f": {key}: alias *{text.split('&')[1][0]} is used inside its own anchor")


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_refused_without_recursion(tmp_path, parser, opener, closer):
    line = refusal(tmp_path, "a: " + opener * 50_000 + "1" + closer * 50_000 + "\n")
    assert line.startswith(":1: a") and line.endswith(f"nested more than {yamldoc.MAX_DEPTH} levels deep")


def test_deep_nesting_inside_a_key_is_refused(tmp_path, parser):
    assert "nested more than" in refusal(tmp_path, "? " + "[" * 50_000 + "\n")


def test_nesting_to_the_limit_is_read(tmp_path, parser):
    lists = yamldoc.MAX_DEPTH - 1  # the innermost value is at depth MAX_DEPTH
    path = tmp_path / "doc.yml"
    path.write_text("[" * lists + "1" + "]" * lists + "\n")
    data = load_yaml(path).data
    for _ in range(lists):
        (data,) = data
    assert data == 1
    assert "nested more than" in refusal(tmp_path, "[" * (lists + 1) + "1" + "]" * (lists + 1) + "\n")


@pytest.mark.parametrize("value", ["9" * 5000, "!!int '" + "9" * 5000 + "'", "0x" + "f" * 200, "1" * 101])
def test_long_integers_are_refused_before_python_converts_them(tmp_path, parser, value):
    line = refusal(tmp_path, f"x: 1\nversion: {value}\n")
    assert line.startswith(":2: version: an integer of ") and "too long" in line


def test_a_100_character_integer_is_read(tmp_path, parser):
    path = tmp_path / "doc.yml"
    path.write_text("n: " + "1" * 100 + "\n")
    assert load_yaml(path).data["n"] == int("1" * 100)


def test_aliases_within_the_budget_are_read_and_walked_once(tmp_path, parser):
    subtree = "{" + ", ".join(f"k{i}: [1, 2, 3]" for i in range(20)) + "}"  # 101 values (keys count)
    path = tmp_path / "doc.yml"
    path.write_text(f"base: &b {subtree}\nuses: [{', '.join(['*b'] * 450)}]\n")  # ~45 500 values expanded
    doc = load_yaml(path)
    assert doc.data["uses"][449]["k19"] == [1, 2, 3]
    assert len(doc.lines) < 600  # each alias use is one position, its subtree is not walked again
    assert doc.line_of(("uses", 449, "k3", 1)) == 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: b\x00c\n", ":1: invalid YAML: character U+0000 is not allowed (a UTF-16 file without a byte-order mark?)"),
        ("a: 1\nb: \x07\n", ":2: invalid YAML: character U+0007 is not allowed"),
        ("a: 1\nb:\n  c: 1\n  c: 2\n", ":4: b: invalid YAML: duplicate key 'c' (first on line 3)"),
        ("a: 1\na: 2\n", ":2: invalid YAML: duplicate key 'a' (first on line 1)"),
        ("a: !!python/object/apply:os.system [ls]\n", ":1: invalid YAML: could not determine a constructor"),
        ("when: 2024-13-40\n", ":1: when: not a valid timestamp value: month must be in 1..12"),
        ("n: !!int abc\n", ":1: n: not a valid int value: invalid literal for int() with base 10: 'abc'"),
        ("n: !!bool maybe\n", ":1: n: not a valid bool value"),
        ("? [a]\n: 1\n", ":1: invalid YAML: found unhashable key"),
        ("a: *nowhere\n", ":1: invalid YAML: found undefined alias 'nowhere'"),
        ("a: 1\n---\nb: 2\n", ":2: invalid YAML: but found another document"),
    ],
)
def test_bad_yaml_is_one_line_with_the_line(tmp_path, parser, text, expected):
    assert refusal(tmp_path, text).startswith(expected)


def test_nul_in_a_double_quoted_string_reaches_the_value(tmp_path, parser):
    path = tmp_path / "doc.yml"
    path.write_text('a: "b\\0c"\n')
    assert load_yaml(path).data == {"a": "b\x00c"}  # the spec's rules refuse it, naming the key


def test_merge_keys_still_work(tmp_path, parser):
    path = tmp_path / "doc.yml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")
    assert load_yaml(path).data["other"] == {"x": 3, "y": 2}


@pytest.mark.parametrize(
    "data, ok",
    [
        (b"\xff\xfe" + "a: café\n".encode("utf-16-le"), True),
        (b"\xfe\xff" + "a: café\n".encode("utf-16-be"), True),
        ("a: café\n".encode("utf-32"), True),
        (b"\xef\xbb\xbfa: caf\xc3\xa9\n", True),
        ("a: café\n".encode("latin-1"), False),
        (b"\xff\xfe" + "a: café\n".encode("utf-16-le") + b"\x00", False),
    ],
)
def test_encodings(tmp_path, parser, data, ok):
    path = tmp_path / "doc.yml"
    path.write_bytes(data)
    if ok:
        assert load_yaml(path).data == {"a": "café"}
    else:
        assert "save it as UTF-8" in refusal(tmp_path, data)


def test_latin_1_names_the_line_and_byte(tmp_path, parser):
    assert refusal(tmp_path, b"a: 1\nb: caf\xe9\n") == ":2: package spec is not valid UTF-8 (byte 0xe9): save it as UTF-8"


def test_size_limit(tmp_path):
    assert refusal(tmp_path, b"a: 1\n" + b"#" * 2000 + b"\n", max_bytes=1000) == ": package spec is larger than 0 KiB"
    assert refusal(tmp_path, b"a: 1\n#" + b"x" * (1 << 20) + b"\n", max_bytes=1 << 20) == ": package spec is larger than 1024 KiB"


def test_special_files_are_refused_without_reading_them(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.yml")  # opening it for reading would wait for a writer
    for path, why in ((tmp_path / "fifo.yml", "is not a regular file"), (Path("/dev/zero"), "is not a regular file"),
                      (tmp_path, "is a folder, not a file"), (tmp_path / "missing.yml", "not found")):  # fmt: skip
        with pytest.raises(SpecError) as err:
            load_yaml(path, "package spec")
        assert err.value.lines() == [f"{path}: package spec {why}"]


def _measure(spec: Path) -> tuple[int, int, str, float]:
    """Run ``pkgc build SPEC --emit spec``; return (exit code, peak RSS in MB, stderr, CPU seconds: the
    work it cost, whatever else the machine runs)."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "compiler.cli", "build", str(spec), "--emit", "spec"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    cpu, rss = proc.stdout.strip().splitlines()[-2:]
    return proc.returncode, int(rss), proc.stderr, float(cpu)


def _spec_folder(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init(): pass\n")
    return tmp_path


def test_the_alias_bomb_is_fixed(tmp_path):
    """Issue 8: nine levels of nine aliases (under 1 KB) grew past 3 GB and never finished."""
    spec = _spec_folder(tmp_path) / "package.yml"
    spec.write_bytes(BOMB.replace("a:", "x-a:", 1).encode() + dump(BASE))
    assert len(spec.read_bytes()) < 1024 + len(dump(BASE))
    code, rss_mb, stderr, seconds = _measure(spec)
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert f"{spec}:5: e[5]: the document holds more than {MAX_VALUES} values" in stderr
    assert rss_mb < RSS_LIMIT_MB and seconds < 5.0, (rss_mb, seconds)


@pytest.mark.parametrize("label", ["one 1 MB string", "a 1 MB flow list", "20 000 environment variables"])
def test_a_spec_under_1_mb_stays_under_200_mb(tmp_path, label):
    spec = _spec_folder(tmp_path) / "package.yml"
    data = {
        "one 1 MB string": dump(with_value(("tags", "team"), "x" * 1_000_000)),
        "a 1 MB flow list": b"x-list: [" + b"0," * 500_000 + b"0]\n" + dump(BASE),
        "20 000 environment variables": dump(with_value(("environment_variables",), {f"V{i:06d}": "x" * 30 for i in range(20_000)})),
    }[label]
    assert len(data) < 1_048_576
    spec.write_bytes(data)
    code, rss_mb, stderr, seconds = _measure(spec)
    assert code in (0, 2) and "internal error" not in stderr, stderr
    assert rss_mb < RSS_LIMIT_MB, f"{label}: {rss_mb} MB"
