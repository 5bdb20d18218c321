"""``pkgc verify --platform linux/arm64`` on this x86-64 host, with no arm64 machine and no engine: a real
arm64 root filesystem (Debian's busybox-static for arm64, fetched from the host's own Debian mirror and
unpacked with ``dpkg-deb -x``; nothing added to dpkg's architectures) in an OCI image written into a
real pkgc OCI store with pkgc's labels, SBOM and lock. The ELF check passes for it and names the host
program slipped into a second image; ``busybox httpd`` serves the health route under qemu-user in a
chroot (the background-server path) and answers a real POST through a CGI script (httpd starts /bin/sh,
which starts busybox: foreign programs starting others, with no binfmt_misc); a server-less command
runs and its output comes back; nothing is left behind (root filesystem, processes, the port).

Needs root (chroot), qemu-user-static (scripts/setup.sh) and the Debian mirror."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from compiler.labels import PackageLabels, Route
from compiler.lock.lockfile import write_lock
from compiler.lock.types import Lock
from compiler.oci.store import OciStore
from compiler.platform import ARM64
from compiler.runtime.qemu import Mount, QemuContainer
from compiler.sbom.generate import generate_sbom
from compiler.sbom.types import SBOM_LABEL, TreeComponent, SbomInputs
from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port
from tests.oci_images import Entry, layer_tar, put_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
QEMU = Path("/usr/bin") / ARM64.qemu
PACKAGE = "busybox-static"
# busybox httpd runs it for POST /cgi-bin/score: httpd executes /bin/sh, which executes busybox again for
# uname: each a foreign program started by another, under qemu-user
CGI = b"""#!/bin/sh
echo "Content-Type: application/json"
echo ""
echo "{\\"machine\\": \\"$(busybox uname -m)\\", \\"user\\": $(busybox id -u)}"
"""


def debian_mirror() -> str:
    """The first Debian archive URI the host's apt sources name (deb822 or one-line format)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources")) + sorted(Path("/etc/apt").glob("sources.list*"))
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M):
            if not uri.rstrip("/").endswith("-security"):
                return uri.rstrip("/")
    raise AssertionError("no Debian mirror in /etc/apt/sources.list*")


def fetch(url: str, limit: int) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read(limit + 1)
    assert len(data) <= limit, f"{url} is larger than {limit} bytes"
    return data


@pytest.fixture(scope="session")
def arm64_busybox(tmp_path_factory) -> Path:
    """Debian bookworm's arm64 busybox-static, checked against the Packages index, unpacked."""
    mirror = debian_mirror()
    index = lzma.decompress(fetch(f"{mirror}/dists/bookworm/main/binary-{ARM64.debian_arch}/Packages.xz", 64 << 20))
    stanza = next(s for s in index.decode().split("\n\n") if s.startswith(f"Package: {PACKAGE}\n"))
    fields = dict(re.findall(r"^(Filename|SHA256): (\S+)$", stanza, re.M))
    deb = fetch(f"{mirror}/{fields['Filename']}", 16 << 20)
    assert hashlib.sha256(deb).hexdigest() == fields["SHA256"]
    folder = tmp_path_factory.mktemp("arm64")
    (folder / "busybox.deb").write_bytes(deb)
    subprocess.run(["dpkg-deb", "-x", str(folder / "busybox.deb"), str(folder / "root")], check=True)
    return folder / "root"


def tree_layer(root: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), str(path.relative_to(root)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") if info.isfile() else io.BytesIO() as fh:
                tar.addfile(info, fh if info.isfile() else None)
    return out.getvalue()


def package_layer(port: int) -> tuple[bytes, dict[str, str]]:
    """/srv (the page the health route serves), /etc/passwd with the server's user, pkgc's lock and SBOM;
    the labels a pkgc package states."""
    lock = Lock(strategy="venv", python="3.11", inputs_hash="0" * 64, packages=(), platform=ARM64)  # the image's own platform's lock
    tree = TreeComponent("page", "1", "1" * 64, "/srv/model")
    sbom = generate_sbom(SbomInputs(package="archcheck", mode="copy", model=tree, model_type="custom_model", code=None,
                                    inputs=(), base_image="debian:bookworm", base_image_id=None, lock=lock,
                                    pkgc_version="0"))  # fmt: skip
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"archcheck-lock-{os.getpid()}.yml"
    write_lock(lock, lock_path, [])
    lock_bytes = lock_path.read_bytes()
    lock_path.unlink()
    route, score = Route(port, "/"), Route(port, "/cgi-bin/score")
    labels = PackageLabels(title="archcheck", description="", base_image="", mode="copy", model_name="page",
                           model_version="1", model_type="custom_model", model_tree="1" * 64, model_dir="/srv/model",
                           server="custom", score=score, readiness=route, liveness=route,
                           extra={SBOM_LABEL: "sha256:" + hashlib.sha256(sbom).hexdigest()}).to_labels()  # fmt: skip
    layer = layer_tar([
        Entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n", mode=0o644),
        Entry("etc/group", b"root:x:0:\napp:x:1000:\n", mode=0o644),
        Entry("srv", kind="dir"), Entry("srv/index.html", b"hello from arm64\n", mode=0o644),
        Entry("srv/cgi-bin/score", CGI, mode=0o755),
        Entry("opt/pkgc/sbom.cdx.json", sbom, mode=0o644), Entry("opt/pkgc/conda-lock.yml", lock_bytes, mode=0o644),
        Entry("bin/sh", kind="symlink", target="busybox"),
    ])  # fmt: skip
    return layer, labels


@pytest.fixture(scope="module")
def arm64_store(arm64_busybox, tmp_path_factory) -> tuple[Path, int, dict[str, str]]:
    """A pkgc cache whose OCI store holds ``archcheck/busybox:arm64`` (a busybox httpd package on a free
    port) and ``archcheck/busybox:mixed`` (the same with /usr/bin/host-true, this host's /bin/true)."""
    assert QEMU.is_file(), f"{QEMU} missing: scripts/setup.sh installs qemu-user-static"
    cache = tmp_path_factory.mktemp("cache")
    store, port = OciStore.in_cache(cache), free_port()
    base = tree_layer(arm64_busybox)
    layer, labels = package_layer(port)
    config = {"Env": ["PATH=/bin:/usr/bin", "GREETING=hello"], "User": "app", "WorkingDir": "/srv", "Labels": labels,
              "Entrypoint": ["busybox"], "Cmd": ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/srv"]}  # fmt: skip
    put_image(store, [base, layer], ARM64, "archcheck/busybox:arm64", config)
    mixed = layer_tar([Entry("usr/bin/host-true", Path("/bin/true").read_bytes())])
    put_image(store, [base, layer, mixed], ARM64, "archcheck/busybox:mixed", config, compression="zstd")
    env = {**os.environ, "PKGC_CACHE_DIR": str(cache), "PKGC_WORKSPACE": str(cache / "workspace")}
    return cache, port, env


def _port_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_verify_runs_the_arm64_server_under_qemu(arm64_store, tmp_path) -> None:
    cache, port, env = arm64_store
    (tmp_path / "request.json").write_text('{"x": 1}')
    (tmp_path / "expect.json").write_text('{"machine": "aarch64", "user": 1000}')
    started = time.monotonic()
    done = run_pkgc("verify", "archcheck/busybox:arm64", "--platform", "linux/arm64", "--json", "--start-timeout", "60",
                    "--request-file", str(tmp_path / "request.json"), "--expect", str(tmp_path / "expect.json"), env=env)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["runner"], result["platform"], result["status"], result["compared"]) == ("qemu", "linux/arm64", 200, True)
    assert result["response"] == {"machine": "aarch64", "user": 1000}  # uname under qemu-user, as the image's user
    assert result["architecture"]["passed"] and result["architecture"]["elf_files"] == 1  # /bin/busybox
    assert result["sbom"]["packages"] == 0  # the SBOM read from the unpacked root filesystem matches its lock
    assert seconds < 30, f"verify took {seconds:.1f} s"
    assert _port_closed(port)  # the server is stopped
    assert not any((cache / "rootfs").iterdir())  # the root filesystem is removed


def test_verify_names_the_host_program_in_an_arm64_image(arm64_store) -> None:
    cache, _port, env = arm64_store
    done = run_pkgc("verify", "archcheck/busybox:mixed", "--platform", "linux/arm64", env=env)
    assert done.returncode == 4, done.stderr
    assert "1 of 2 ELF files are not linux/arm64: /usr/bin/host-true (x86-64)" in done.stderr
    assert "Traceback" not in done.stderr
    wrong = run_pkgc("verify", "archcheck/busybox:arm64", "--platform", "linux/s390x", env=env)
    assert wrong.returncode == 2 and "--platform: unknown platform 'linux/s390x'" in wrong.stderr
    missing = run_pkgc("verify", "archcheck/none:1", "--platform", "linux/arm64", env=env)
    assert missing.returncode == 2 and "is not in pkgc's OCI store" in missing.stderr


def test_a_command_runs_with_the_image_user_env_and_folder(arm64_store, tmp_path) -> None:
    cache, _port, _env = arm64_store
    store = OciStore.in_cache(cache)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("42\n")
    digest = store.find("archcheck/busybox:arm64")["digest"]  # type: ignore[index]
    with QemuContainer(store, digest, ARM64, cache) as box:
        done = box.run(["busybox", "sh", "-c", "echo $GREETING; id -u; pwd; read -r first < /proc/1/status; echo $first"])
        child = box.run(["sh", "-c", "busybox uname -m; exec busybox echo exec"])  # foreign programs starting others
        caps = box.run(["sh", "-c", "while read -r k v; do case $k in CapEff:|CapBnd:) echo $v;; esac; done < /proc/self/status; busybox id -u"],
                       env={}, user="0")  # fmt: skip
        mounted = box.run(["sh", "-c", "read -r w < /srv/model/weights.txt; echo $w; echo x > /srv/model/new"],
                          mounts=[Mount(tmp_path / "model", "/srv/model")])  # fmt: skip
        root = box.root
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[:3] == ["hello", "1000", "/srv"]
    assert lines[3].startswith("Name: python")  # PID 1 of the command's own PID namespace is pkgc's init
    assert (child.returncode, child.stdout) == (0, b"aarch64\nexec\n"), child.stderr
    assert mounted.stdout == b"42\n" and b"Read-only file system" in mounted.stderr  # a read-only mount
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["weights.txt"]
    assert caps.returncode == 0 and caps.stdout.decode().split() == ["0000000000000000", "0000000000000000", "0"]  # uid 0, no capability
    assert root is not None and not root.exists()
