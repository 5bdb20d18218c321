"""What an unpacked rootfs needs from its ``.deb`` files when dpkg never ran in it: each package's
control stanza, md5sums, conffiles, file list and ``update-alternatives --install`` calls, read on
the host with ``dpkg-deb`` (an architecture-independent reader: no program of the package runs), and
the dpkg database written from them, as ``dpkg --unpack`` + ``--configure`` would have left it."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import BuildError

CONTROL_LIMIT = 8 << 20  # bytes of one control member (a postinst, md5sums of a large package)
# the order dpkg writes a status stanza's fields in (lib/dpkg/parse.c); others follow in control order
FIELD_ORDER = (
    "Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size", "Origin", "Maintainer",
    "Bugs", "Architecture", "Multi-Arch", "Source", "Version", "Config-Version", "Replaces", "Provides", "Depends",
    "Pre-Depends", "Recommends", "Suggests", "Breaks", "Conflicts", "Enhances", "Conffiles", "Description",
)  # fmt: skip


@dataclass(frozen=True)
class Alternative:
    """One ``update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]...``."""

    link: str
    name: str
    path: str
    priority: int
    slaves: tuple[tuple[str, str, str], ...]  # (link, name, path)


@dataclass(frozen=True)
class Deb:
    """One package file's metadata (its control stanza as ordered fields)."""

    fields: tuple[tuple[str, str], ...]
    md5sums: str
    conffiles: tuple[str, ...]
    paths: tuple[str, ...]  # what the data archive holds, as dpkg lists them: "/.", "/usr", "/usr/bin/mawk"
    alternatives: tuple[Alternative, ...]

    def field(self, name: str) -> str:
        return next((v for k, v in self.fields if k.lower() == name.lower()), "")

    @property
    def name(self) -> str:
        return self.field("Package")

    @property
    def info_name(self) -> str:
        """The stem of its files under /var/lib/dpkg/info (``libc6:arm64`` for a Multi-Arch: same one)."""
        same = self.field("Multi-Arch") == "same"
        return f"{self.name}:{self.field('Architecture')}" if same else self.name


def read_deb(path: Path) -> Deb:
    """Read ``path``'s control archive and file list with the host's dpkg-deb."""
    members = _control_members(path)
    control = members.get("control", b"").decode("utf-8", "replace")
    fields = _parse_stanza(control)
    if not any(k == "Package" for k, _ in fields):
        raise BuildError(f"{path.name}: its control file names no Package")
    return Deb(
        fields=tuple(fields),
        md5sums=members.get("md5sums", b"").decode("utf-8", "replace"),
        conffiles=tuple(line.strip() for line in members.get("conffiles", b"").decode().splitlines() if line.startswith("/")),
        paths=_data_paths(path),
        alternatives=alternatives_installed(members.get("postinst", b"").decode("utf-8", "replace")),
    )


def _members(path: Path, option: str):
    """Stream the tar ``dpkg-deb OPTION path`` writes (never held whole: a CUDA library's is large)."""
    proc = subprocess.Popen(["dpkg-deb", option, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                yield member, tar
    except tarfile.TarError:
        pass  # dpkg-deb's own message says why
    finally:
        proc.stdout.close()
        error = proc.stderr.read(2000).decode(errors="replace").strip()
        if proc.wait() != 0:
            raise BuildError(f"dpkg-deb {option} {path.name} failed: {error or f'exit {proc.returncode}'}")


def _control_members(path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for member, tar in _members(path, "--ctrl-tarfile"):
        name = member.name.removeprefix("./")
        if member.isfile() and "/" not in name and member.size <= CONTROL_LIMIT:
            found[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return found


def _data_paths(path: Path) -> tuple[str, ...]:
    names = ["/" + member.name.removeprefix("./").rstrip("/") for member, _tar in _members(path, "--fsys-tarfile")]
    return tuple("/." if name == "/" else name for name in names)


def _parse_stanza(text: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and fields:
            key, value = fields[-1]
            fields[-1] = (key, f"{value}\n{line}")
        elif ":" in line:
            key, _, value = line.partition(":")
            fields.append((key.strip(), value.strip()))
    return fields


def alternatives_installed(script: str) -> tuple[Alternative, ...]:
    """The ``update-alternatives --install`` calls of a maintainer script whose words are all literal
    (a call built from shell variables is left out: nothing here runs the script)."""
    joined = script.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0]
        if "update-alternatives" not in line or "--install" not in line or "$" in line:
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        words = words[words.index("--install") + 1:]
        if len(words) < 4 or not words[3].lstrip("-").isdigit():
            continue
        link, name, target, priority, rest = words[0], words[1], words[2], int(words[3]), words[4:]
        slaves = []
        while len(rest) >= 4 and rest[0] == "--slave":
            slaves.append((rest[1], rest[2], rest[3]))
            rest = rest[4:]
        found.append(Alternative(link, name, target, priority, tuple(slaves)))
    return tuple(found)


def write_dpkg_database(root: Path, debs: list[Deb]) -> None:
    """/var/lib/dpkg/status and info/*.list, *.md5sums, *.conffiles for ``debs``, all installed;
    a path dpkg's path-exclude options kept out of the rootfs is not listed."""
    admin = root / "var/lib/dpkg"
    info = admin / "info"
    info.mkdir(parents=True, exist_ok=True)
    for stale in info.iterdir():  # the merged-usr hook's stand-in package, installed with dpkg --root
        stale.unlink()
    (info / "format").write_text("1\n")  # the multiarch layout: libc6:arm64.list
    stanzas = []
    for deb in sorted(debs, key=lambda d: (d.name, d.field("Architecture"))):
        present = [p for p in deb.paths if p == "/." or exists_in_root(root, p)]
        (info / f"{deb.info_name}.list").write_text("".join(p + "\n" for p in present))
        kept = [line for line in deb.md5sums.splitlines() if line[34:] and exists_in_root(root, "/" + line[34:])]
        (info / f"{deb.info_name}.md5sums").write_text("".join(line + "\n" for line in kept))  # dpkg writes one, empty or not
        if deb.conffiles:
            (info / f"{deb.info_name}.conffiles").write_text("".join(c + "\n" for c in deb.conffiles))
        stanzas.append(_status_stanza(root, deb))
    (admin / "status").write_text("\n".join(stanzas))
    (admin / "status-old").unlink(missing_ok=True)


def _status_stanza(root: Path, deb: Deb) -> str:
    fields = dict(deb.fields)
    fields["Status"] = "install ok installed"
    conffiles = [c for c in deb.conffiles if (root / c.lstrip("/")).is_file()]
    if conffiles:
        fields["Conffiles"] = "".join(f"\n {c} {hashlib.md5((root / c.lstrip('/')).read_bytes()).hexdigest()}" for c in conffiles)
    ordered = [k for k in FIELD_ORDER if k in fields] + [k for k in fields if k not in FIELD_ORDER]
    return "".join(f"{k}:{'' if fields[k].startswith(chr(10)) else ' '}{fields[k]}\n" for k in ordered)


def exists_in_root(root: Path, path: str) -> bool:
    """Whether ``path`` exists in the rootfs, following its directory links inside it (merged /usr)."""
    current = root
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        current = current / part
        if index < len(parts) - 1 and current.is_symlink():
            target = current.readlink()
            current = (root / str(target).lstrip("/")) if target.is_absolute() else current.parent / target
    return current.is_symlink() or current.exists()
