"""The Platform value: one target named in OCI, conda, wheel, Debian, ELF and qemu terms."""

import pytest

from compiler.platform import AMD64, ARM64, Platform, parse_platforms


def test_names_in_every_vocabulary():
    assert (ARM64.conda_subdir, ARM64.machine, ARM64.triplet, ARM64.elf_machine, ARM64.qemu) == (
        "linux-aarch64", "aarch64", "aarch64-linux-gnu", 183, "qemu-aarch64-static")
    assert (AMD64.conda_subdir, AMD64.machine, AMD64.triplet, AMD64.elf_machine) == ("linux-64", "x86_64", "x86_64-linux-gnu", 62)
    assert ARM64.oci() == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert AMD64.oci() == {"architecture": "amd64", "os": "linux"}
    assert str(ARM64) == "linux/arm64"


@pytest.mark.parametrize("text,expected", [("linux/amd64", AMD64), ("linux/arm64/v8", ARM64), ("LINUX/aarch64", ARM64),
                                           ("linux-aarch64", ARM64), ("linux-64", AMD64), (" linux/x86_64 ", AMD64)])
def test_parse(text, expected):
    assert Platform.parse(text) == expected


@pytest.mark.parametrize("text", ["linux/s390x", "windows/amd64", "linux-ppc64le", "", "linux/arm64/v7"])
def test_parse_refuses_what_pkgc_does_not_build(text):
    with pytest.raises(ValueError, match="pkgc builds for linux/amd64, linux/arm64"):
        Platform.parse(text)


def test_platform_lists_keep_order_and_drop_duplicates():
    assert parse_platforms("linux/arm64, linux/amd64,linux/aarch64") == (ARM64, AMD64)
    with pytest.raises(ValueError):
        parse_platforms(" , ")


def test_wheel_tags_and_oci_entries():
    assert ARM64.manylinux_tags(28)[0] == "manylinux_2_28_aarch64" and "manylinux2014_aarch64" in ARM64.manylinux_tags(28)
    assert ARM64.accepts_wheel_platform("manylinux_2_17_aarch64") and not ARM64.accepts_wheel_platform("manylinux_2_17_x86_64")
    assert AMD64.accepts_wheel_platform("any") and not AMD64.accepts_wheel_platform("win_amd64")
    assert Platform.from_oci({"os": "linux", "architecture": "arm64", "variant": "v8"}) == ARM64
    assert Platform.from_oci({"os": "linux", "architecture": "arm", "variant": "v7"}) is None
    assert Platform.host() == AMD64  # this machine
