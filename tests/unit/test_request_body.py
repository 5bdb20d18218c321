"""Request bodies ``pkgc invoke`` sends: JSON files as JSON, other files byte for byte with their content
type, multipart forms (parsed back here with the standard library's MIME parser), and bad input."""

from __future__ import annotations

import email.parser
import email.policy
import os

import pytest

from compiler.errors import SpecError
from compiler.runtime.request_body import BODY_LIMIT, file_body, multipart_body, parse_form

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def parse_multipart(data: bytes, content_type: str) -> list[tuple[str, str | None, str, bytes]]:
    """(name, filename, content type, bytes) of every part, by the standard library's MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + data)  # fmt: skip
    assert message.is_multipart()
    return [(part.get_param("name", header="content-disposition"), part.get_filename(), part.get_content_type(),
             part.get_payload(decode=True)) for part in message.iter_parts()]  # fmt: skip


def test_files_are_sent_as_they_are_with_their_content_type(tmp_path):
    (tmp_path / "req.json").write_text('{"data": [[1, 2]]}')
    (tmp_path / "image.png").write_bytes(PNG)
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tensor.npy").write_bytes(b"\x93NUMPY\x01\x00" + os.urandom(64))
    (tmp_path / "noext").write_text('[1, 2, 3]')
    assert file_body(tmp_path / "req.json").content_type == "application/json"
    png = file_body(tmp_path / "image.png")
    assert png.content_type == "image/png" and png.data == PNG
    assert file_body(tmp_path / "rows.csv").content_type == "text/csv"
    npy = file_body(tmp_path / "tensor.npy")
    assert npy.content_type == "application/octet-stream" and npy.data == (tmp_path / "tensor.npy").read_bytes()
    assert file_body(tmp_path / "noext").content_type == "application/json"  # JSON without a telling name
    given = file_body(tmp_path / "tensor.npy", "application/x-npy")
    assert given.content_type == "application/x-npy" and given.data == npy.data


def test_bad_request_files_are_bad_input(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SpecError, match="broken.json: request file is not valid JSON"):
        file_body(tmp_path / "broken.json")
    with pytest.raises(SpecError, match="missing.bin: request file not found"):
        file_body(tmp_path / "missing.bin")
    with pytest.raises(SpecError, match="is a folder"):
        file_body(tmp_path)
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:  # sparse: no disk used
        fh.truncate(BODY_LIMIT + 1)
    with pytest.raises(SpecError, match="larger than 256 MiB"):
        file_body(big)


def test_a_form_of_files_and_values_parses_back_part_by_part(tmp_path):
    (tmp_path / "image.png").write_bytes(PNG)
    weird = tmp_path / 'we"ird name.bin'
    weird.write_bytes(b"--pkgc-\r\n\r\n" + os.urandom(300))
    (tmp_path / "prompt.txt").write_text("a long\nprompt")
    fields = [parse_form(f"file=@{tmp_path / 'image.png'}"), parse_form("threshold=0.5"), parse_form("note=héllo = x"),
              parse_form(f"raw=@{weird};type=application/x-thing"), parse_form(f"prompt=<{tmp_path / 'prompt.txt'}")]  # fmt: skip
    body = multipart_body(fields)
    assert body.content_type.startswith("multipart/form-data; boundary=pkgc-")
    parts = parse_multipart(body.data, body.content_type)
    assert [(name, filename, kind) for name, filename, kind, _ in parts] == [
        ("file", "image.png", "image/png"), ("threshold", None, "text/plain"), ("note", None, "text/plain"),
        ("raw", "we%22ird name.bin", "application/x-thing"), ("prompt", None, "text/plain")]  # fmt: skip
    assert parts[0][3] == PNG and parts[1][3] == b"0.5" and parts[2][3] == "héllo = x".encode()
    assert parts[3][3] == weird.read_bytes() and parts[4][3] == b"a long\nprompt"


@pytest.mark.parametrize("text, message", [
    ("novalue", "is not NAME=VALUE or NAME=@FILE"),
    ("=x", "is not NAME=VALUE or NAME=@FILE"),
    ('a"b=1', "is not NAME=VALUE or NAME=@FILE"),
    ("f=@/nonexistent/file.png", "file.png: --form file not found"),
    ("f=@x.png;type=not a type", "is not a media type"),
])  # fmt: skip
def test_bad_form_fields_are_bad_input(text, message):
    with pytest.raises(SpecError, match=message):
        parse_form(text)


def test_verify_reads_its_request_and_expect_files_as_json_before_any_engine(tmp_path):
    from tests.conftest import run_pkgc

    (tmp_path / "req.json").write_text('{"data": [1]}')
    (tmp_path / "bad.json").write_text("{")
    cases = [(["--request-file", str(tmp_path / "missing.json")], "missing.json: request file not found"),
             (["--request-file", str(tmp_path / "bad.json")], "bad.json: request file is not valid JSON"),
             (["--request-file", str(tmp_path / "req.json"), "--expect", str(tmp_path / "none.json")], "none.json: expect file not found")]  # fmt: skip
    for args, message in cases:
        proc = run_pkgc("verify", "pkgc/not-built:1", *args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
