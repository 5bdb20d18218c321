"""Base images per platform, no engine: the image an index gives for linux/amd64 and linux/arm64 from
pkgc's store (``pkgc base-image build --platform``), from an ``oci:`` layout and an ``oci-archive:``
(real layouts written here), the one-line refusal of an image of another architecture, the
mmdebstrap command for another architecture (nothing of it runs), and the host-side configuration of
an unpacked rootfs from real ``.deb`` files built here with dpkg-deb."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from compiler.baseimages.bootstrap import Mirrors, bootstrap_command
from compiler.baseimages.debs import read_deb
from compiler.baseimages.recipes import load_recipe
from compiler.baseimages.unpacked import configure
from compiler.errors import ResolveError
from compiler.oci.base import resolve_base
from compiler.oci.baseimage import name_index, stored_platforms, store_rootfs
from compiler.backends.oci.config import timestamp
from compiler.backends.oci.facts import stored_base_facts
from compiler.oci.layer import Entry, write_layer
from compiler.oci.store import CONFIG, INDEX, MANIFEST, OciStore
from compiler.platform import AMD64, ARM64, Platform
from compiler.sbom.image_files import read_layout_file

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian's dpkg) builds the test packages")
EPOCH = 1747699200


def put_image(store: OciStore, platform: Platform) -> dict:
    """A one-layer image whose /etc/arch names ``platform``; its descriptor."""
    layer = write_layer([Entry("etc/arch", "file", data=platform.architecture.encode())], store.blobs)
    config = store.put_json({**platform.oci(), "created": timestamp(0), "config": {"Labels": {"arch": platform.architecture}},
                             "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}})  # fmt: skip
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [layer.descriptor()],
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size}})  # fmt: skip
    return {"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size}


def write_layout(folder: Path, platforms: tuple[Platform, ...]) -> Path:
    """An OCI layout whose index.json names one image index ``base`` of ``platforms``."""
    store = OciStore(folder)
    manifests = [{**put_image(store, p), "platform": p.oci()} for p in platforms]
    index = store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": INDEX, "digest": index.digest, "size": index.size, "annotations": {"org.opencontainers.image.ref.name": "base"}}]}))  # fmt: skip
    return folder


@pytest.mark.parametrize("platform", [AMD64, ARM64], ids=str)
def test_an_oci_layout_and_archive_index_give_the_platform_asked_for(tmp_path, platform):
    layout = write_layout(tmp_path / "layout", (AMD64, ARM64))
    archive = tmp_path / "base.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, path.relative_to(layout).as_posix(), recursive=False)
    for reference in (f"oci:{layout}:base", f"oci-archive:{archive}:base"):
        base = resolve_base(reference, OciStore(tmp_path / "store"), None, lambda _m: None, platform)
        assert Platform.from_oci(base.config) == platform and base.labels == {"arch": platform.architecture}
        assert read_layout_file(reference, "/etc/arch", platform) == platform.architecture.encode()


def test_a_layout_without_the_platform_is_one_line(tmp_path):
    layout = write_layout(tmp_path / "layout", (AMD64,))
    with pytest.raises(ResolveError, match=r"has no linux/arm64 image; name a base whose index has one, or build it with "
                                           r"'pkgc base-image build NAME --platform linux/arm64'") as caught:  # fmt: skip
        resolve_base(f"oci:{layout}:base", OciStore(tmp_path / "store"), None, lambda _m: None, ARM64)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2


def test_the_store_index_gives_each_platform_and_names_the_command_for_a_missing_one(tmp_path):
    recipe = load_recipe("debian-bookworm")
    store = OciStore.in_cache(tmp_path / "cache")
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.addfile(tarfile.TarInfo("etc"))
    amd = store_rootfs(recipe, rootfs, store, AMD64)
    name_index(store, recipe, {AMD64: {"mediaType": MANIFEST, "digest": amd.digest, "size": amd.size}})
    with pytest.raises(ResolveError, match=r"has no linux/arm64 image; build it with 'pkgc base-image build debian-bookworm --platform linux/arm64'"):
        resolve_base(recipe.latest_ref, store, None, lambda _m: None, ARM64)
    arm = store_rootfs(recipe, rootfs, store, ARM64)
    assert arm.digest != amd.digest  # the same rootfs tar: only the config's platform differs
    images = stored_platforms(store, recipe.image_ref)  # the index already there is kept, arm64 added
    images[ARM64] = {"mediaType": MANIFEST, "digest": arm.digest, "size": arm.size}
    first = name_index(store, recipe, images)
    assert name_index(store, recipe, dict(reversed(list(images.items())))).digest == first.digest  # sorted: reproducible
    assert [m["platform"] for m in store.read_json(first.digest)["manifests"]] == [AMD64.oci(), ARM64.oci()]
    for platform, manifest in ((AMD64, amd), (ARM64, arm)):
        base = resolve_base(recipe.latest_ref, store, None, lambda _m: None, platform)
        assert base.manifest_digest == manifest.digest and base.config["architecture"] == platform.architecture
        facts = stored_base_facts(recipe.latest_ref, tmp_path / "cache", platform=platform)
        assert facts is not None and facts.python == "3.11"
    assert ARM64.variant and base.config["variant"] == ARM64.variant


def test_another_architecture_is_only_unpacked_and_configured_by_a_host_hook():
    recipe = load_recipe("debian-bookworm")
    command = bootstrap_command(recipe, Path("/tmp/out.tar"), Mirrors("http://deb.example/debian", ""), (Path("/tmp/x/stub.deb"),), ARM64)
    assert "--variant=extract" in command and f"--architectures={ARM64.debian_arch}" in command
    assert "--include=?or(?essential,?priority(required))" in command and "--include=usr-is-merged" in command
    hook = next(c for c in command if c.startswith("--extract-hook="))
    assert "-m compiler.baseimages.unpacked" in hook and "--python 3.11" in hook and f"--epoch {EPOCH}" in hook
    assert not any("chroot" in c or "qemu" in c or "binfmt" in c for c in command)
    host = bootstrap_command(recipe, Path("/tmp/out.tar"), Mirrors("http://deb.example/debian", ""), (), Platform.host())
    assert "--variant=minbase" in host and not any(c.startswith(("--architectures", "--extract-hook")) for c in host)


def make_deb(folder: Path, name: str, files: dict[str, str], postinst: str = "", multi_arch: str = "foreign") -> Path:
    root = folder / name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(f"Package: {name}\nVersion: 1.0\nArchitecture: {ARM64.debian_arch}\nMulti-Arch: {multi_arch}\n"
                                         f"Maintainer: t <t@localhost>\nDescription: test {name}\n extended\n")  # fmt: skip
    if postinst:
        (root / "DEBIAN/postinst").write_text(postinst)
        (root / "DEBIAN/postinst").chmod(0o755)
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    sums = subprocess.run(["md5sum", *files], cwd=root, capture_output=True, text=True, check=True).stdout
    (root / "DEBIAN/md5sums").write_text(sums)
    deb = folder / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], capture_output=True, check=True)
    return deb


def test_an_unpacked_rootfs_is_configured_from_its_packages(tmp_path):
    debs_dir, root = tmp_path / "debs", tmp_path / "root"
    debs_dir.mkdir()
    alternatives = ("update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n"
                    "  --slave /usr/bin/nawk nawk /usr/bin/mawk --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n"
                    'update-alternatives --install /usr/bin/pager pager "$PAGER" 9\n')  # fmt: skip
    debs = [
        make_deb(debs_dir, "base-passwd", {"usr/share/base-passwd/passwd.master": "root:*:0:0:root:/root:/bin/bash\n",
                                           "usr/share/base-passwd/group.master": "root:*:0:\nshadow:*:42:\n"}),  # fmt: skip
        make_deb(debs_dir, "mawk", {"usr/bin/mawk": "#!/bin/false\n"}, postinst="#!/bin/sh\n" + alternatives),
        make_deb(debs_dir, "libfoo1", {"usr/lib/aarch64-linux-gnu/libfoo.so.1": "x", "usr/share/doc/libfoo1/changelog": "gone"},
                 multi_arch="same"),  # fmt: skip
        make_deb(debs_dir, "python3.11-minimal", {"usr/bin/python3.11": "#!/bin/false\n", "usr/lib/python3.11/mod.py": "X = 1\n",
                                                  "usr/lib/python3.11/py2.py": "print 'old'\n"}),  # fmt: skip
    ]
    for deb in debs:  # what mmdebstrap --variant=extract does, with a path-exclude on /usr/share/doc
        subprocess.run(["dpkg-deb", "--extract", str(deb), str(root)], check=True)
    shutil.rmtree(root / "usr/share/doc")
    read = [read_deb(deb) for deb in debs]
    assert read[1].alternatives[0].slaves[0] == ("/usr/bin/nawk", "nawk", "/usr/bin/mawk") and len(read[1].alternatives) == 1
    host = ".".join(map(str, __import__("sys").version_info[:2]))
    configure(root, read, host, EPOCH, lambda _line: None)

    assert (root / "etc/passwd").read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    assert (root / "etc/shadow").read_text() == f"root:*:{EPOCH // 86400}:0:99999:7:::\n"
    assert (root / "etc/gshadow").stat().st_mode & 0o777 == 0o640
    assert (root / "etc/alternatives/awk").readlink() == Path("/usr/bin/mawk")
    assert (root / "usr/bin/awk").readlink() == Path("/etc/alternatives/awk") and (root / "usr/bin/nawk").is_symlink()
    assert not (root / "usr/share/man/man1/awk.1.gz").is_symlink()  # its slave's page is absent: not linked
    assert not (root / "usr/bin/pager").exists()  # built from a variable: nothing is guessed
    assert (root / "var/lib/dpkg/alternatives/awk").read_text().startswith("auto\n/usr/bin/awk\nnawk\n/usr/bin/nawk\n")
    status = (root / "var/lib/dpkg/status").read_text()
    assert status.count("Status: install ok installed\n") == 4 and status.index("Package: base-passwd") < status.index("Package: mawk")
    assert (root / "var/lib/dpkg/info/format").read_text() == "1\n"
    listed = (root / f"var/lib/dpkg/info/libfoo1:{ARM64.debian_arch}.list").read_text().splitlines()
    assert "/usr/lib/aarch64-linux-gnu/libfoo.so.1" in listed and "/usr/share/doc/libfoo1/changelog" not in listed
    if host == "3.11":
        assert (root / "usr/lib/python3.11/__pycache__/mod.cpython-311.pyc").is_file()
        assert not (root / "usr/lib/python3.11/__pycache__/py2.cpython-311.pyc").exists()


def test_the_command_refuses_an_unknown_platform_and_a_registry_recipe_for_another_in_one_line(tmp_path):
    from tests.conftest import run_pkgc

    env = {**__import__("os").environ, "DOCKER_HOST": "unix:///nowhere", "PKGC_CACHE_DIR": str(tmp_path / "cache")}
    other = next(p for p in (AMD64, ARM64) if p != Platform.host())
    for args, why in ((("debian-bookworm", "--platform", "linux/s390x"), "--platform: unknown platform 'linux/s390x'; pkgc builds for linux/amd64, linux/arm64"),
                      (("python-slim", "--platform", f"{Platform.host()},{other}"), f"pkgc builds it for {Platform.host()} only; for {other} name a registry index")):  # fmt: skip
        proc = run_pkgc("-q", "base-image", "build", *args, env=env)
        assert proc.returncode == 2 and why in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "cache" / "oci" / "index.json").exists()  # nothing written


def test_a_package_config_states_the_plan_s_platform(tmp_path):
    """The image config's architecture (and arm64's variant) is the plan's target, its base the same platform's."""
    import dataclasses

    from compiler.backends.oci.config import image_config
    from tests.unit.test_oci_backend import make_plan, make_wheel

    layout = write_layout(tmp_path / "layout", (AMD64, ARM64))
    (tmp_path / "wheels").mkdir()
    plan = make_plan(f"oci:{layout}:base", make_wheel(tmp_path / "wheels"), tmp_path / "inputs")
    for platform in (AMD64, ARM64):
        base = resolve_base(f"oci:{layout}:base", OciStore(tmp_path / "store"), None, lambda _m: None, platform)
        config = image_config(dataclasses.replace(plan, platform=platform), base, [], 0)
        assert Platform.from_oci(config) == platform and config.get("variant") == platform.variant
        assert config["rootfs"]["diff_ids"] == base.diff_ids
