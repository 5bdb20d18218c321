"""A small OCI distribution server on loopback for unit tests: blobs and manifests in memory, cross-
repository mounts, optional Bearer token auth (its own token endpoint), and ``hostile`` answers a
test installs for a path (status, headers, body) to see how a client copes with a broken registry."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Registry:
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (repository, digest) -> bytes
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)  # (repository, ref) -> (bytes, type)
    uploads: dict[str, str] = field(default_factory=dict)  # upload id -> repository
    token: str | None = None  # when set: Bearer auth, this token from /token
    hostile: dict[str, tuple[int, dict, bytes]] = field(default_factory=dict)  # "METHOD /v2/path" regex -> answer
    requests: list[str] = field(default_factory=list)
    received: int = 0  # blob bytes PUT
    host: str = ""

    def repositories_with(self, digest: str) -> set[str]:
        return {repo for repo, d in self.blobs if d == digest}


def _handler(registry: Registry):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, headers: dict | None = None, body: bytes = b"") -> None:
            self.send_response(status)
            headers = dict(headers or {})
            headers.setdefault("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self) -> None:
            line = f"{self.command} {self.path}"
            registry.requests.append(line)
            body = self._body() if self.command in ("PUT", "POST") else b""
            for pattern, answer in registry.hostile.items():
                if re.match(pattern, line):
                    return self._send(*answer)
            parts = urlsplit(self.path)
            if parts.path == "/token":
                return self._send(200, {"Content-Type": "application/json"}, json.dumps({"token": registry.token}).encode())
            if registry.token is not None and self.headers.get("Authorization") != f"Bearer {registry.token}":
                challenge = f'Bearer realm="http://{registry.host}/token",service="memory"'
                return self._send(401, {"WWW-Authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            if parts.path == "/v2/":
                return self._send(200, body=b"{}")
            query = parse_qs(parts.query)
            found = re.match(r"^/v2/(.+)/(blobs|manifests)/(uploads/?|[^/]+)(?:/([^/]+))?$", parts.path)
            if not found:
                return self._send(404)
            repo, kind, ref, upload = found.groups()
            if kind == "blobs" and ref.startswith("uploads"):
                return self._upload(repo, upload, query, body)
            if kind == "blobs":
                data = registry.blobs.get((repo, ref))
                if data is None:
                    return self._send(404, body=b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
                return self._send(200, {"Content-Length": str(len(data))}, data)
            if self.command == "PUT":
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                item = (body, self.headers.get("Content-Type", ""))
                registry.manifests[(repo, ref)] = registry.manifests[(repo, digest)] = item
                return self._send(201, {"Docker-Content-Digest": digest})
            item = registry.manifests.get((repo, ref))
            if item is None:
                return self._send(404, body=b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            return self._send(200, {"Content-Type": item[1]}, item[0])

        def _upload(self, repo: str, upload: str | None, query: dict, body: bytes) -> None:
            if self.command == "POST":
                mount, source = query.get("mount", [None])[0], query.get("from", [None])[0]
                if mount and source and (source, mount) in registry.blobs:
                    registry.blobs[(repo, mount)] = registry.blobs[(source, mount)]
                    return self._send(201, {"Location": f"/v2/{repo}/blobs/{mount}"})
                upload_id = uuid.uuid4().hex
                registry.uploads[upload_id] = repo
                return self._send(202, {"Location": f"/v2/{repo}/blobs/uploads/{upload_id}?state=x"})
            if self.command == "PUT" and upload in registry.uploads:
                digest = query.get("digest", [""])[0]
                if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
                    return self._send(400, body=b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                registry.blobs[(repo, digest)] = body
                registry.received += len(body)
                return self._send(201, {"Location": f"/v2/{repo}/blobs/{digest}"})
            return self._send(404)

        do_GET = do_HEAD = do_PUT = do_POST = _route

    return Handler


class MemoryRegistry:
    """``with MemoryRegistry() as reg:`` a running server; ``reg.state`` is what it holds."""

    def __init__(self, token: str | None = None):
        self.state = Registry(token=token)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.host = self.state.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "MemoryRegistry":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
