"""Slim an installed environment: leave out what a model server never needs (``--slim``).

One set of rules for both back ends: the OCI back end calls :func:`slim_environment` on the venv it
assembled on the host; the docker back end runs this file as a script in its builder stage (with
the venv's own Python, before its pip goes). Standard library plus ``packaging`` only, for that.

What goes:
  - the installers ``pip``, ``setuptools``, ``wheel`` (their files per RECORD: modules, console
    scripts, ``distutils-precedence.pth``, dist-info), unless an installed distribution requires one
    at run time. That is read from the installed set's METADATA ``Requires-Dist`` (markers evaluated
    for the image's Python); a requirement behind an extra counts when that extra looks installed
    (all its other requirements are), so ``psutil[dev]``'s setuptools does not, ``foo[pkg]``'s does.
    Names in ``keep`` (what the user's environment asks for by name) always stay;
  - packages' test suites: folders named ``tests``/``test`` below a package (never a top-level
    package named so, never ``testing``), unless a module outside them imports them;
  - ``docs``/``doc``/``examples`` folders below a package that nothing imports and no module of
    their parent package names (so a file read by path stays);
  - byte-code caches of what went, and tool caches (``.pytest_cache``, ...).
RECORD files are rewritten without the lines of removed files, so ``importlib.metadata`` stays true.
Every path comes from the environment's own files (untrusted): nothing outside ``root`` is touched.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    from packaging.markers import InvalidMarker, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # in the docker builder stage, before it goes: pip's own copy
    from pip._vendor.packaging.markers import InvalidMarker, UndefinedEnvironmentName  # type: ignore
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement  # type: ignore
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore

INSTALLERS = ("pip", "setuptools", "wheel")
TEST_FOLDERS = ("tests", "test")
DOC_FOLDERS = ("docs", "doc", "examples")
TOOL_CACHES = (".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis")
REPORT_NAME = "pkgc-slim.json"
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[\w ,\t*]*)|import[ \t]+([\w., \t]+))", re.M)
_DOTTED_STRING = re.compile(r"[\"']([A-Za-z_]\w*(?:\.\w+)+)[\"']")


@dataclass
class Distribution:
    """One installed distribution: its name, metadata and the files its RECORD lists (relative to site-packages)."""

    name: str
    dist_info: Path
    requires: list[str]
    extras: list[str]
    files: list[str]


@dataclass
class SlimReport:
    removed_distributions: list[str] = field(default_factory=list)
    kept_installers: dict[str, str] = field(default_factory=dict)  # name -> why
    removed_folders: list[str] = field(default_factory=list)  # relative to site-packages
    kept_folders: dict[str, str] = field(default_factory=dict)  # folder -> the module that needs it
    removed_bytes: int = 0

    def as_dict(self) -> dict:
        return {
            "removed_distributions": sorted(self.removed_distributions),
            "kept_installers": dict(sorted(self.kept_installers.items())),
            "removed_folders": sorted(self.removed_folders),
            "kept_folders": dict(sorted(self.kept_folders.items())),
            "removed_bytes": self.removed_bytes,
        }

    @property
    def summary(self) -> str:
        dists = ", ".join(sorted(self.removed_distributions)) or "no installer"
        kept = "; kept " + ", ".join(f"{n} ({why})" for n, why in sorted(self.kept_installers.items())) if self.kept_installers else ""
        return f"slim: removed {dists}, {len(self.removed_folders)} test/doc folders ({self.removed_bytes / 1e6:.0f} MB){kept}"


def site_packages_of(root: Path) -> Path:
    """The one ``lib/python*/site-packages`` of the environment at ``root``."""
    found = sorted(p for p in root.glob("lib/python*/site-packages") if p.is_dir() and not p.is_symlink())
    if len(found) != 1:
        raise ValueError(f"{root}: expected one lib/python*/site-packages, found {len(found)}")
    return found[0]


def read_distributions(site: Path) -> list[Distribution]:
    """Every ``*.dist-info`` in ``site`` with its Requires-Dist, Provides-Extra and RECORD paths."""
    from email.parser import HeaderParser

    dists = []
    for info in sorted(site.glob("*.dist-info")):
        metadata = info / "METADATA"
        if not metadata.is_file() or metadata.is_symlink():
            continue
        message = HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        name = message.get("Name") or info.name.split("-", 1)[0]
        record = info / "RECORD"
        files = []
        if record.is_file() and not record.is_symlink():
            files = [row[0] for row in csv.reader(io.StringIO(record.read_text(encoding="utf-8", errors="replace"))) if row]
        dists.append(Distribution(canonicalize_name(name), info, message.get_all("Requires-Dist") or [],
                                  [canonicalize_name(e) for e in message.get_all("Provides-Extra") or []], files))  # fmt: skip
    return dists


def _marker_env(python: str | None, extra: str) -> dict[str, str]:
    env = {"extra": extra}
    if python:  # the image's Python when this runs on the host
        env.update(python_version=python, python_full_version=f"{python}.0")
    return env


def _applies(requirement: Requirement, python: str | None, extra: str) -> bool:
    if requirement.marker is None:
        return True
    try:
        return bool(requirement.marker.evaluate(_marker_env(python, extra)))
    except (InvalidMarker, UndefinedEnvironmentName, ValueError, TypeError):
        return True  # cannot tell: count it (keeping is the safe side)


def runtime_requirers(dists: list[Distribution], candidates: set[str], installed: set[str], python: str | None) -> dict[str, str]:
    """candidate name -> the distribution of ``dists`` (and extra) that requires it at run time, for each required candidate."""
    needed: dict[str, str] = {}
    for dist in dists:
        by_extra: dict[str, list[Requirement]] = {"": []}
        for text in dist.requires:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue  # a requirement we cannot read names nothing we could check
            if _applies(requirement, python, ""):
                by_extra[""].append(requirement)
                continue
            for extra in dist.extras:
                if _applies(requirement, python, extra):
                    by_extra.setdefault(extra, []).append(requirement)
        for extra, requirements in by_extra.items():
            names = {canonicalize_name(r.name) for r in requirements}
            others = names - candidates
            if extra and not others <= installed:
                continue  # the extra is not installed (some of its requirements are missing)
            for name in sorted(names & candidates & installed):
                if name != dist.name:
                    needed.setdefault(name, f"required by {dist.name}" + (f"[{extra}]" if extra else ""))
    return needed


def installers_to_remove(dists: list[Distribution], python: str | None, keep: set[str]) -> tuple[list[Distribution], dict[str, str]]:
    """The installer distributions to remove, and those kept with the reason. Fixpoint: what a kept
    installer requires is kept too."""
    candidates = {canonicalize_name(n) for n in INSTALLERS}
    installed = {d.name for d in dists}
    kept = {canonicalize_name(n): "asked for by the environment" for n in keep if canonicalize_name(n) in candidates}
    while True:
        removable = candidates - set(kept)
        pool = [d for d in dists if d.name not in removable]
        needed = runtime_requirers(pool, removable, installed, python)
        if not needed:
            break
        kept.update(needed)
    return [d for d in dists if d.name in candidates - set(kept)], {n: why for n, why in kept.items() if n in installed}


def _inside(root: Path, path: Path) -> bool:
    try:
        resolved = path.parent.resolve() / path.name
    except (OSError, RuntimeError):
        return False
    return resolved == root or root in resolved.parents


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove(root: Path, path: Path, report: SlimReport) -> bool:
    if not _inside(root, path) or not (path.exists() or path.is_symlink()):
        return False
    report.removed_bytes += _size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return True


def remove_distribution(root: Path, site: Path, dist: Distribution, report: SlimReport) -> None:
    """Every file RECORD lists (and its byte-code), the dist-info, then folders left empty."""
    folders = set()
    for rel in dist.files:
        path = Path(os.path.normpath(site / rel))
        if _remove(root, path, report) and path.suffix == ".py":
            for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
                _remove(root, pyc, report)
        folders.add(path.parent)
    _remove(root, dist.dist_info, report)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):  # inside site-packages only (bin stays)
        for candidate in (folder / "__pycache__", folder):
            if site not in candidate.parents or not _inside(root, candidate) or candidate.is_symlink():
                continue
            if candidate.is_dir() and not any(candidate.iterdir()):
                candidate.rmdir()
    report.removed_distributions.append(dist.name)


def _module_name(site: Path, path: Path) -> str:
    """The dotted name of a source file (``a/b/__init__.py`` -> ``a.b.__init__``, so relative imports resolve)."""
    return ".".join(path.relative_to(site).with_suffix("").parts)


def _imports(text: str, module: str) -> set[str]:
    """The absolute module names a file (module ``module``) imports, plus dotted names it writes as strings
    (``importlib.import_module("a.tests")``)."""
    names = set(_DOTTED_STRING.findall(text))
    package = module.rsplit(".", 1)[0] if "." in module else ""
    for dots, base, what, plain in _IMPORT.findall(text):
        if plain:
            names.update(part.split()[0] for part in plain.split(",") if part.split())
            continue
        if dots:
            parts = package.split(".") if package else []
            parts = parts[: len(parts) - (len(dots) - 1)] if len(dots) > 1 else parts
            base = ".".join(p for p in parts + base.split(".") if p)
        names.add(base)
        words = [w.split("#")[0].split() for w in what.strip("()").split(",")]
        names.update(f"{base}.{w[0]}" for w in words if w and w[0] != "*")
    return names


def _candidate_folders(site: Path) -> list[Path]:
    """Test, doc and cache folders below a top-level package (never the package itself), outermost only."""
    found = []
    for top in sorted(p for p in site.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.endswith((".dist-info", ".data"))):
        for folder, subdirs, _files in os.walk(top):
            here = Path(folder)
            for name in sorted(subdirs):
                if name in TEST_FOLDERS + DOC_FOLDERS + TOOL_CACHES and not (here / name).is_symlink():
                    found.append(here / name)
                    subdirs.remove(name)
    return found


def _needed_by(site: Path, folder: Path, imported: dict[str, str], sources: dict[Path, str]) -> str | None:
    """A module outside the candidate folders that imports ``folder`` (or, for doc folders, names it
    in its parent package, as a file read by path would): that module, else None."""
    if folder.name in TOOL_CACHES:
        return None
    dotted = ".".join(folder.relative_to(site).parts)
    for name, user in imported.items():
        if name == dotted or name.startswith(dotted + "."):
            return user
    if folder.name in DOC_FOLDERS:
        quoted = re.compile(rf"[\"']{re.escape(folder.name)}[/\"']")
        for path, text in sources.items():
            if path.parent == folder.parent and quoted.search(text):
                return str(path.relative_to(site))
    return None


def remove_test_and_doc_folders(root: Path, site: Path, report: SlimReport) -> set[Path]:
    """Remove unneeded test/doc/cache folders; returns the removed folders."""
    candidates = _candidate_folders(site)
    inside = tuple(str(c) + os.sep for c in candidates)
    sources: dict[Path, str] = {}
    imported: dict[str, str] = {}
    for path in sorted(site.rglob("*.py")):
        if str(path).startswith(inside) or path.is_symlink() or not path.is_file() or path.name == "conftest.py":
            continue
        sources[path] = text = path.read_text(encoding="utf-8", errors="replace")
        for name in _imports(text, _module_name(site, path)):
            imported.setdefault(name, str(path.relative_to(site)))
    removed = set()
    for folder in candidates:
        user = _needed_by(site, folder, imported, sources)
        rel = str(folder.relative_to(site))
        if user is not None:
            report.kept_folders[rel] = user
        elif _remove(root, folder, report):
            report.removed_folders.append(rel)
            removed.add(folder)
    return removed


def _rewrite_records(site: Path, dists: list[Distribution], removed: set[Path]) -> None:
    """Drop the RECORD lines of files inside removed folders (RECORD's own hash-less line stays)."""
    inside = tuple(str(folder) + os.sep for folder in removed)
    for dist in dists:
        record = dist.dist_info / "RECORD"
        if not record.is_file() or record.is_symlink():
            continue
        rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8", errors="replace"))))
        kept = [row for row in rows if not row or not os.path.normpath(site / row[0]).startswith(inside)]
        if len(kept) != len(rows):
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(kept)
            record.write_text(out.getvalue(), encoding="utf-8")


def slim_environment(root: Path, python: str | None = None, keep: tuple[str, ...] = ()) -> SlimReport:
    """Slim the environment at ``root`` (a venv's prefix); ``python`` is the image's major.minor when
    this does not run on it. Writes ``root/pkgc-slim.json``, the list of what went and what stayed."""
    root = root.resolve()
    site = site_packages_of(root)
    report = SlimReport()
    dists = read_distributions(site)
    remove, report.kept_installers = installers_to_remove(dists, python, set(keep))
    for dist in remove:
        remove_distribution(root, site, dist, report)
    gone = {d.name for d in remove}
    removed = remove_test_and_doc_folders(root, site, report)
    _rewrite_records(site, [d for d in dists if d.name not in gone], removed)
    (root / REPORT_NAME).write_text(json.dumps(report.as_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report


def record_hash(data: bytes) -> str:
    """RECORD's hash form (``sha256=`` urlsafe base64, no padding), for tests building fake installs."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="slim an installed environment (pkgc --slim)")
    parser.add_argument("root", help="the environment's prefix, e.g. /opt/pkgc/venv")
    parser.add_argument("--keep", default="", help="comma-separated distribution names to keep")
    args = parser.parse_args(argv)
    report = slim_environment(Path(args.root), keep=tuple(n for n in args.keep.split(",") if n))
    print(f"pkgc: {report.summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
