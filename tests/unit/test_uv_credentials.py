"""Index credentials never reach uv's command line (``ps``, ``/proc/PID/cmdline``): pip's settings go
to uv through its environment. Checked on the command built, and on a real ``uv pip compile`` against
an index on loopback that demands the credentials, whose handler reads the running uv's cmdline."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.errors import LockError

from compiler.lock.uv_resolve import PipSettings, UvUnavailable, resolve_with_uv, uv_binary

USER, SECRET = "ci-user", "s3cr3t-token-4711"


def _wheel(name: str, version: str) -> bytes:
    """A real, minimal pure-Python wheel."""
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
                     for path, data in files.items())  # fmt: skip
    files[f"{name}-{version}.dist-info/RECORD"] = (record + f"{name}-{version}.dist-info/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def _uv_command_lines() -> list[bytes]:
    """The command lines of every running ``uv pip compile``, as ``ps`` shows them to anyone."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if b"pip\0compile\0" in cmdline:
            found.append(cmdline)
    return found


class _Index(BaseHTTPRequestHandler):
    """A PEP 503 index of one wheel that answers only with the right basic credentials; each request
    records the command lines of the uv processes running at that moment."""

    wheel = _wheel("pkgc_demo_alpha", "1.0")
    filename = "pkgc_demo_alpha-1.0-py3-none-any.whl"
    seen: list[bytes] = []
    authorized: list[str] = []

    def do_HEAD(self):  # noqa: N802 - http.server's name
        self._answer(body_too=False)

    def do_GET(self):  # noqa: N802
        self._answer(body_too=True)

    def _answer(self, body_too: bool) -> None:
        type(self).seen.extend(_uv_command_lines())
        expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        type(self).authorized.append(self.path)
        if self.path.rstrip("/") == "/simple/pkgc-demo-alpha":
            digest = hashlib.sha256(self.wheel).hexdigest()
            body = f'<html><body><a href="/files/{self.filename}#sha256={digest}">{self.filename}</a></body></html>'.encode()
            kind = "text/html"
        elif self.path == f"/files/{self.filename}":
            body, kind = self.wheel, "application/octet-stream"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_too:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def index():
    _Index.seen, _Index.authorized = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_places_that_may_hold_credentials_go_to_the_environment_not_the_command_line(tmp_path):
    links = tmp_path / "wheels,2024"
    settings = PipSettings.parse(
        f"global.index-url='https://{USER}:{SECRET}@mirror.example/simple'\n"
        f"global.extra-index-url='https://{USER}:{SECRET}@a.example/simple https://b.example/simple'\n"
        f"global.find-links='https://{USER}:{SECRET}@links.example/wheels {links}'\n"
        f"global.constraint='https://{USER}:{SECRET}@c.example/constraints.txt'\n"
        "install.trusted-host='mirror.example a.example'\n"
    )
    assert settings.uv_args() == ["--native-tls"]
    env = settings.uv_env({"PATH": "/bin", "UV_INDEX_URL": "https://elsewhere", "UV_EXTRA_INDEX_URL": "https://x"})
    assert env == {
        "PATH": "/bin",
        "UV_INDEX_URL": f"https://{USER}:{SECRET}@mirror.example/simple",
        "UV_EXTRA_INDEX_URL": f"https://{USER}:{SECRET}@a.example/simple https://b.example/simple",
        "UV_FIND_LINKS": f"https://{USER}:{SECRET}@links.example/wheels,{links.as_uri()}",  # uv splits at ','
        "UV_CONSTRAINT": f"https://{USER}:{SECRET}@c.example/constraints.txt",
        "UV_INSECURE_HOST": "mirror.example a.example",
    }
    assert "%2C" in links.as_uri()


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
def test_a_real_uv_resolve_authenticates_from_its_environment_and_shows_no_secret(index, tmp_path):
    settings = PipSettings.parse(f":env:.index-url='http://{USER}:{SECRET}@{index}/simple'\n")
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    packages = resolve_with_uv(["pkgc-demo-alpha"], "3.11", 28, settings, environ)
    assert [(p.name, p.version, p.filename) for p in packages] == [("pkgc-demo-alpha", "1.0", _Index.filename)]
    assert packages[0].sha256 == hashlib.sha256(_Index.wheel).hexdigest()
    assert SECRET not in packages[0].url and USER not in packages[0].url  # nor in the lock
    assert "/simple/pkgc-demo-alpha/" in _Index.authorized  # uv sent the credentials from its environment
    assert _Index.seen, "no uv process was running while the index answered"
    for cmdline in _Index.seen:
        assert SECRET.encode() not in cmdline and USER.encode() not in cmdline, cmdline


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
def test_a_refused_login_names_no_secret(index, tmp_path):
    settings = PipSettings.parse(f":env:.index-url='http://{USER}:wrong-{SECRET}@{index}/simple'\n")
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    with pytest.raises((UvUnavailable, LockError)) as caught:  # uv may prove it unsatisfiable (exit 2) or not
        resolve_with_uv(["pkgc-demo-alpha"], "3.11", 28, settings, environ)
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert _Index.seen and all(SECRET.encode() not in cmdline for cmdline in _Index.seen)
