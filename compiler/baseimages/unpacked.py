"""Configure a rootfs of another architecture on the host, as apko does: mmdebstrap only unpacked
its ``.deb`` files (``--variant=extract``: nothing of the target runs, no emulation, no binfmt), so
what the maintainer scripts would have made is made here, by reading the packages' own data:

- the dpkg database (``debs.write_dpkg_database``);
- users and groups: base-passwd's ``passwd.master``/``group.master`` with shadow passwords (passwd's
  ``shadowconfig on``), ``subuid``/``subgid`` (login);
- the files postinsts copy from ``/usr/share`` (base-files, libc-bin, debianutils, readline-common,
  libpam-modules, tzdata, python3) and the folders base-files makes;
- ``update-alternatives --install`` links (awk, which, pager...), highest priority first;
- Python's byte-code (py_compile, as python3.X's postinst), when the host's Python is the target's.

Left out, as a container needs none of it: PAM's ``common-*`` (pam-auth-update), init scripts and
systemd units, and ``/etc/ld.so.cache`` (Debian's loader searches the multiarch folders without it).
Runs as mmdebstrap's ``--extract-hook`` (``python -m compiler.baseimages.unpacked ROOT ...``)."""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import py_compile
import shutil
import sys
from pathlib import Path

from compiler.baseimages.debs import Deb, exists_in_root, read_deb, write_dpkg_database
from compiler.errors import PkgcError

# (source in the rootfs, target, mode): what postinsts copy when the target is absent
DEFAULT_FILES = (
    ("usr/share/base-files/dot.profile", "root/.profile", 0o644),
    ("usr/share/base-files/dot.bashrc", "root/.bashrc", 0o644),
    ("usr/share/base-files/profile", "etc/profile", 0o644),
    ("usr/share/base-files/motd", "etc/motd", 0o644),
    ("usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf", 0o644),
    ("usr/share/debianutils/shells", "etc/shells", 0o644),
    ("usr/share/readline/inputrc", "etc/inputrc", 0o644),
)
# (path, mode, group) of the folders base-files' postinst makes
FOLDERS = (("mnt", 0o755, "root"), ("srv", 0o755, "root"), ("opt", 0o755, "root"), ("etc/opt", 0o755, "root"),
           ("var/opt", 0o755, "root"), ("media", 0o755, "root"), ("var/mail", 0o2775, "mail"), ("run/lock", 0o1777, "root"),
           ("usr/local/share/man", 0o755, "root"), ("usr/local/games", 0o755, "root"), ("usr/local/src", 0o755, "root"),
           ("usr/local/etc", 0o755, "root"))  # fmt: skip
# (path, mode, group): empty files postinsts create
EMPTY_FILES = (("etc/environment", 0o644, "root"), ("etc/security/opasswd", 0o600, "root"), ("etc/subuid", 0o644, "root"),
               ("etc/subgid", 0o644, "root"), ("var/log/faillog", 0o644, "root"), ("var/log/wtmp", 0o664, "utmp"),
               ("var/log/btmp", 0o660, "utmp"), ("var/log/lastlog", 0o664, "utmp"))  # fmt: skip
LINKS = (("etc/dpkg/origins/default", "debian"), ("var/spool/mail", "../mail"), ("usr/local/man", "share/man"),
         ("var/run", "/run"), ("var/lock", "/run/lock"))  # fmt: skip


def configure(root: Path, debs: list[Deb], python: str, epoch: int, log=print) -> None:
    """Make the unpacked ``root`` what installing ``debs`` with dpkg would have made it."""
    write_dpkg_database(root, debs)
    groups = write_users(root, epoch)
    for source, target, mode in DEFAULT_FILES:
        if (root / source).is_file() and not (root / target).exists():
            shutil.copyfile(root / source, root / target)
            os.chmod(root / target, mode)
    for path, mode, group in FOLDERS:
        (root / path).mkdir(parents=True, exist_ok=True)
        _own(root / path, mode, groups.get(group, 0))
    for path, mode, group in EMPTY_FILES:
        if (root / path).parent.is_dir() and not (root / path).exists():
            (root / path).touch()
            _own(root / path, mode, groups.get(group, 0))
    for path, target in LINKS:
        _link(root / path, target)
    if (root / "usr/share/zoneinfo/Etc/UTC").is_file():  # tzdata, non-interactive: UTC
        _link(root / "etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
        (root / "etc/timezone").write_text("Etc/UTC\n")
    if python and (root / "usr/bin" / f"python{python}").exists():
        (root / "etc/python3").mkdir(exist_ok=True)
        (root / "etc/python3/debian_config").write_text("[DEFAULT]\nbyte-compile = standard\n")
        (root / f"usr/local/lib/python{python}/dist-packages").mkdir(parents=True, exist_ok=True)
    for name in install_alternatives(root, debs):
        log(f"alternative {name}")
    compiled = compile_python(root, python, epoch)
    log(f"byte-compiled {compiled} Python modules" if compiled >= 0 else
        f"no byte-code: the host's Python is {sys.version_info[0]}.{sys.version_info[1]}, the image's {python}")  # fmt: skip


def write_users(root: Path, epoch: int) -> dict[str, int]:
    """/etc/passwd, group, shadow, gshadow from base-passwd's masters; the groups' ids by name."""
    share = root / "usr/share/base-passwd"
    if not (share / "passwd.master").is_file():
        return {}
    days = epoch // 86400
    users = [line.split(":") for line in (share / "passwd.master").read_text().splitlines() if line.count(":") == 6]
    groups = [line.split(":") for line in (share / "group.master").read_text().splitlines() if line.count(":") == 3]
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("".join(":".join([u[0], "x", *u[2:]]) + "\n" for u in users))
    (etc / "group").write_text("".join(":".join([g[0], "x", *g[2:]]) + "\n" for g in groups))
    ids = {g[0]: int(g[2]) for g in groups}
    (etc / "shadow").write_text("".join(f"{u[0]}:{u[1]}:{days}:0:99999:7:::\n" for u in users))
    (etc / "gshadow").write_text("".join(f"{g[0]}:{g[1]}::{g[3]}\n" for g in groups))
    for name in ("passwd", "group"):
        _own(etc / name, 0o644, 0)
    for name in ("shadow", "gshadow"):
        _own(etc / name, 0o640, ids.get("shadow", 0))
    return ids


def install_alternatives(root: Path, debs: list[Deb]) -> list[str]:
    """The links of every alternative whose chosen path exists (highest priority, then the first
    package), with update-alternatives' admin files; slaves whose path is absent (a man page dpkg's
    path-exclude left out) are recorded but not linked, as update-alternatives does."""
    chosen: dict[str, list] = {}
    for deb in debs:
        for alt in deb.alternatives:
            if exists_in_root(root, alt.path):
                chosen.setdefault(alt.name, []).append(alt)
    admin = root / "var/lib/dpkg/alternatives"
    admin.mkdir(parents=True, exist_ok=True)
    for name, candidates in sorted(chosen.items()):
        best = max(candidates, key=lambda a: a.priority)
        _link(root / "etc/alternatives" / name, best.path)
        _link(root / best.link.lstrip("/"), f"/etc/alternatives/{name}")
        for link, slave, path in best.slaves:
            if exists_in_root(root, path):
                _link(root / "etc/alternatives" / slave, path)
                _link(root / link.lstrip("/"), f"/etc/alternatives/{slave}")
        lines = ["auto", best.link] + [x for link, slave, _ in best.slaves for x in (slave, link)] + [""]
        for alt in candidates:
            paths = dict((slave, path) for _, slave, path in alt.slaves)
            lines += [alt.path, str(alt.priority)] + [paths.get(slave, "") for _, slave, _ in best.slaves]
        (admin / name).write_text("\n".join(lines) + "\n\n")
    return sorted(chosen)


def compile_python(root: Path, python: str, epoch: int) -> int:
    """Byte-compile the image's Python modules (stdlib, dist-packages, /usr/share/python3) with the
    host's interpreter when it is the image's major.minor (the byte-code format is the minor's);
    each source's time is first clamped to ``epoch``, as the rootfs tar will be, so the timestamp
    byte-code stays valid. -1 when the host's Python is another minor."""
    if not python or f"{sys.version_info[0]}.{sys.version_info[1]}" != python:
        return -1
    count = 0
    folders = (f"usr/lib/python{python}", "usr/lib/python3/dist-packages", "usr/share/python3")
    found = (p for folder in folders if (root / folder).is_dir() for p in (root / folder).rglob("*.py"))
    sources = sorted(p for p in found if p.is_file() and not p.is_symlink())
    for source in sources:
        if source.stat().st_mtime > epoch:
            os.utime(source, (epoch, epoch), follow_symlinks=False)
        inside = "/" + source.relative_to(root).as_posix()
        try:
            py_compile.compile(str(source), cfile=importlib.util.cache_from_source(str(source), optimization=""), dfile=inside,
                               doraise=True, optimize=0, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)  # fmt: skip
            count += 1
        except (py_compile.PyCompileError, SyntaxError, ValueError):
            continue  # as Debian's: a test file in another syntax stays source only
    return count


def remove_paths(root: Path, patterns: list[str]) -> None:
    """The recipe's ``remove`` globs, inside ``root`` (never following a link out of it)."""
    for pattern in patterns:
        for found in sorted(glob.glob(str(root) + "/" + pattern.lstrip("/"))):
            path = Path(found)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _link(path: Path, target: str) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        if any(path.iterdir()):
            return  # a folder with content stays (as base-files' migrate_directory would fail)
        path.rmdir()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _own(path: Path, mode: int, gid: int) -> None:
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, 0, gid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compiler.baseimages.unpacked", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--python", default="")
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--deb", action="append", default=[], help="a package unpacked but not in var/cache/apt/archives (inside ROOT)")
    parser.add_argument("--remove", action="append", default=[], help="a glob to remove from ROOT at the end")
    args = parser.parse_args(argv)
    root: Path = args.root
    files = sorted((root / "var/cache/apt/archives").glob("*.deb")) + [root / d.lstrip("/") for d in args.deb]
    try:
        debs = [read_deb(path) for path in files]
        print(f"configuring {len(debs)} unpacked packages on the host (no program of the image runs)", flush=True)
        configure(root, debs, args.python, args.epoch, lambda line: print(line, flush=True))
    except (PkgcError, OSError) as exc:
        print(f"pkgc: cannot configure the unpacked rootfs: {exc}", file=sys.stderr, flush=True)
        return 1
    for extra in args.deb:  # the copy apt read, and the folders holding it (under /tmp)
        path = root / extra.lstrip("/")
        path.unlink(missing_ok=True)
        while path.parent != root / "tmp" and path.parent != root and not any(path.parent.iterdir()):
            path = path.parent
            path.rmdir()
    remove_paths(root, args.remove)
    return 0


if __name__ == "__main__":
    sys.exit(main())
