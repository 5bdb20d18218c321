"""Can a set of version constraints hold at once? An interval check over PEP 440 specifiers.

Exact pins, ranges, ``~=`` and ``==X.*`` prefixes are understood; ``!=`` only excludes single points.
It answers "certainly not" or "maybe": the resolver at lock time has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version


@dataclass(frozen=True)
class _Bound:
    version: Version
    inclusive: bool


def _next_prefix(release: tuple[int, ...]) -> Version:
    bumped = list(release[:-1]) + [release[-1] + 1]
    return Version(".".join(str(p) for p in bumped) + ".dev0")


def _bounds(spec: Specifier) -> tuple[_Bound | None, _Bound | None, Version | None]:
    """(lower, upper, exact pin) implied by one specifier."""
    op, text = spec.operator, spec.version
    if op in ("==", "===") and text.endswith(".*"):
        release = Version(text[:-2]).release
        return _Bound(Version(text[:-2]), True), _Bound(_next_prefix(release), False), None
    if op == "!=":
        return None, None, None
    version = Version(text)
    if op in ("==", "==="):
        return None, None, version
    if op == ">=":
        return _Bound(version, True), None, None
    if op == ">":
        return _Bound(version, False), None, None
    if op == "<=":
        return None, _Bound(version, True), None
    if op == "<":
        return None, _Bound(version, False), None
    if op == "~=":
        release = version.release
        return _Bound(version, True), _Bound(_next_prefix(release[:-1]), False), None
    return None, None, None


def _tighter_lower(a: _Bound | None, b: _Bound | None) -> _Bound | None:
    if a is None or b is None:
        return a or b
    if a.version != b.version:
        return a if a.version > b.version else b
    return _Bound(a.version, a.inclusive and b.inclusive)


def _tighter_upper(a: _Bound | None, b: _Bound | None) -> _Bound | None:
    if a is None or b is None:
        return a or b
    if a.version != b.version:
        return a if a.version < b.version else b
    return _Bound(a.version, a.inclusive and b.inclusive)


def satisfiable(specifier: str) -> bool:
    """False only when no version can satisfy every constraint in ``specifier``."""
    try:
        specs = SpecifierSet(specifier)
    except InvalidSpecifier:
        return False
    lower = upper = None
    pins: set[Version] = set()
    try:
        for spec in specs:
            low, high, pin = _bounds(spec)
            lower, upper = _tighter_lower(lower, low), _tighter_upper(upper, high)
            if pin is not None:
                pins.add(pin)
    except InvalidVersion:
        return True  # a legacy version string: leave it to the resolver
    if len(pins) > 1:
        return False
    if pins:
        return specs.contains(next(iter(pins)), prereleases=True)
    if lower and upper:
        if lower.version > upper.version:
            return False
        if lower.version == upper.version:
            return lower.inclusive and upper.inclusive and specs.contains(lower.version, prereleases=True)
    return True
