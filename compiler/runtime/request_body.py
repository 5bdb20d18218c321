"""Request bodies for ``pkgc invoke`` (and the JSON files ``pkgc verify`` sends and compares).

- a JSON file: sent as ``application/json`` (a file named ``*.json`` must parse);
- any other file: sent byte for byte, its content type guessed from its name (``image/png``,
  ``text/csv``; ``application/octet-stream`` when unknown) or given with ``--content-type``;
- ``--form name=@file`` / ``--form name=value`` (as curl's ``-F``): a ``multipart/form-data`` body,
  a file part named by its file name with its guessed type (``name=@file;type=T`` to say it);
  ``name=<file`` sends a file's content as a plain field.

Every file is read up to ``BODY_LIMIT`` bytes; a missing, unreadable or oversized file is bad input."""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import SpecError, SpecProblem, excerpt

BODY_LIMIT = 256 << 20  # a request body held in memory
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=[^\x00-\x1f\x7f]{1,200})*$")
FIELD_NAME = re.compile(r"^[^\x00-\x1f\x7f\"]{1,200}$")


@dataclass(frozen=True)
class Body:
    """What a POST sends: its bytes and their content type."""

    data: bytes
    content_type: str


def content_type_value(text: str) -> str:
    """argparse type: a media type (``image/png``, ``text/csv; charset=utf-8``)."""
    import argparse

    if not CONTENT_TYPE.match(text):
        raise argparse.ArgumentTypeError(f"'{excerpt(text, 60)}' is not a media type such as image/png")
    return text


def read_file(path: Path, what: str = "request file") -> bytes:
    """The bytes of a request file, at most BODY_LIMIT; bad input (exit 2) naming it when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(BODY_LIMIT + 1)
    except FileNotFoundError:
        raise SpecError(SpecProblem(path, "", f"{what} not found")) from None
    except IsADirectoryError:
        raise SpecError(SpecProblem(path, "", f"{what} is a folder, not a file")) from None
    except OSError as exc:
        raise SpecError(SpecProblem(path, "", f"{what} cannot be read ({exc.strerror or exc})")) from None
    if len(data) > BODY_LIMIT:
        raise SpecError(SpecProblem(path, "", f"{what} is larger than {BODY_LIMIT >> 20} MiB"))
    return data


def json_file(path: Path, what: str = "request file") -> bytes:
    """A JSON request (or expect) file's bytes, checked to parse."""
    data = read_file(path, what)
    try:
        json.loads(data)
    except ValueError as exc:
        raise SpecError(SpecProblem(path, "", f"{what} is not valid JSON: {excerpt(str(exc), 120)}")) from None
    return data


def guess_type(path: Path) -> str | None:
    """The media type a file's name suggests, or None."""
    guessed, encoding = mimetypes.guess_type(path.name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    return guessed


def file_body(path: Path, content_type: str | None = None) -> Body:
    """The body for ``--request-file``: JSON as JSON, anything else as it is with its content type."""
    if content_type is not None:
        return Body(read_file(path), content_type)
    guessed = guess_type(path)
    if guessed == JSON:
        return Body(json_file(path), JSON)
    data = read_file(path)
    if guessed is None:
        try:
            json.loads(data)
            return Body(data, JSON)  # a JSON file without a telling name
        except ValueError:
            return Body(data, OCTET_STREAM)
    return Body(data, guessed)


@dataclass(frozen=True)
class FormField:
    """One ``--form`` part: a text value, or a file's bytes with its file name and type."""

    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


def parse_form(text: str, base: Path = Path(".")) -> FormField:
    """``name=value``, ``name=@file``, ``name=@file;type=T`` or ``name=<file`` (curl's -F), the file read now."""
    name, sep, value = text.partition("=")
    if not sep or not FIELD_NAME.match(name):
        raise SpecError(SpecProblem("--form", "", f"'{excerpt(text, 60)}' is not NAME=VALUE or NAME=@FILE"))
    if value.startswith("<"):  # curl's NAME=<FILE: the file's content as a text field
        return FormField(name, read_file(base / value[1:], "--form file"))
    if not value.startswith("@"):
        return FormField(name, value.encode("utf-8", "surrogateescape"))
    file_part, _, given_type = value[1:].partition(";type=")
    if given_type and not CONTENT_TYPE.match(given_type):
        raise SpecError(SpecProblem("--form", "", f"'{excerpt(given_type, 60)}' in '{excerpt(text, 60)}' is not a media type"))
    path = base / file_part
    data = read_file(path, "--form file")
    return FormField(name, data, path.name, given_type or guess_type(path) or OCTET_STREAM)


def _quoted(text: str) -> str:
    """A name or file name inside a Content-Disposition header's quotes (as browsers escape them)."""
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(fields: list[FormField]) -> Body:
    """A ``multipart/form-data`` body (RFC 7578) of ``fields``, with a boundary found in none of them."""
    boundary = "pkgc-" + secrets.token_hex(16)
    while any(boundary.encode() in field.value for field in fields):
        boundary = "pkgc-" + secrets.token_hex(16)
    parts = []
    for field in fields:
        disposition = f'form-data; name="{_quoted(field.name)}"'
        headers = [f"Content-Disposition: {disposition}"]
        if field.filename is not None:
            headers[0] += f'; filename="{_quoted(field.filename)}"'
            headers.append(f"Content-Type: {field.content_type or OCTET_STREAM}")
        head = "\r\n".join(headers).encode("utf-8", "surrogateescape")
        parts.append(b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + field.value + b"\r\n")
    data = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
    if len(data) > BODY_LIMIT:
        raise SpecError(SpecProblem("--form", "", f"the form is larger than {BODY_LIMIT >> 20} MiB"))
    return Body(data, f"multipart/form-data; boundary={boundary}")
