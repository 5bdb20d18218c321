"""Unpacking an image's root filesystem (compiler.runtime.rootfs) from real layers in a real pkgc OCI
store: layers in order, whiteouts and opaque folders, absolute links resolved inside the root, and
hostile layers (names and links that climb out, link loops, a tar bomb, devices) that write nothing
outside the target folder and end quickly. Also the image user lookup (compiler.runtime.image_user)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from compiler.errors import ResolveError
from compiler.oci.store import OciStore
from compiler.platform import ARM64
from compiler.runtime.image_layers import LayerError, LayerLimits, open_stored
from compiler.runtime.image_user import process_env, process_user
from compiler.runtime.rootfs import RootfsLimits, read_file, rootfs_folder, unpack_rootfs
from tests.oci_images import Entry, layer_tar, put_image

QUICK = 5.0


def _unpack(tmp_path: Path, layers: list[bytes], limits: RootfsLimits = RootfsLimits()) -> Path:
    store = OciStore(tmp_path / "oci")
    manifest = put_image(store, layers, ARM64)
    target = tmp_path / "root"
    target.mkdir()
    with open_stored(store, manifest.digest, ARM64) as image:
        unpack_rootfs(image, target, limits)
    return target


def _files(root: Path) -> dict[str, str]:
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            found[key] = f"-> {os.readlink(path)}" if path.is_symlink() else "dir" if path.is_dir() else path.read_text()
    return found


def test_layers_apply_in_order_with_whiteouts(tmp_path: Path) -> None:
    bottom = layer_tar([Entry("usr/lib", kind="dir"), Entry("usr/lib/a", b"a"), Entry("usr/lib/old/b", b"b"),
                        Entry("lib", kind="symlink", target="/usr/lib"), Entry("etc/gone", b"x"),
                        Entry("etc/keep", b"k"), Entry("opt/f", b"file")])
    top = layer_tar([Entry("usr/lib/.wh..wh..opq", b""), Entry("usr/lib/new", b"n"), Entry("etc/.wh.gone", b""),
                     Entry("lib/via-link", b"v"), Entry("opt/f/now-a-folder", b"d"),
                     Entry("usr/lib/hard", kind="hardlink", target="usr/lib/new")])
    root = _unpack(tmp_path, [bottom, top])
    assert _files(root) == {
        "usr": "dir", "usr/lib": "dir", "usr/lib/new": "n", "usr/lib/via-link": "v", "usr/lib/hard": "n",
        "lib": "-> /usr/lib", "etc": "dir", "etc/keep": "k", "opt": "dir", "opt/f": "dir", "opt/f/now-a-folder": "d"}
    assert os.stat(root / "usr/lib/hard").st_ino == os.stat(root / "usr/lib/new").st_ino
    assert read_file(root, "/lib/new", 10) == b"n"  # the absolute link resolved inside the root
    assert read_file(root, "/lib", 10) is None


def test_hostile_names_and_links_stay_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = layer_tar([Entry("../escape", b"x"), Entry("/abs", b"y"), Entry("up", kind="symlink", target="../../outside"),
                       Entry("up/written", b"z"), Entry("etc", kind="symlink", target=str(outside)),
                       Entry("etc/passwd", b"p"), Entry("hard", kind="hardlink", target="../outside/x"),
                       Entry("dev/null-ish", kind="fifo")])
    root = _unpack(tmp_path, [layer])
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape").exists()
    assert (root / "abs").read_text() == "y"  # an absolute name is taken from the root
    assert (root / "outside/written").read_text() == "z"  # "../.." above the root stays at the root, as in a chroot
    assert (root / str(outside).lstrip("/") / "passwd").read_text() == "p"
    assert not (root / "hard").exists() and not (root / "dev/null-ish").exists()


def test_loops_and_bombs_end_quickly(tmp_path: Path) -> None:
    started = time.monotonic()
    loop = layer_tar([Entry("a", kind="symlink", target="b"), Entry("b", kind="symlink", target="a"), Entry("a/x", b"1")])
    with pytest.raises(LayerError, match="member 'a/x' lies behind more than 40 links"):
        _unpack(tmp_path / "loop", [loop])
    big = layer_tar([Entry("big", b"\0" * (2 << 20))])
    with pytest.raises(LayerError, match="more than 1048576 bytes"):
        _unpack(tmp_path / "big", [big], RootfsLimits(max_bytes=1 << 20))
    with pytest.raises(LayerError, match="more than 1048576 bytes of tar"):
        _unpack(tmp_path / "bomb", [big], RootfsLimits(layers=LayerLimits(max_inflated=1 << 20)))
    assert time.monotonic() - started < QUICK


def test_the_folder_is_removed_whatever_happens(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with rootfs_folder(tmp_path) as root:
            (root / "ro").mkdir()
            (root / "ro" / "f").write_text("x")
            (root / "ro").chmod(0o500)
            raise RuntimeError("boom")
    assert list((tmp_path / "rootfs").iterdir()) == []


def test_image_user_and_env() -> None:
    passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    group = b"root:x:0:\napp:x:1000:\nstaff:x:50:app\n"
    assert process_user("app", passwd, group, "i") == process_user("1000", passwd, group, "i")
    user = process_user("app:staff", passwd, group, "i")
    assert (user.uid, user.gid, user.groups, user.home) == (1000, 50, (50,), "/home/app")
    assert process_user("", passwd, group, "i").uid == 0
    assert process_user("4242:4343", None, None, "i").groups == (4343,)
    with pytest.raises(ResolveError, match="no user 'nobody'"):
        process_user("nobody", passwd, group, "i")
    env = process_env(["A=1", "PATH=/x", "bad"], user, {"B": "2"})
    assert env == {"A": "1", "PATH": "/x", "HOME": "/home/app", "B": "2"}


def test_modes_are_the_layers_not_the_umask(tmp_path: Path) -> None:
    layer = layer_tar([Entry("tmp", kind="dir", mode=0o1777), Entry("bin/su", b"x", mode=0o4755), Entry("etc/f", b"y", mode=0o600)])
    old = os.umask(0o077)
    try:
        root = _unpack(tmp_path, [layer])
    finally:
        os.umask(old)
    assert [oct(os.stat(root / name).st_mode & 0o7777) for name in ("tmp", "bin/su", "etc/f")] == ["0o1777", "0o755", "0o600"]


def test_programs_not_libraries_are_wrapped(tmp_path: Path) -> None:
    """This host's programs and libraries as a root of the host's platform: /bin/true (a PIE with an
    interpreter) is wrapped; libc.so.6 (which has an interpreter too), libz and pkgc's launchers are not."""
    from compiler.platform import AMD64, Platform
    from compiler.runtime.exec_wrappers import wrap_programs

    host = Platform.host()
    other = ARM64 if host != ARM64 else AMD64
    lib = Path("/usr/lib") / host.triplet
    root = tmp_path / "root"
    for source, target in ((Path("/bin/true"), "usr/bin/true"), (lib / "libc.so.6", "usr/lib/libc.so.6"),
                           (lib / "libz.so.1", "usr/lib/libz.so.1"), (Path("/bin/true"), ".pkgc-qemu/qemu")):  # fmt: skip
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        (root / target).write_bytes(source.read_bytes())
        (root / target).chmod(0o755)
    (root / "usr/bin/link").symlink_to("true")
    assert wrap_programs(root, host) == 1 and wrap_programs(root, other) == 0
    assert (root / "usr/bin/true").read_text() == (
        f"#!/.pkgc-qemu/busybox sh\nexec /.pkgc-qemu/{host.qemu} -0 \"$0\" /usr/bin/.pkgc-qemu.true \"$@\"\n")
    assert (root / "usr/bin/.pkgc-qemu.true").read_bytes() == Path("/bin/true").read_bytes()
    assert os.stat(root / "usr/bin/true").st_mode & 0o777 == 0o755 and (root / "usr/bin/link").is_symlink()
    assert wrap_programs(root, host) == 0  # already wrapped: nothing twice
