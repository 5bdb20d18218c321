"""The one reader of OCI image layouts pkgc did not write: an ``oci:DIR`` folder or an
``oci-archive:FILE`` tar, read in place (an archive is never extracted).

Every command that takes such an input (``--base-image``, ``pkgc sbom``, ``pkgc attestations verify``)
reads it through here, so the same rules hold everywhere:

- only regular files are read: a folder's members are opened component by component with no link
  followed and no FIFO or device opened; an archive's layout members (``index.json``, ``oci-layout``,
  ``blobs/...``) must be regular-file members, each named once, each lying inside the archive (an
  uncompressed tar: it is read at member offsets, nothing is inflated);
- every read is bounded: JSON documents by ``JSON_LIMIT``, a blob by its descriptor's size, which must
  be the size of the file or member holding it, and all that one command reads whole by
  ``WHOLE_BUDGET`` (a manifest named many times is read once);
- a blob is checked against its digest as it is read (the stream fails at its end when it differs).

Every problem is a ``LayoutError`` (bad input, exit 2): one line naming the layout, the member and
what is wrong with it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path, PurePosixPath

from compiler.errors import SpecError, SpecProblem, excerpt
from compiler.oci.regular import NotRegularFile, open_folder, open_regular, read_at
from compiler.platform import Platform

JSON_LIMIT = 4 << 20  # index.json, oci-layout, manifests, configs
CHUNK = 1 << 20
MAX_MEMBERS = 100_000  # tar members listed before an archive is refused
HEADER_LIMIT = 1 << 20  # the most tarfile may read at once while listing (a pax or long-name header)
MAX_LAYERS = 1000
WHOLE_BUDGET = 256 << 20  # bytes one opened layout may read whole (documents, attached blobs), all told
MAX_NESTING = 4  # image indexes within image indexes
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
EMPTY = "sha256:" + hashlib.sha256(b"").hexdigest()
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
LAYOUT_NAMES = ("index.json", "oci-layout")
COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def platform_entry(entries: object, platform: Platform) -> dict | None:
    """The first entry of an index's ``manifests`` whose ``platform`` object states ``platform``."""
    if not isinstance(entries, list):
        return None
    return next((m for m in entries if isinstance(m, dict) and isinstance(m.get("platform"), dict)
                 and Platform.from_oci(m["platform"]) == platform), None)  # fmt: skip


class LayoutError(SpecError):
    """One problem with one member of an OCI layout or archive."""

    def __init__(self, where: str, member: str, why: str):
        self.where, self.member, self.why = where, excerpt(member, 120) if member else "", why
        super().__init__(SpecProblem(excerpt(where, 200), self.member, why))

    @property
    def detail(self) -> str:
        """The problem without the layout's name: ``member: why``."""
        return f"{self.member}: {self.why}" if self.member else self.why


class MissingPlatform(LayoutError):
    """An image index with no image for the platform asked for."""


class _Missing(LayoutError):
    """The member is not there at all."""


def mapping(value: object) -> dict:
    """``value`` when it is a JSON object, else an empty one (for optional fields of untrusted JSON:
    ``annotations``, ``config``, ``Labels``)."""
    return value if isinstance(value, dict) else {}


def parse_reference(reference: str) -> tuple[str, Path, str | None] | None:
    """``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]`` -> (kind, path, tag); None for other references."""
    kind, sep, rest = reference.partition(":")
    if not sep or kind not in ("oci", "oci-archive"):
        return None
    path, _, tag = rest.partition(":")
    return kind, Path(path).expanduser(), tag or None


def open_layout(reference: str) -> "OciLayout":
    """The layout an ``oci:``/``oci-archive:`` reference names, opened (close it, or use ``with``)."""
    parsed = parse_reference(reference)
    if parsed is None or not str(parsed[1]) or str(parsed[1]) == ".":
        raise LayoutError(reference, "", "expected oci:DIR[:TAG] or oci-archive:FILE[:TAG]")
    kind, path, tag = parsed
    return ArchiveLayout(path, reference, tag) if kind == "oci-archive" else FolderLayout(path, reference, tag)


class _Member:
    """A regular file's bytes: ``size`` bytes at ``offset`` of ``fd``."""

    def __init__(self, fd: int, offset: int, size: int, owned: bool):
        self.fd, self.offset, self.size, self.owned = fd, offset, size, owned

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)
            self.owned = False


class BlobStream:
    """A blob read as a stream: exactly its descriptor's size, hashed as it goes; the read that reaches
    its end fails (LayoutError) when the bytes are not the digest's, so whoever drains it has checked it."""

    def __init__(self, layout: "OciLayout", member: _Member, name: str, digest: str):
        self._layout, self._member, self.name, self._digest = layout, member, name, digest
        self._hash, self._done = hashlib.sha256(), 0
        self.size = member.size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while block := self.read(CHUNK):
                parts.append(block)
            return b"".join(parts)
        want = min(size, self.size - self._done)
        if want <= 0:
            return b""
        try:
            block = os.pread(self._member.fd, want, self._member.offset + self._done)
        except OSError as exc:
            raise self._layout.error(self.name, f"cannot be read: {exc.strerror or exc}") from None
        if not block:
            raise self._layout.error(self.name, f"ends after {self._done} of its {self.size} bytes")
        self._done += len(block)
        self._hash.update(block)
        if self._done == self.size and "sha256:" + self._hash.hexdigest() != self._digest:
            raise self._layout.error(self.name, "does not match its digest")
        return block

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._member.close()

    def __enter__(self) -> "BlobStream":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class OciLayout:
    """An OCI layout opened for checked reading; ``_member(name)`` is what a folder and an archive
    do differently."""

    def __init__(self, where: str, tag: str | None):
        self.where, self.tag = where, tag
        self._budget = WHOLE_BUDGET
        self._documents: dict[str, dict] = {}  # digest -> the parsed blob (shared: callers only read it)

    # -- what each kind provides -------------------------------------------------------------
    def _member(self, name: str) -> _Member:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- shared, checked reading -------------------------------------------------------------
    def error(self, member: str, why: str) -> LayoutError:
        return LayoutError(self.where, member, why)

    def fail(self, why: str) -> LayoutError:
        """A problem with the layout as a whole (no one member)."""
        return LayoutError(self.where, "", why)

    def _spend(self, name: str, size: int) -> None:
        """Count ``size`` bytes read whole against ``WHOLE_BUDGET``, so that many entries naming big
        blobs cannot make one command read without end."""
        if size > self._budget:
            raise self.error(name, f"would take the bytes read whole from this layout past {WHOLE_BUDGET}")
        self._budget -= size

    def read(self, name: str, limit: int) -> bytes:
        """The whole member ``name``, refused when larger than ``limit``."""
        member = self._member(name)
        try:
            if member.size > limit:
                raise self.error(name, f"is {member.size} bytes, more than the {limit} pkgc reads")
            self._spend(name, member.size)
            try:
                data = read_at(member.fd, member.offset, member.size)
            except OSError as exc:
                raise self.error(name, f"cannot be read: {exc.strerror or exc}") from None
            if len(data) != member.size:
                raise self.error(name, f"ends after {len(data)} of its {member.size} bytes")
            return data
        finally:
            member.close()

    def json(self, name: str, data: bytes | None = None) -> dict:
        """The JSON object in member ``name`` (or in ``data``, read from it)."""
        data = self.read(name, JSON_LIMIT) if data is None else data
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise self.error(name, f"is not JSON ({excerpt(str(exc), 80)})") from None
        if not isinstance(value, dict):
            raise self.error(name, "is not a JSON object")
        return value

    def check_layout_file(self) -> None:
        """``oci-layout``, when there is one, states a layout version."""
        if self.has("oci-layout") and not isinstance(self.json("oci-layout").get("imageLayoutVersion"), str):
            raise self.error("oci-layout", "states no imageLayoutVersion")

    def descriptor(self, value: object, what: str = "a descriptor") -> tuple[str, int]:
        """(digest, size) of a descriptor, both checked for shape."""
        digest = value.get("digest") if isinstance(value, dict) else None
        size = value.get("size") if isinstance(value, dict) else None
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise self.fail(f"{what}'s digest {excerpt(str(digest), 80)!r} is not sha256:<64 hex>")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise self.fail(f"{what} {digest[:19]}'s size {excerpt(str(size), 40)!r} is not a byte count")
        return digest, size

    def open_blob(self, descriptor: object, limit: int | None = None, what: str = "a descriptor") -> BlobStream:
        """The blob ``descriptor`` names, as a checked stream of exactly its size."""
        digest, size = self.descriptor(descriptor, what)
        name = f"blobs/sha256/{digest[7:]}"
        if limit is not None and size > limit:
            raise self.error(name, f"is too large: {size} bytes by its descriptor, more than the {limit} pkgc reads")
        member = self._member(name)
        if member.size != size:
            member.close()
            raise self.error(name, f"holds {member.size} bytes, its descriptor says {size}")
        if size == 0 and digest != EMPTY:
            member.close()
            raise self.error(name, "does not match its digest")
        return BlobStream(self, member, name, digest)

    def blob(self, descriptor: object, limit: int, what: str = "a descriptor") -> bytes:
        """The whole blob ``descriptor`` names (at most ``limit`` bytes), checked."""
        with self.open_blob(descriptor, limit, what) as stream:
            self._spend(stream.name, stream.size)
            return stream.read()

    def blob_json(self, descriptor: object, what: str = "a descriptor") -> dict:
        """The JSON object in the blob ``descriptor`` names (a manifest, an index, a config), checked;
        read once per layout however many entries name it (the object is shared: do not modify it)."""
        digest, _ = self.descriptor(descriptor, what)
        if digest not in self._documents:
            self._documents[digest] = self.json(f"blobs/sha256/{digest[7:]}", self.blob(descriptor, JSON_LIMIT, what))
        return self._documents[digest]

    def image_manifest(self, descriptor: object, platform: Platform | None = None) -> tuple[dict, dict]:
        """(descriptor, manifest) of the image ``descriptor`` names, through image indexes (at most
        ``MAX_NESTING`` deep) to their ``platform`` manifest (default: the host's); its config and
        layers are checked for shape."""
        wanted = platform or Platform.host()
        for _ in range(MAX_NESTING + 1):
            document = self.blob_json(descriptor, "a manifest")
            if document.get("mediaType") not in INDEX_TYPES and "manifests" not in document:
                self._check_manifest(descriptor, document)
                return descriptor, document  # type: ignore[return-value]
            chosen = platform_entry(document.get("manifests"), wanted)
            if chosen is None:
                raise MissingPlatform(self.where, f"blobs/sha256/{self.descriptor(descriptor)[0][7:]}", f"the image index has no {wanted} manifest")
            descriptor = chosen
        raise self.fail(f"image indexes are nested more than {MAX_NESTING} deep")

    def _check_manifest(self, descriptor: object, manifest: dict) -> None:
        name = f"blobs/sha256/{self.descriptor(descriptor)[0][7:]}"
        layers = manifest.get("layers")
        if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
            raise self.error(name, f"is not an image manifest with a list of at most {MAX_LAYERS} layers")
        self.descriptor(manifest.get("config"), "the manifest's config")
        for layer in layers:
            self.descriptor(layer, "a layer")

    def __enter__(self) -> "OciLayout":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class FolderLayout(OciLayout):
    """An ``oci:DIR`` layout: the folder named may be a link; nothing inside it may be."""

    def __init__(self, path: Path, where: str, tag: str | None = None):
        super().__init__(where, tag)
        try:
            self._root = open_folder(str(path), follow=True)
        except (OSError, NotRegularFile) as exc:
            why = exc.why if isinstance(exc, NotRegularFile) else exc.strerror or str(exc)
            raise self.fail(f"is not an OCI layout folder with an index.json ({why})") from None

    def _member(self, name: str) -> _Member:
        *folders, last = name.split("/")
        walked: list[str] = []
        opened: list[int] = []
        try:
            at = self._root
            for folder in folders:
                walked.append(folder)
                at = open_folder(folder, dir_fd=at)
                opened.append(at)
            walked.append(last)
            fd, size = open_regular(last, dir_fd=at)
        except NotRegularFile as exc:
            raise self.error("/".join(walked), exc.why) from None
        except FileNotFoundError:
            raise _Missing(self.where, name, "is missing") from None
        except OSError as exc:
            raise self.error(name, f"cannot be opened: {exc.strerror or exc}") from None
        finally:
            for descriptor in opened:
                os.close(descriptor)
        return _Member(fd, 0, size, owned=True)

    def has(self, name: str) -> bool:
        try:
            self._member(name).close()
        except _Missing:
            return False
        return True

    def close(self) -> None:
        if self._root >= 0:
            os.close(self._root)
            self._root = -1


class _Headers:
    """The archive as ``tarfile`` lists it: headers only (member data is skipped by seeking), and no
    single read larger than ``HEADER_LIMIT`` (a pax or long-name header claiming gigabytes)."""

    def __init__(self, fd: int, size: int, refuse):
        self._fd, self._size, self._pos, self._refuse = fd, size, 0, refuse

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > HEADER_LIMIT:
            raise self._refuse(self._pos, size)
        data = read_at(self._fd, self._pos, size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset if whence == 1 else self._size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


class ArchiveLayout(OciLayout):
    """An ``oci-archive:FILE`` layout: an uncompressed tar read at its members' offsets.

    Only the layout's own members (``index.json``, ``oci-layout``, ``blobs/...``) are ever read; each
    must be a regular-file member named once. Other members are never read, so never checked."""

    def __init__(self, path: Path, where: str, tag: str | None = None):
        super().__init__(where, tag)
        self.path = path
        try:
            self._fd, self._size = open_regular(path, follow=True)
        except NotRegularFile as exc:
            raise self.fail(exc.why) from None
        except OSError as exc:
            raise self.fail(f"cannot be read: {exc.strerror or exc}") from None
        try:
            self._members = self._list()
        except BaseException:
            os.close(self._fd)
            raise

    def _list(self) -> dict[str, tuple[int, int]]:
        """The regular layout members: name -> (data offset, size)."""
        magic = read_at(self._fd, 0, 6)
        for prefix, kind in COMPRESSED.items():
            if magic.startswith(prefix):
                raise self.fail(f"is {kind}-compressed; an oci-archive is an uncompressed tar")

        def too_large(offset: int, size: int) -> LayoutError:
            return self.fail(f"a tar header at byte {offset} claims {size} bytes (more than {HEADER_LIMIT})")

        members: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(fileobj=_Headers(self._fd, self._size, too_large), mode="r:") as tar:  # type: ignore[arg-type]
                for count, info in enumerate(tar):
                    if count >= MAX_MEMBERS:
                        raise self.fail(f"has more than {MAX_MEMBERS} members")
                    self._admit(info, members)
        except tarfile.TarError as exc:
            raise self.fail(f"is not a readable tar archive: {exc}") from None
        except OSError as exc:
            raise self.fail(f"cannot be read: {exc.strerror or exc}") from None
        return members

    def _admit(self, info: tarfile.TarInfo, members: dict[str, tuple[int, int]]) -> None:
        """Record ``info`` when it is a layout member; refuse it when it is one but not a plain,
        single, in-bounds regular file."""
        name = PurePosixPath(info.name).as_posix().removeprefix("./")
        if info.offset_data + max(info.size, 0) > self._size or info.size < 0:
            raise self.error(name, f"claims {info.size} bytes, past the end of the archive ({self._size} bytes)")
        if not (name in LAYOUT_NAMES or name == "blobs" or name.startswith("blobs/")):
            return  # never read
        if info.isdir():
            return
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or info.sparse is not None:
            kind = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.FIFOTYPE: "a FIFO",
                    tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device"}.get(info.type, "not a plain file")  # fmt: skip
            raise self.error(name, f"is {kind}; an OCI archive's layout members must be regular files")
        if name in members:
            raise self.error(name, "appears twice in the archive")
        members[name] = (info.offset_data, info.size)

    def _member(self, name: str) -> _Member:
        found = self._members.get(name)
        if found is None:
            raise _Missing(self.where, name, "is missing from the archive")
        return _Member(self._fd, found[0], found[1], owned=False)

    def has(self, name: str) -> bool:
        return name in self._members

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
