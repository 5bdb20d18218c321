"""``pkgc invoke`` against a real HTTP server on loopback (the standard library's, started here; no
engine): JSON, binary and multipart bodies arrive byte for byte with their content types, the form
parsed by werkzeug as a Flask scoring server (the Azure ML inference server) parses it; a non-200
answer and a closed port exit 4."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.formparser import parse_form_data

from tests.conftest import run_pkgc
from tests.e2e.conftest import free_port

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(70_000)


class Recorder(BaseHTTPRequestHandler):
    """Answers each POST with what it received: the raw body's type and digest, or the parsed form."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        answer: dict = {"path": self.path, "content_type": content_type, "sha256": hashlib.sha256(raw).hexdigest(), "length": len(raw)}
        if content_type.startswith("multipart/form-data"):
            environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)}
            _stream, form, files = parse_form_data(environ)
            answer["form"] = {k: form.getlist(k) for k in form}
            answer["files"] = {k: {"filename": f.filename, "content_type": f.content_type, "sha256": hashlib.sha256(f.read()).hexdigest()}
                               for k, f in files.items()}  # fmt: skip
        status = 418 if self.path == "/teapot" else 200
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def invoke(port: int, *args: str) -> tuple[int, dict | None, str]:
    proc = run_pkgc("invoke", "--port", str(port), "--json", *args)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


def test_json_and_binary_bodies_arrive_byte_for_byte_with_their_types(server, tmp_path):
    (tmp_path / "req.json").write_text('{"data": [[1, 2, 3]]}')
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "tensor.npy").write_bytes(b"\x93NUMPY" + os.urandom(5000))
    cases = [("req.json", [], "application/json"), ("cat.png", [], "image/png"),
             ("tensor.npy", [], "application/octet-stream"), ("tensor.npy", ["--content-type", "application/x-npy"], "application/x-npy")]  # fmt: skip
    for name, extra, content_type in cases:
        code, result, stderr = invoke(server, "--request-file", str(tmp_path / name), *extra)
        assert code == 0, stderr
        got = result["response"]
        assert result["status"] == 200 and got["content_type"] == content_type
        assert got["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_a_multipart_form_reaches_the_server_as_a_flask_app_reads_it(server, tmp_path):
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    code, result, stderr = invoke(server, "--route", "/score", "--form", f"image=@{tmp_path / 'cat.png'}",
                                  "--form", f"table=@{tmp_path / 'rows.csv'};type=text/plain",
                                  "--form", "threshold=0.25", "--form", "label=ünïcode")  # fmt: skip
    assert code == 0, stderr
    got = result["response"]
    assert got["content_type"].startswith("multipart/form-data; boundary=")
    assert got["form"] == {"threshold": ["0.25"], "label": ["ünïcode"]}
    assert got["files"] == {
        "image": {"filename": "cat.png", "content_type": "image/png", "sha256": hashlib.sha256(PNG).hexdigest()},
        "table": {"filename": "rows.csv", "content_type": "text/plain", "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()},
    }  # fmt: skip


def test_a_refusal_and_a_closed_port_exit_4_and_bad_flags_exit_2(server, tmp_path):
    (tmp_path / "req.json").write_text("[1]")
    code, result, stderr = invoke(server, "--route", "/teapot", "--request-file", str(tmp_path / "req.json"))
    assert code == 4 and result["status"] == 418 and "answered HTTP 418" in stderr
    code, _result, stderr = invoke(free_port(), "--form", "a=1")
    assert code == 4 and "is the package running" in stderr
    for args in (["--form", "a=1", "--request-file", str(tmp_path / "req.json")], [],
                 ["--form", "a=1", "--content-type", "text/plain"], ["--form", f"f=@{tmp_path / 'missing.png'}"]):  # fmt: skip
        proc = run_pkgc("invoke", "--port", str(server), *args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
