"""OCI outputs: ``--output oci:DIR[:TAG]`` (an image-layout directory) and ``oci-archive:FILE[:TAG]``.

The engine's image is copied once into a private staging layout (``docker-daemon:`` -> ``oci:``,
the only step that compresses layers); every output is then copied from that layout, so all outputs
and a push carry the same manifest digest. Each output is first written completely under a
temporary name beside its target (``prepare_output``) and renamed into place only once everything
else succeeded (``commit_output``), so a failed run leaves no half-written layout or archive.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from compiler.errors import BuildError, TargetSyntaxError
from compiler.oci.reference import TAG_RE

OutputKind = Literal["oci", "oci-archive"]
KINDS: tuple[OutputKind, ...] = ("oci", "oci-archive")
USAGE = "expected oci:DIR[:TAG] or oci-archive:FILE[:TAG]"


@dataclass(frozen=True)
class OutputTarget:
    """Where one output goes; ``tag`` (the layout's ``org.opencontainers.image.ref.name``) defaults to the image's."""

    kind: OutputKind
    path: Path
    tag: str | None = None


@dataclass(frozen=True)
class StagedImage:
    """The engine's image as a private OCI layout, the source of every output and push."""

    image: str
    layout: Path
    tag: str
    digest: str
    seconds: float

    @property
    def reference(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


@dataclass(frozen=True)
class EmittedOutput:
    """One written output: where, under which tag, its manifest digest and size."""

    kind: OutputKind
    path: Path
    tag: str
    digest: str
    size_bytes: int
    seconds: float

    def as_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "tag": self.tag, "reference": f"{self.kind}:{self.path}:{self.tag}",
                "digest": self.digest, "size_bytes": self.size_bytes, "seconds": round(self.seconds, 2)}  # fmt: skip


def parse_output(text: str) -> OutputTarget:
    """Parse one ``--output`` value (the path may not contain ':', as in skopeo) and check its target."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        raise TargetSyntaxError(f"--output '{text}': {USAGE}")
    path_text, _, tag = rest.partition(":")
    if not path_text:
        raise TargetSyntaxError(f"--output '{text}': no path; {USAGE}")
    if tag and not TAG_RE.match(tag):
        raise TargetSyntaxError(f"--output '{text}': '{tag}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128)")
    target = OutputTarget(kind, Path(path_text).expanduser().absolute(), tag or None)  # type: ignore[arg-type]
    _check_replaceable(target, text)
    return target


def _check_replaceable(target: OutputTarget, text: str) -> None:
    """Never replace something that is not an output of the same kind."""
    path = target.path
    if target.kind == "oci" and path.exists():
        if not path.is_dir():
            raise TargetSyntaxError(f"--output '{text}': {path} exists and is not a directory")
        if any(path.iterdir()) and not (path / "oci-layout").is_file():
            raise TargetSyntaxError(f"--output '{text}': {path} is not empty and not an OCI layout; refusing to replace it")
    if target.kind == "oci-archive" and path.is_dir():
        raise TargetSyntaxError(f"--output '{text}': {path} is a directory")


def default_tag(image: str) -> str:
    """The tag of ``image`` (``pkgc/name:3`` -> ``3``), else ``latest``."""
    _, sep, tag = image.rpartition(":")
    return tag if sep and "/" not in tag and TAG_RE.match(tag) else "latest"


@dataclass(frozen=True)
class PreparedOutput:
    """An output fully written under a temporary name beside its target, not yet in place."""

    output: EmittedOutput
    written: Path
    scratch: Path


def commit_output(prepared: PreparedOutput) -> EmittedOutput:
    """Rename the prepared output into place (replacing an older one) and remove its temporary folder."""
    path = prepared.output.path
    try:
        if prepared.output.kind == "oci":
            _replace_dir(prepared.written, path, prepared.scratch / "previous")
        else:
            os.replace(prepared.written, path)
    except OSError as exc:
        raise BuildError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        discard_output(prepared)
    return prepared.output


def discard_output(prepared: PreparedOutput) -> None:
    shutil.rmtree(prepared.scratch, ignore_errors=True)


def _replace_dir(new: Path, path: Path, backup: Path) -> None:
    """Rename ``new`` to ``path``; an existing ``path`` is moved aside first and restored on failure."""
    if not path.exists():
        os.rename(new, path)
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        os.rename(new, path)
        return
    os.rename(path, backup)
    try:
        os.rename(new, path)
    except OSError:
        os.rename(backup, path)
        raise
