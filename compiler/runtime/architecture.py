"""Is every program in an image built for its platform? Every regular ELF file of the image's root
filesystem (all layers, whiteouts applied, a later layer's entry replacing an earlier one) is checked
against the ``Platform``: its class (64-bit), byte order (little-endian) and ``e_machine``.

Only each file's first 20 bytes are read (the ELF identification, ``e_type`` and ``e_machine``); the
layers are streamed once (``compiler.runtime.image_layers``: every read bounded, a tar bomb stopped),
no link is followed (only regular files are programs; a link's target is checked where it lies), and
the tree kept in memory holds only names (bounded by the member count)."""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.oci.store import OciStore
from compiler.platform import SUPPORTED, Platform
from compiler.runtime.image_layers import (LayerLimits, PlatformImage, layer_members, member_path, open_stored,
                                           whiteout_of)  # fmt: skip

ELF_MAGIC = b"\x7fELF"
HEADER = 20  # e_ident (16), e_type (2), e_machine (2)
CLASSES = {1: "32-bit", 2: "64-bit"}
ORDERS = {1: "little", 2: "big"}
# every platform pkgc builds for is 64-bit little-endian (Platform.SUPPORTED); a new one states its own here
EXPECTED_CLASS, EXPECTED_ORDER = 2, 1
MACHINE_NAMES = {3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "S/390", 40: "ARM", 62: "x86-64",
                 183: "AArch64", 243: "RISC-V", 258: "LoongArch"}  # fmt: skip
FOREIGN_SHOWN = 20  # foreign files a message names


@dataclass(frozen=True)
class ElfHeader:
    elf_class: int
    byte_order: int
    machine: int

    @classmethod
    def parse(cls, head: bytes) -> "ElfHeader | None":
        """The header of a file starting with ``head`` (its first 20 bytes); None when it is not ELF."""
        if not head.startswith(ELF_MAGIC):
            return None
        if len(head) < HEADER:
            return cls(0, 0, -1)  # ELF magic, no header: no program for any platform
        order = head[5]
        machine = int.from_bytes(head[18:20], "big" if order == 2 else "little")
        return cls(head[4], order, machine)

    def describe(self) -> str:
        """``AArch64``, ``x86-64 (32-bit)``, ``machine 4242``, ``truncated ELF header``."""
        if self.machine < 0:
            return "truncated ELF header"
        name = MACHINE_NAMES.get(self.machine, f"machine {self.machine}")
        extra = [CLASSES.get(self.elf_class, f"class {self.elf_class}")] if self.elf_class != EXPECTED_CLASS else []
        extra += [f"{ORDERS.get(self.byte_order, f'byte order {self.byte_order}')}-endian"] if self.byte_order != EXPECTED_ORDER else []
        return f"{name} ({', '.join(extra)})" if extra else name

    def runs_on(self, platform: Platform) -> bool:
        return (self.elf_class, self.byte_order, self.machine) == (EXPECTED_CLASS, EXPECTED_ORDER, platform.elf_machine)


def platform_name(machine: int) -> str:
    """The platform an ``e_machine`` belongs to, when pkgc builds for it (``linux/arm64``), else its ELF name."""
    known = next((p for p in SUPPORTED if p.elf_machine == machine), None)
    return str(known) if known else MACHINE_NAMES.get(machine, f"machine {machine}")


@dataclass(frozen=True)
class ForeignFile:
    path: str  # absolute, in the image
    machine: str  # what it is built for (``x86-64``)
    layer: int  # 1 = the bottom layer


@dataclass(frozen=True)
class ArchitectureReport:
    """What ``check_architecture`` found: every regular ELF file checked, those not for ``platform``."""

    image: str
    platform: Platform
    files: int  # regular files of the root filesystem
    elf_files: int
    foreign: tuple[ForeignFile, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.foreign

    def summary(self) -> str:
        """One line: ``all 12 ELF files are linux/arm64`` or the foreign ones named (the first 20)."""
        if self.passed:
            return f"all {self.elf_files} ELF files of {self.files} files are {self.platform}"
        shown = ", ".join(f"/{f.path} ({f.machine})" for f in self.foreign[:FOREIGN_SHOWN])
        more = f" and {len(self.foreign) - FOREIGN_SHOWN} more" if len(self.foreign) > FOREIGN_SHOWN else ""
        return f"{len(self.foreign)} of {self.elf_files} ELF files are not {self.platform}: {shown}{more}"

    def as_dict(self) -> dict:
        return {"platform": str(self.platform), "files": self.files, "elf_files": self.elf_files, "passed": self.passed,
                "foreign": [{"path": "/" + f.path, "machine": f.machine, "layer": f.layer} for f in self.foreign]}  # fmt: skip


class _Tree:
    """The root filesystem as the layers so far make it: folders are dicts, anything else a leaf
    (a foreign ELF file's ``ForeignFile``, another ELF file's ``True``, any other entry ``None``)."""

    def __init__(self) -> None:
        self.root: dict = {}

    def _parent(self, path: str, make: bool) -> tuple[dict | None, str]:
        *folders, name = path.split("/")
        node = self.root
        for folder in folders:
            child = node.get(folder)
            if not isinstance(child, dict):
                if not make:
                    return None, name
                child = node[folder] = {}  # a folder implied by a member's name replaces what was there
            node = child
        return node, name

    def put(self, path: str, value: object) -> None:
        parent, name = self._parent(path, make=True)
        if isinstance(value, dict) and isinstance(parent.get(name), dict):  # type: ignore[union-attr]
            return  # a folder over a folder: their contents merge
        parent[name] = value  # type: ignore[index]

    def get(self, path: str) -> object:
        parent, name = self._parent(path, make=False)
        return None if parent is None else parent.get(name)

    def remove(self, path: str) -> None:
        parent, name = self._parent(path, make=False)
        if parent is not None:
            parent.pop(name, None)

    def clear(self, path: str) -> None:
        """An opaque folder: what lower layers put in it is gone."""
        node = self.get(path) if path else self.root
        if isinstance(node, dict):
            node.clear()

    def leaves(self) -> tuple[int, int, list[ForeignFile]]:
        """(regular files, ELF files, the foreign ones) still in the tree."""
        files = elf = 0
        foreign: list[ForeignFile] = []
        stack = [self.root]
        while stack:
            for value in stack.pop().values():
                if isinstance(value, dict):
                    stack.append(value)
                elif value is not None:
                    files += 1
                    if value is not _PLAIN:
                        elf += 1
                        if isinstance(value, ForeignFile):
                            foreign.append(value)
        return files, elf, foreign


_PLAIN, _NATIVE = object(), True  # a regular file that is not ELF; an ELF file for the platform


def scan_image(image: PlatformImage, limits: LayerLimits = LayerLimits()) -> ArchitectureReport:
    """Check ``image`` (already resolved to its platform) layer by layer."""
    platform, tree = image.platform, _Tree()
    layer, hidden, opaque = -1, [], []  # this layer's whiteouts, applied to the lower layers before its entries
    entries: dict[str, object] = {}

    def settle() -> None:
        for path in opaque:
            tree.clear(path)
        for path in hidden:
            tree.remove(path)
        for path, value in entries.items():
            tree.put(path, value)
        hidden.clear(), opaque.clear(), entries.clear()

    for member in layer_members(image, limits):
        if member.layer != layer:
            settle()
            layer = member.layer
        info = member.info
        path = member_path(info.name)
        if path is None:
            continue
        whiteout = whiteout_of(path)
        if whiteout is not None:
            (opaque if whiteout[1] else hidden).append(whiteout[0])
            continue
        if info.isdir():
            value: object = {}
        elif info.isfile() and not info.issparse():
            header = ElfHeader.parse(member.read(HEADER))
            value = _PLAIN if header is None else _NATIVE if header.runs_on(platform) else \
                ForeignFile(path, header.describe(), member.layer + 1)  # fmt: skip
        elif info.islnk():  # a hard link is the file it names (earlier in this layer, or below)
            source = member_path(info.linkname)
            linked = (entries[source] if source in entries else tree.get(source)) if source else None
            value = linked if not isinstance(linked, (dict, ForeignFile)) else \
                ForeignFile(path, linked.machine, member.layer + 1) if isinstance(linked, ForeignFile) else None  # fmt: skip
        else:
            value = None  # symbolic links, devices, FIFOs: not programs
        entries[path] = value
    settle()
    files, elf, foreign = tree.leaves()
    return ArchitectureReport(image.name, platform, files, elf, tuple(sorted(foreign, key=lambda f: f.path)))


def check_architecture(store: OciStore, manifest_digest: str, platform: Platform,
                       limits: LayerLimits = LayerLimits()) -> ArchitectureReport:  # fmt: skip
    """The ELF check of the image (or index) ``manifest_digest`` in pkgc's store, for ``platform``."""
    with open_stored(store, manifest_digest, platform) as image:
        return scan_image(image, limits)
