"""The target platform of an image: one value that names it in every vocabulary pkgc speaks.

OCI says ``linux/arm64``, conda ``linux-aarch64``, wheels ``manylinux_2_28_aarch64``, Debian ``arm64``,
ELF ``EM_AARCH64`` and the loader ``aarch64-linux-gnu``. A ``Platform`` is made once (``--platform``,
``pkgc.toml``, or the host) and carried by the lock, the base, the plan and the built image, so no
other module spells an architecture.
"""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass


@dataclass(frozen=True)
class _Arch:
    """One architecture's names."""

    oci: str  # OCI/Go: amd64, arm64
    machine: str  # uname -m, wheel tags, the multiarch triplet: x86_64, aarch64
    conda: str  # conda subdir suffix: 64, aarch64
    elf_machine: int  # ELF e_machine
    variant: str | None  # the OCI variant an index states for it (arm64: v8), None when none
    aliases: tuple[str, ...]


_ARCHES = (
    _Arch("amd64", "x86_64", "64", 62, None, ("amd64", "x86_64", "x86-64", "x64")),
    _Arch("arm64", "aarch64", "aarch64", 183, "v8", ("arm64", "aarch64", "arm64/v8", "aarch64/v8")),
)


@dataclass(frozen=True, order=True)
class Platform:
    """An image's target: ``linux/amd64`` or ``linux/arm64`` (the ones pkgc builds for)."""

    os: str
    architecture: str  # OCI's name

    @property
    def _arch(self) -> _Arch:
        return next(a for a in _ARCHES if a.oci == self.architecture)

    @property
    def machine(self) -> str:
        """``uname -m``: the suffix of manylinux wheel tags and the prefix of the multiarch triplet."""
        return self._arch.machine

    @property
    def conda_subdir(self) -> str:
        return f"{self.os}-{self._arch.conda}"

    @property
    def debian_arch(self) -> str:
        return self.architecture

    @property
    def triplet(self) -> str:
        """Debian's multiarch folder name: ``/usr/lib/aarch64-linux-gnu``."""
        return f"{self.machine}-{self.os}-gnu"

    @property
    def elf_machine(self) -> int:
        return self._arch.elf_machine

    @property
    def variant(self) -> str | None:
        return self._arch.variant

    @property
    def qemu(self) -> str:
        """The qemu-user binary (Debian's qemu-user-static) that runs this platform's programs."""
        return f"qemu-{self.machine}-static"

    def oci(self) -> dict[str, str]:
        """The ``platform`` object of an OCI index entry (``os``, ``architecture``, and arm64's ``variant``)."""
        value = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            value["variant"] = self.variant
        return value

    def manylinux_tags(self, glibc_minor: int, oldest: int = 17) -> list[str]:
        """The manylinux platform tags a wheel may carry to run on glibc 2.``glibc_minor``, newest first."""
        tags = [f"manylinux_2_{m}_{self.machine}" for m in range(glibc_minor, oldest - 1, -1)]
        return tags + [f"manylinux2014_{self.machine}"] + ([f"manylinux2010_{self.machine}"] if self.architecture == "amd64" else [])

    def accepts_wheel_platform(self, tag: str) -> bool:
        """A wheel's platform tag (``any``, ``manylinux_2_17_aarch64``, ``linux_x86_64`` ...) runs here."""
        if tag == "any":
            return True
        return tag.startswith(("manylinux", "musllinux", "linux_")) and tag.endswith("_" + self.machine) and self.os == "linux"

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}"

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64``, ``linux/arm64/v8``, ``linux/amd64``, ``linux-aarch64``, ``linux-64``; ValueError
        naming the supported ones otherwise."""
        value = text.strip().lower()
        if value.startswith("linux-"):
            suffix = value[len("linux-"):]
            arch = next((a for a in _ARCHES if a.conda == suffix), None)
        else:
            os_name, _, rest = value.partition("/")
            arch = next((a for a in _ARCHES if rest in a.aliases), None) if os_name == "linux" else None
        if arch is None:
            raise ValueError(f"unknown platform {text.strip()[:40]!r}; pkgc builds for {', '.join(map(str, SUPPORTED))}")
        return cls("linux", arch.oci)

    @classmethod
    def from_oci(cls, value: dict) -> Platform | None:
        """The platform an OCI index entry or image config states, when pkgc builds for it."""
        os_name, arch = value.get("os"), value.get("architecture")
        if os_name != "linux" or not isinstance(arch, str) or arch not in {a.oci for a in _ARCHES}:
            return None
        variant = value.get("variant")
        if arch == "arm64" and variant not in (None, "v8"):
            return None
        return cls("linux", arch)

    @classmethod
    def host(cls) -> Platform:
        """This machine's platform (``linux/amd64`` here)."""
        machine = _host.machine().lower()
        arch = next((a for a in _ARCHES if machine in a.aliases), None)
        if arch is None:
            raise ValueError(f"pkgc does not build on a {machine} host")
        return cls("linux", arch.oci)


AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
SUPPORTED = (AMD64, ARM64)


def parse_platforms(text: str) -> tuple[Platform, ...]:
    """``linux/amd64,linux/arm64`` -> the platforms in the order given, duplicates dropped; ValueError
    for an unknown one or an empty list."""
    found = [Platform.parse(part) for part in text.split(",") if part.strip()]
    if not found:
        raise ValueError("no platform named")
    return tuple(dict.fromkeys(found))
