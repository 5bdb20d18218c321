"""Hostile OCI inputs (``--base-image oci:DIR`` / ``oci-archive:FILE``, ``pkgc sbom``, ``pkgc attestations
verify``), generated here: links to /dev/zero, FIFOs, oversized documents, blobs longer than their
descriptor, link chains that escape (the CVE-2025-4517 shape), tar headers claiming a gigabyte. Each is
refused as bad input (exit 2) naming the member, quickly, with no partial blob left in pkgc's store and
nothing written outside it; and a valid archive written by pkgc itself still imports and builds."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from compiler.errors import PkgcError, ResolveError
from compiler.oci.base import resolve_base
from compiler.oci.blobs import BlobStore
from compiler.backends.oci.builder import build_oci_image
from compiler.backends.oci.facts import stored_base_facts
from compiler.backends.oci.layers import LayerOptions
from compiler.oci.outputs import StoredImage, write_archive
from compiler.oci.regular import NotRegularFile
from compiler.oci.store import MANIFEST, OciStore
from compiler.reporter import Reporter
from compiler.sbom.image_files import read_layout_file
from tests.unit.test_oci_backend import make_base, make_plan, make_wheel

ROOT = Path(__file__).resolve().parents[2]
QUICK = 5.0  # seconds any refusal may take (a hang or a gigabyte read would take far longer)


def _layout(tmp_path: Path) -> tuple[Path, dict]:
    """A valid one-image layout written by pkgc (``make_base``); its folder and the parsed manifest."""
    reference = make_base(tmp_path / "base")
    folder = Path(reference.split(":")[1])
    entry = json.loads((folder / "index.json").read_bytes())["manifests"][0]
    manifest = json.loads((folder / "blobs/sha256" / entry["digest"][7:]).read_bytes())
    return folder, manifest


def _archive(tmp_path: Path) -> tuple[Path, dict, OciStore]:
    """The same base written as an oci-archive by pkgc's own writer (compiler.oci.outputs)."""
    folder, manifest = _layout(tmp_path)
    store = OciStore(tmp_path / "base" / "build")
    digest = json.loads((folder / "index.json").read_bytes())["manifests"][0]["digest"]
    archive = tmp_path / "base.tar"
    write_archive(store, StoredImage.read(store, digest), archive, "base")
    return archive, manifest, store


def _blob(folder: Path, descriptor: dict) -> Path:
    return folder / "blobs" / "sha256" / descriptor["digest"][7:]


def _refused(reference: str, tmp_path: Path, expected: str) -> str:
    """Import ``reference`` as a base into an empty store: a ResolveError (exit 2) matching ``expected``,
    in under QUICK seconds, with no partial file left in the store."""
    store = OciStore(tmp_path / "cache" / "oci")
    started = time.monotonic()
    with pytest.raises(ResolveError, match=expected) as caught:
        resolve_base(reference, store, None, lambda _msg: None)
    assert time.monotonic() - started < QUICK
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    leftovers = [p.name for p in store.root.rglob("*")] if store.root.exists() else []
    assert not [n for n in leftovers if n.startswith(".partial-")], leftovers
    with pytest.raises(ResolveError, match=expected):  # what a build asks first: the same refusal
        stored_base_facts(reference, tmp_path / "cache", required=True)
    return str(caught.value)


ALL = ("sbom", "sbom --attached", "attestations verify")  # every command that reads the whole layout first
LAYERS = ("sbom",)  # reads the image's layers
CONFIG = ("attestations verify",)  # reads the image's config


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    home = Path(os.environ.get("PYTEST_TMP", "/tmp")) / "pkgc-hostile-home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": "unix:///nowhere.sock",
           "PKGC_CACHE_DIR": str(home / "cache"), "PKGC_WORKSPACE": str(home / "workspace")}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "compiler.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


def _cli_refuses(reference: str, expected: str, commands: tuple[str, ...] = ALL) -> None:
    """``pkgc sbom`` / ``pkgc attestations verify`` on ``reference``: exit 2, one line holding
    ``expected``, no traceback, no hang."""
    for command in commands:
        verb, _, flag = command.partition(" ")
        args = [verb, reference, *([f"{flag}"] if flag.startswith("--") else [])] if verb == "sbom" else [verb, flag, reference]
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert expected in lines[0], (expected, lines[0])


# -- layout folders -------------------------------------------------------------------------------


def test_a_blob_linked_to_dev_zero_is_refused_and_leaves_no_partial_blob(tmp_path):
    folder, manifest = _layout(tmp_path)
    layer = _blob(folder, manifest["layers"][0])
    layer.unlink()
    layer.symlink_to("/dev/zero")
    message = _refused(f"oci:{folder}:base", tmp_path, f"blobs/sha256/{layer.name}: is a symbolic link")
    assert "not a regular file" in message
    _cli_refuses(f"oci:{folder}:base", "is a symbolic link", LAYERS)


def test_a_fifo_blob_is_refused_without_hanging(tmp_path):
    folder, manifest = _layout(tmp_path)
    config = _blob(folder, manifest["config"])
    config.unlink()
    os.mkfifo(config)  # no writer: a blocking open would wait for ever
    _refused(f"oci:{folder}:base", tmp_path, f"blobs/sha256/{config.name}: is a FIFO, not a regular file")
    _cli_refuses(f"oci:{folder}:base", "is a FIFO", CONFIG)


def test_links_inside_the_layout_are_refused_wherever_they_are(tmp_path):
    folder, _ = _layout(tmp_path)
    (folder / "index.json").rename(tmp_path / "real-index.json")
    (folder / "index.json").symlink_to(tmp_path / "real-index.json")  # a link to a perfectly good index
    _refused(f"oci:{folder}:base", tmp_path, "index.json: is a symbolic link")
    (folder / "index.json").unlink()
    (tmp_path / "real-index.json").rename(folder / "index.json")
    (folder / "blobs" / "sha256").rename(tmp_path / "elsewhere")
    (folder / "blobs" / "sha256").symlink_to(tmp_path / "elsewhere")  # a linked blob folder
    _refused(f"oci:{folder}:base", tmp_path, "blobs/sha256: is a symbolic link, not a folder")
    _cli_refuses(f"oci:{folder}:base", "blobs/sha256: is a symbolic link, not a folder", CONFIG)


def test_an_oversized_index_is_refused_before_it_is_read(tmp_path):
    folder, _ = _layout(tmp_path)
    index = json.loads((folder / "index.json").read_bytes())
    index["padding"] = " " * (5 << 20)
    (folder / "index.json").write_text(json.dumps(index))
    _refused(f"oci:{folder}:base", tmp_path, r"index.json: is \d+ bytes, more than the 4194304 pkgc reads")
    _cli_refuses(f"oci:{folder}:base", "more than the 4194304 pkgc reads")


def test_a_blob_longer_or_shorter_than_its_descriptor_is_refused(tmp_path):
    folder, manifest = _layout(tmp_path)
    layer = _blob(folder, manifest["layers"][0])
    size = layer.stat().st_size
    os.chmod(layer, 0o644)
    with open(layer, "ab") as fh:  # the right bytes, then more: a reader bounded by the descriptor stops in time
        fh.truncate(size + (1 << 30))  # a sparse gigabyte: nothing on disk, but a gigabyte to read
    _refused(f"oci:{folder}:base", tmp_path, f"{layer.name}: holds {size + (1 << 30)} bytes, its descriptor says {size}")
    _cli_refuses(f"oci:{folder}:base", "its descriptor says", LAYERS)
    with open(layer, "r+b") as fh:
        fh.truncate(size - 1)
    _refused(f"oci:{folder}:base", tmp_path, f"holds {size - 1} bytes, its descriptor says {size}")


def test_a_blob_of_the_right_size_but_other_bytes_is_refused_and_not_stored(tmp_path):
    folder, manifest = _layout(tmp_path)
    layer = _blob(folder, manifest["layers"][0])
    data = bytearray(layer.read_bytes())
    data[-1] ^= 1
    os.chmod(layer, 0o644)
    layer.write_bytes(bytes(data))
    _refused(f"oci:{folder}:base", tmp_path, f"{layer.name}: does not match its digest")
    store = OciStore(tmp_path / "cache" / "oci")
    assert not store.blobs.has(manifest["layers"][0]["digest"])


def test_descriptors_of_the_wrong_shape_are_refused(tmp_path):
    folder, manifest = _layout(tmp_path)
    index = json.loads((folder / "index.json").read_bytes())
    for entry, expected in (({"digest": "sha256:../../../etc/passwd", "size": 1}, "is not sha256:<64 hex>"),
                            ({"digest": index["manifests"][0]["digest"], "size": "big"}, "is not a byte count"),
                            ({"digest": index["manifests"][0]["digest"], "size": 1 << 40}, "more than the 4194304")):  # fmt: skip
        (folder / "index.json").write_text(json.dumps({"manifests": [{**entry, "annotations": index["manifests"][0]["annotations"]}]}))
        _refused(f"oci:{folder}:base", tmp_path, expected)


# -- archives -------------------------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]  # type: ignore[union-attr]


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _escape_chain(target: Path, prefix: str) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The CVE-2025-4517 member list: 16 nested long folders each beside a link to it, a link up from
    the deepest one, an ``escape`` link through that chain to ``target``'s folder, then a regular file
    through ``escape``. Every name and link target is lexically inside the archive's tree."""
    steps, long = "abcdefghijklmnop", "d" * 247
    members, path = [], prefix
    for step in steps:
        members.append((_info(path + long, tarfile.DIRTYPE), None))
        members.append((_info(path + step, tarfile.SYMTYPE, link=long), None))
        path += long + "/"
    deep = prefix + "/".join(steps) + "/" + "l" * 254
    members.append((_info(deep, tarfile.SYMTYPE, link="../" * len(steps)), None))
    up = "../" * (prefix.count("/") + 1 + len(target.parent.parts))
    members.append((_info(prefix + "escape", tarfile.SYMTYPE, link=deep.removeprefix(prefix) + "/" + up + str(target.parent).lstrip("/")), None))
    members.append((_info(prefix + "escape/" + target.name, size=7), b"written"))
    return members


def test_a_valid_archive_written_by_pkgc_imports_and_builds(tmp_path):
    extracted_before = set(Path(tempfile.gettempdir()).glob("pkgc-oci-archive-*"))
    archive, manifest, source = _archive(tmp_path)
    store = OciStore(tmp_path / "cache" / "oci")
    base = resolve_base(f"oci-archive:{archive}:base", store, None, lambda _msg: None)
    assert base.source == "oci-archive" and base.manifest["layers"] == manifest["layers"]
    for digest in [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]:
        assert store.blobs.read(digest) == source.blobs.read(digest)
    plan = make_plan(f"oci-archive:{archive}:base", make_wheel(tmp_path), tmp_path / "inputs")
    built = build_oci_image(plan, store, None, LayerOptions(0, "3.11"), Reporter(quiet=True))
    image = store.read_json(built.manifest_digest)
    assert image["layers"][: len(manifest["layers"])] == manifest["layers"] and len(image["layers"]) > len(manifest["layers"])
    assert set(Path(tempfile.gettempdir()).glob("pkgc-oci-archive-*")) == extracted_before  # nothing extracted


def test_an_escaping_link_chain_in_an_archive_is_refused_and_writes_nothing(tmp_path):
    archive, _, _ = _archive(tmp_path)
    victim = tmp_path / "host" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("untouched")
    members = _members(archive)
    hostile = _tar(tmp_path / "hostile.tar", members + _escape_chain(victim, "blobs/"))
    _refused(f"oci-archive:{hostile}:base", tmp_path, "blobs/a: is a symbolic link; an OCI archive's layout members must be regular files")
    _cli_refuses(f"oci-archive:{hostile}:base", "is a symbolic link", LAYERS)
    # the same chain beside the layout (outside its names) is never read, and the image imports
    beside = _tar(tmp_path / "beside.tar", members + _escape_chain(victim, "extra/"))
    base = resolve_base(f"oci-archive:{beside}:base", OciStore(tmp_path / "ok" / "oci"), None, lambda _msg: None)
    assert base.source == "oci-archive"
    assert victim.read_text() == "untouched" and sorted(p.name for p in victim.parent.iterdir()) == ["victim.txt"]
    assert not list(tmp_path.rglob("escape"))


def test_link_and_duplicate_members_are_refused_by_name(tmp_path):
    archive, manifest, _ = _archive(tmp_path)
    members = _members(archive)
    layer = f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}"
    linked = [(_info(layer, tarfile.SYMTYPE, link="/dev/zero"), None) if m.name == layer else (m, d) for m, d in members]
    _refused(f"oci-archive:{_tar(tmp_path / 'sym.tar', linked)}:base", tmp_path, f"{layer}: is a symbolic link")
    hard = [(_info(layer, tarfile.LNKTYPE, link="index.json"), None) if m.name == layer else (m, d) for m, d in members]
    _refused(f"oci-archive:{_tar(tmp_path / 'hard.tar', hard)}:base", tmp_path, f"{layer}: is a hard link")
    fifo = [(_info(layer, tarfile.FIFOTYPE), None) if m.name == layer else (m, d) for m, d in members]
    _refused(f"oci-archive:{_tar(tmp_path / 'fifo.tar', fifo)}:base", tmp_path, f"{layer}: is a FIFO")
    index = next(d for m, d in members if m.name == "index.json")
    twice = members + [(_info("./index.json", size=len(index)), index)]  # the same name, spelled differently
    _refused(f"oci-archive:{_tar(tmp_path / 'twice.tar', twice)}:base", tmp_path, "index.json: appears twice in the archive")
    _cli_refuses(f"oci-archive:{tmp_path / 'twice.tar'}:base", "index.json: appears twice in the archive")


def test_a_zeros_bomb_in_an_archive_is_refused_without_filling_the_disk(tmp_path):
    """A small archive whose layer member holds a gigabyte of zeros (a sparse file: about a megabyte on
    disk) where its descriptor says a few hundred bytes; then a header claiming a gigabyte past the end;
    then the same zeros gzip-compressed (a 1 MB file)."""
    archive, manifest, _ = _archive(tmp_path)
    members = _members(archive)
    layer = f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}"
    bomb = tmp_path / "bomb.tar"
    with tarfile.open(bomb, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if info.name == layer:
                info = copy.copy(info)  # the list stays the archive's
                info.size = 1 << 30
                header = info.tobuf(tarfile.PAX_FORMAT, tar.encoding, tar.errors)
                tar.fileobj.write(header)  # type: ignore[union-attr]
                tar.fileobj.seek(1 << 30, os.SEEK_CUR)  # type: ignore[union-attr]  # a hole, not written
                tar.offset += len(header) + (1 << 30)
            else:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
    assert bomb.stat().st_size > 1 << 30 and os.stat(bomb).st_blocks * 512 < 8 << 20
    store_root = tmp_path / "cache" / "oci"
    _refused(f"oci-archive:{bomb}:base", tmp_path, f"{layer}: holds {1 << 30} bytes, its descriptor says {manifest['layers'][0]['size']}")
    _cli_refuses(f"oci-archive:{bomb}:base", "its descriptor says", LAYERS)
    assert sum(p.stat().st_size for p in store_root.rglob("*") if p.is_file()) < 1 << 20

    claims = tmp_path / "claims.tar"  # a header claiming a gigabyte the archive does not hold
    data = _tar(tmp_path / "plain.tar", members).read_bytes()
    at = data.index(layer.encode()) // 512 * 512  # the layer's own header (the pax header names it too)
    header = tarfile.TarInfo.frombuf(data[at : at + 512], "utf-8", "surrogateescape")
    header.size = 1 << 30
    claims.write_bytes(data[:at] + header.tobuf(tarfile.USTAR_FORMAT) + data[at + 512 :])
    _refused(f"oci-archive:{claims}:base", tmp_path, "past the end of the archive|a tar header at byte")

    gz = tmp_path / "zeros.tar.gz"  # the archive, then a gigabyte of zeros, in a 1 MB gzip: refused at its first bytes
    chunk = gzip.compress(bytes(1 << 20))
    gz.write_bytes(gzip.compress(data) + chunk * 1024)
    assert len(gzip.decompress(gz.read_bytes()[: len(gzip.compress(data))])) == len(data) and gz.stat().st_size < 2 << 20
    _refused(f"oci-archive:{gz}:base", tmp_path, "is gzip-compressed; an oci-archive is an uncompressed tar")


def test_a_pax_header_claiming_gigabytes_is_refused(tmp_path):
    archive, _, _ = _archive(tmp_path)
    data = archive.read_bytes()
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 1 << 30
    hostile = tmp_path / "pax.tar"
    hostile.write_bytes(pax.tobuf(tarfile.USTAR_FORMAT) + data)
    _refused(f"oci-archive:{hostile}:base", tmp_path, rf"a tar header at byte 512 claims {1 << 30} bytes")


def test_an_archive_that_is_a_fifo_or_a_device_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "image.tar"
    os.mkfifo(fifo)
    _refused(f"oci-archive:{fifo}", tmp_path, "is a FIFO, not a regular file")
    _cli_refuses(f"oci-archive:{fifo}", "is a FIFO, not a regular file", LAYERS)
    _refused("oci-archive:/dev/zero", tmp_path, "is a character device, not a regular file")
    _refused(f"oci-archive:{tmp_path / 'none.tar'}", tmp_path, "cannot be read: No such file")


# -- the store ------------------------------------------------------------------------------------


def test_a_failed_import_leaves_no_partial_file(tmp_path):
    """A stream that fails half-way (bad input) and a store that cannot be written (full or read-only):
    no ``.partial-*`` stays; a link or FIFO is never copied in."""
    blobs = BlobStore(tmp_path / "blobs")

    class Failing:
        def __init__(self):
            self.calls = 0

        def read(self, _size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise ResolveError("the input broke")
            return b"x" * 1000

    with pytest.raises(ResolveError):
        blobs.import_stream(Failing(), "sha256:" + "0" * 64)
    assert not list(blobs.root.iterdir())
    with pytest.raises(ValueError, match="has the digest"):
        blobs.import_stream(io.BytesIO(b"other"), "sha256:" + "0" * 64)
    assert not list(blobs.root.iterdir())
    (tmp_path / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    for name, kind in (("zero", "a symbolic link"), ("fifo", "a FIFO")):
        with pytest.raises(NotRegularFile, match=kind):
            blobs.import_file(tmp_path / name, "sha256:" + "0" * 64)
    assert not list(blobs.root.iterdir())
    good = b"layer bytes"
    assert blobs.import_stream(io.BytesIO(good), "sha256:" + hashlib.sha256(good).hexdigest()).size == len(good)


def test_read_layout_file_and_the_cli_share_the_reader(tmp_path):
    """``pkgc sbom`` on a good archive still works (through the same reader): the image holds no SBOM,
    which is a clean exit 2 too, not a read problem."""
    archive, _, _ = _archive(tmp_path)
    assert read_layout_file(f"oci-archive:{archive}:base", "/etc/passwd") == b"root:x:0:0:root:/root:/bin/bash\n"
    proc = _cli("sbom", f"oci-archive:{archive}:base")
    assert proc.returncode == 2 and "has no SBOM" in proc.stderr, proc.stderr



# -- JSON of the wrong shape ----------------------------------------------------------------------


def _paths(value: object, prefix: tuple = ()):
    """Every place in a JSON document (the document itself included)."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


def _replaced(document: object, path: tuple, value: object) -> object:
    if not path:
        return value
    document = json.loads(json.dumps(document))
    at = document
    for key in path[:-1]:
        at = at[key]  # type: ignore[index]
    at[path[-1]] = value  # type: ignore[index]
    return document


def test_every_field_of_the_wrong_type_is_one_line_of_bad_input(tmp_path):
    """Each value of index.json, the manifest and the config replaced by a value of another type (or
    the document by one): importing the base and making a package config on it, reading its facts,
    reading a file, verifying and reading the attached SBOM all end in a pkgc error (exit 2, or 4 for a verification), never an internal error."""
    from compiler.provenance.verify import attached_sbom, verify_attestations

    folder, manifest = _layout(tmp_path)
    index = json.loads((folder / "index.json").read_bytes())
    entry = index["manifests"][0]
    config = json.loads(_blob(folder, manifest["config"]).read_bytes())

    def put(document: object) -> dict:
        data = json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = folder / "blobs" / "sha256" / digest[7:]
        if not path.exists():
            path.write_bytes(data)
        return {"digest": digest, "size": len(data)}

    from compiler.backends.oci.config import image_config

    plan = make_plan(f"oci:{folder}", make_wheel(tmp_path), tmp_path / "inputs")

    def build_config(reference: str) -> None:  # what a build makes of the base's config
        image_config(plan, resolve_base(reference, OciStore(tmp_path / "store"), None, lambda _msg: None), [], 0)

    readers = (build_config,
               lambda r: stored_base_facts(r, tmp_path / "facts", required=True),
               lambda r: read_layout_file(r, "/etc/passwd"), lambda r: verify_attestations(r, None), attached_sbom)  # fmt: skip
    cases = 0
    for which, document in (("index", index), ("manifest", manifest), ("config", config)):
        for path in list(_paths(document)):
            for bad in (None, 1, "x", [1], {}):
                changed = _replaced(document, path, bad)
                if which == "config":
                    changed = {**manifest, "config": {**manifest["config"], **put(changed)}}
                if which in ("config", "manifest"):
                    changed = {**index, "manifests": [{**entry, **put(changed)}]}
                (folder / "index.json").write_text(json.dumps(changed))
                for read in readers:
                    for reference in (f"oci:{folder}:base", f"oci:{folder}"):
                        cases += 1
                        try:
                            read(reference)
                        except PkgcError as exc:
                            assert exc.exit_code in (2, 4) and "\n" not in str(exc), str(exc)
    assert cases > 1000


def test_a_full_store_during_an_import_is_one_line_naming_it_and_leaves_no_partial_file(tmp_path):
    """The store's disk fills half-way through a blob (a file size limit: writes fail with EFBIG): one
    BuildError line naming the store, and no ``.partial-*`` stays behind."""
    folder = tmp_path / "layout"
    (folder / "blobs" / "sha256").mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (folder / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(os.urandom(1 << 20))}
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    manifest = put(json.dumps({"schemaVersion": 2, "config": config, "layers": [layer]}).encode())
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    store = tmp_path / "cache" / "oci"
    script = (
        "import sys\nfrom compiler.errors import PkgcError\nfrom compiler.oci.base import resolve_base\n"
        "from compiler.oci.store import OciStore\n"
        f"try:\n    resolve_base('oci:{folder}', OciStore(__import__('pathlib').Path('{store}')), None, print)\n"
        "except PkgcError as exc:\n    print(type(exc).__name__, exc.exit_code, exc)\n"
    )

    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, preexec_fn=limit, timeout=60)
    assert proc.stdout.strip() == f"BuildError 3 cannot write pkgc's OCI store {store}: File too large", proc.stdout + proc.stderr
    assert not list(store.rglob(".partial-*")) and not (store / "blobs" / "sha256" / layer["digest"][7:]).exists()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout == "" and proc.returncode == 0, proc.stdout + proc.stderr  # with room, it imports
    assert (store / "blobs" / "sha256" / layer["digest"][7:]).stat().st_size == 1 << 20


def test_partial_blobs_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """A writer killed mid-blob leaves ``.partial-<pid>-*``: the next store's first write removes it once
    it is stale (its process gone, an hour unwritten), and leaves a live writer's file alone."""
    blobs = BlobStore(tmp_path / "blobs")
    blobs.root.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    killed = blobs.root / f".partial-{gone}-abc"
    killed.write_bytes(b"half a layer")
    recent = blobs.root / f".partial-{gone}-def"  # the same dead process, but written a minute ago: kept (for now)
    recent.write_bytes(b"x")
    live = blobs.root / f".partial-{os.getpid()}-ghi"  # this process: alive, however old
    live.write_bytes(b"y")
    for path, age in ((killed, 7200), (recent, 60), (live, 7200)):
        os.utime(path, (time.time() - age, time.time() - age))
    blobs.put(b"next build")
    assert sorted(p.name for p in blobs.root.glob(".partial-*")) == sorted([recent.name, live.name])
    os.utime(live, (time.time() - 2 * 86400,) * 2)  # a day unwritten: gone whoever named it
    BlobStore(blobs.root).put(b"another build")
    assert [p.name for p in blobs.root.glob(".partial-*")] == [recent.name]


def test_many_entries_naming_big_blobs_cannot_make_a_command_read_without_end(tmp_path):
    """3000 referrers (distinct manifests, in an index.json under 4 MiB) all naming one 1 MiB layer: reading
    them would read 3 GB; the layout's read budget stops it, quickly, as bad input (or a failed check)."""
    from compiler.provenance.verify import verify_attestations

    folder, _ = _layout(tmp_path)
    index = json.loads((folder / "index.json").read_bytes())
    subject = {k: index["manifests"][0][k] for k in ("mediaType", "digest", "size")}

    def put(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (folder / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    layer = {"mediaType": "application/octet-stream", **put(os.urandom(1 << 20))}
    empty = {"mediaType": "application/vnd.oci.empty.v1+json", **put(b"{}")}
    for n in range(3000):
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/x-pkgc-test", "config": empty,
                    "layers": [layer], "subject": subject, "annotations": {"n": str(n)}}  # fmt: skip
        index["manifests"].append({"mediaType": MANIFEST, "artifactType": "application/x-pkgc-test", **put(json.dumps(manifest).encode())})
    (folder / "index.json").write_text(json.dumps(index))
    assert (folder / "index.json").stat().st_size < 4 << 20
    started = time.monotonic()
    with pytest.raises(PkgcError) as caught:
        verify_attestations(f"oci:{folder}:base", None)
    assert time.monotonic() - started < QUICK * 2 and caught.value.exit_code in (2, 4)
    message = str(caught.value)  # the read budget, or (the same layer read once: duplicates collapse) a failed check
    assert "would take the bytes read whole from this layout past" in message or "are not attached" in message, message


def _one_layer_layout(folder: Path, layer_bytes: bytes, media: str) -> str:
    """A layout of one image with one layer of ``layer_bytes`` and no labels (its Python is scanned for)."""
    (folder / "blobs" / "sha256").mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (folder / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    layer = {"mediaType": media, **put(layer_bytes)}
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode())
    manifest = put(json.dumps({"schemaVersion": 2, "config": config, "layers": [layer]}).encode())
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    return f"oci:{folder}"


def test_a_base_layer_that_is_no_tar_or_holds_a_huge_passwd_is_bad_input(tmp_path):
    """The layer bytes match their digest but are not a layer, or hold a 64 MiB /etc/passwd (64 KiB
    compressed): scanning the base for its Python and users is one line, exit 2, quickly."""
    from compiler.backends.oci.scan import scan_base

    passwd = io.BytesIO()
    with tarfile.open(fileobj=passwd, mode="w") as tar:
        info = _info("etc/passwd", size=64 << 20)
        tar.addfile(info, io.BytesIO(b"root:x:0:0::/root:/bin/sh\n" + bytes((64 << 20) - 26)))
    cases = ((os.urandom(4096), "application/vnd.oci.image.layer.v1.tar+gzip", "is not a readable layer"),
             (gzip.compress(passwd.getvalue(), 1), "application/vnd.oci.image.layer.v1.tar+gzip", "/etc/passwd is larger than 4194304 bytes"),
             (b"not a tar" * 100, "application/vnd.oci.image.layer.v1.tar", "is not a readable layer"))  # fmt: skip
    for n, (data, media, expected) in enumerate(cases):
        reference = _one_layer_layout(tmp_path / f"layout{n}", data, media)
        store = OciStore(tmp_path / "cache" / "oci")
        base = resolve_base(reference, store, None, lambda _msg: None)  # its blobs are what they say
        started = time.monotonic()
        with pytest.raises(ResolveError, match=expected) as caught:
            scan_base(store, base)
        assert caught.value.exit_code == 2 and time.monotonic() - started < QUICK
        with pytest.raises(ResolveError, match=expected):  # what a build asks first
            stored_base_facts(reference, tmp_path / "cache", required=True)
