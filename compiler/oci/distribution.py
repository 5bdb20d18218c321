"""A small OCI distribution client (standard library only): HEAD, GET and upload blobs, mount a
blob from another repository of the same registry, GET and PUT manifests.

Auth as registries do it: a 401 names a Bearer realm (a token is asked for the scope, anonymously or
with basic credentials) or Basic (the credentials themselves); credentials come from the user's
logins (``compiler.oci.credentials``), looked up on the first 401. Plain HTTP only for loopback hosts.
Every response is read bounded; an answer that breaks the protocol (a wrong digest or size, a body
over its limit, a missing upload location) is a ``RegistryError``: one line naming the registry and
the request (exit 2). Bytes sent and received are counted (``Transfers``) for the build's log and
the fleet bench."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from compiler.errors import PkgcError, excerpt
from compiler.oci.blobs import BlobStore
from compiler.oci.credentials import RegistryLogin
from compiler.oci.reference import is_loopback

MANIFEST_LIMIT = 4 << 20  # what a registry itself accepts for a manifest
SMALL_LIMIT = 64 << 10  # an error body, a token answer
CHUNK = 1 << 20
TIMEOUT = 60.0
MAX_REDIRECTS = 3
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


class RegistryError(PkgcError):
    """A registry answered against the protocol, refused a request, or could not be reached."""

    exit_code = 2


class RegistryUnreachable(PkgcError):
    """A registry that does not answer (a build failure, exit 3: nothing the user wrote is wrong)."""

    exit_code = 3


@dataclass
class Transfers:
    """Bytes moved by one client: blob bodies sent and received, and what was mounted or skipped."""

    sent: int = 0  # blob bytes uploaded
    received: int = 0  # blob bytes downloaded
    events: list[dict] = field(default_factory=list)  # {"op", "registry", "repository", "digest", "bytes"}
    log: Path | None = None  # each event also appended here as one JSON line (pkgc's store: transfers.jsonl)

    def note(self, op: str, registry: str, repository: str, digest: str, size: int) -> None:
        event = {"op": op, "registry": registry, "repository": repository, "digest": digest, "bytes": size, "pid": os.getpid()}
        self.events.append(event)
        if op == "upload":
            self.sent += size
        elif op == "download":
            self.received += size
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "a") as fh:  # one short line: appends of concurrent runs do not interleave
                fh.write(json.dumps(event) + "\n")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class RegistryClient:
    """One registry (``host[:port]``); repositories are named per call."""

    def __init__(self, registry: str, credentials: tuple[str, str] | RegistryLogin | None = None, transfers: Transfers | None = None):
        self.registry = registry
        self.secure = not is_loopback(registry)
        self._login = credentials  # a RegistryLogin is asked on the first 401 only
        self.transfers = transfers if transfers is not None else Transfers()
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._challenge: str | None = None

    # -- requests --------------------------------------------------------------------------------

    def _connection(self, host: str, secure: bool) -> http.client.HTTPConnection:
        if secure:
            return http.client.HTTPSConnection(host, timeout=TIMEOUT)
        return http.client.HTTPConnection(host, timeout=TIMEOUT)

    def _fail(self, method: str, path: str, message: str) -> RegistryError:
        return RegistryError(f"registry {self.registry} ({method} {excerpt(path, 80)}): {message}")

    def _open(self, method: str, url: str, scope: str, headers: dict[str, str], body: bytes | BinaryIO | None,
              length: int | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:  # fmt: skip
        """Send one request (authorised for ``scope`` when a token is held); the open response."""
        parts = urllib.parse.urlsplit(url)
        host, secure = parts.netloc or self.registry, (parts.scheme == "https") if parts.scheme else self.secure
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = dict(headers)
        if scope in self._auth and host == self.registry:
            sent["Authorization"] = self._auth[scope]
        if body is not None:
            sent["Content-Length"] = str(length if length is not None else len(body))  # type: ignore[arg-type]
        elif method in ("PUT", "POST"):
            sent["Content-Length"] = "0"
        conn = self._connection(host, secure)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in sent.items():
                conn.putheader(name, value)
            conn.endheaders()
            if isinstance(body, bytes):
                conn.send(body)
            elif body is not None:
                left = length or 0
                while left > 0:
                    block = body.read(min(CHUNK, left))
                    if not block:
                        raise OSError("the blob file ended early")
                    conn.send(block)
                    left -= len(block)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RegistryUnreachable(f"registry {self.registry} ({method} {excerpt(target, 80)}): {excerpt(str(exc) or type(exc).__name__, 120)}") from None

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                body: bytes | Callable[[], BinaryIO] | None = None, length: int | None = None,
                limit: int = SMALL_LIMIT, sink: Callable[[http.client.HTTPResponse], None] | None = None) -> Response:  # fmt: skip
        """``method`` on ``/v2/<path>``: authorised on a 401 (once), redirects followed for GET/HEAD;
        the body read up to ``limit`` (over it: RegistryError), or handed to ``sink`` on a 200."""
        url = path if path.startswith("http") else f"{'https' if self.secure else 'http'}://{self.registry}/v2/{path}"
        for attempt in range(2 + MAX_REDIRECTS):
            data = body() if callable(body) else body
            try:
                conn, resp = self._open(method, url, scope, headers or {}, data, length)
            finally:
                if data is not None and not isinstance(data, bytes):
                    data.close()
            try:
                status = resp.status
                got = {k.lower(): v for k, v in resp.getheaders()}
                if status == 401 and attempt == 0:
                    _read_bounded(resp, SMALL_LIMIT)
                    self._authorise(got.get("www-authenticate", ""), scope, method, path)
                    continue
                if status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD") and "location" in got:
                    _read_bounded(resp, SMALL_LIMIT)
                    url = urllib.parse.urljoin(url, got["location"])
                    continue
                if status == 200 and sink is not None:
                    sink(resp)
                    return Response(status, got, b"")
                if method == "HEAD":
                    return Response(status, got, b"")
                content = _read_bounded(resp, limit)
                if content is None:
                    raise self._fail(method, path, f"the answer is larger than {limit} bytes")
                return Response(status, got, content)
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryUnreachable(f"registry {self.registry} ({method} {excerpt(path, 80)}): {excerpt(str(exc) or type(exc).__name__, 120)}") from None
            finally:
                conn.close()
        raise self._fail(method, path, "too many redirects or authorisations")

    def _credentials(self) -> tuple[str, str] | None:
        return self._login.get() if isinstance(self._login, RegistryLogin) else self._login

    def _authorise(self, challenge: str, scope: str, method: str, path: str) -> None:
        """Answer a 401's challenge for ``scope``: Basic (credentials) or Bearer (a token)."""
        scheme, _, params = challenge.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if scheme.lower() == "basic":
            credentials = self._credentials()
            if credentials is None:
                raise self._fail(method, path, "the registry asks for credentials: log in to it (docker login, podman login) "
                                 "or set PKGC_REGISTRY_USERNAME/PKGC_REGISTRY_PASSWORD")  # fmt: skip
            self._auth[scope] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            return
        if scheme.lower() != "bearer" or not fields.get("realm", "").startswith(("https://", "http://")):
            raise self._fail(method, path, f"401 with an unusable challenge '{excerpt(challenge, 80)}'")
        query = {"service": fields.get("service", "")} if fields.get("service") else {}
        query_items = list(query.items()) + [("scope", s) for s in scope.split(" ") if s]
        url = fields["realm"] + ("&" if "?" in fields["realm"] else "?") + urllib.parse.urlencode(query_items)
        headers = {}
        if (credentials := self._credentials()) is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        parts = urllib.parse.urlsplit(url)
        conn = self._connection(parts.netloc, parts.scheme == "https")
        try:
            conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            resp = conn.getresponse()
            data = _read_bounded(resp, SMALL_LIMIT)
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryUnreachable(f"registry {self.registry}: token service {excerpt(fields['realm'], 80)}: {excerpt(str(exc), 120)}") from None
        finally:
            conn.close()
        if status != 200 or data is None:
            raise self._fail(method, path, f"the token service answered {status}")
        try:
            answer = json.loads(data)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token or len(token) > SMALL_LIMIT or any(ord(c) < 33 for c in token):
            raise self._fail(method, path, "the token service gave no usable token")
        self._auth[scope] = f"Bearer {token}"

    # -- the distribution API ----------------------------------------------------------------------

    @staticmethod
    def scope(repository: str, actions: str = "pull", also: str | None = None) -> str:
        return f"repository:{repository}:{actions}" + (f" repository:{also}:pull" if also else "")

    def has_blob(self, repository: str, digest: str) -> bool:
        resp = self.request("HEAD", f"{repository}/blobs/{digest}", self.scope(repository))
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise self._fail("HEAD", f"{repository}/blobs/{digest}", f"answered {resp.status}")

    def fetch_blob(self, repository: str, digest: str, size: int, store: BlobStore) -> None:
        """The blob into ``store``: exactly ``size`` bytes with ``digest`` (else RegistryError, nothing stored)."""
        path = f"{repository}/blobs/{digest}"

        def sink(resp: http.client.HTTPResponse) -> None:
            writer = store.writer()
            try:
                left = size
                while left > 0:
                    block = resp.read(min(CHUNK, left))
                    if not block:
                        raise self._fail("GET", path, f"the blob ended {left} bytes short of {size}")
                    writer.write(block)
                    left -= len(block)
                if resp.read(1):
                    raise self._fail("GET", path, f"the blob is longer than its {size} bytes")
                writer.commit(expected=digest)
            except ValueError:
                raise self._fail("GET", path, "the blob's bytes have another digest") from None
            except BaseException:
                writer.abort()
                raise
            self.transfers.note("download", self.registry, repository, digest, size)

        resp = self.request("GET", path, self.scope(repository), sink=sink)
        if resp.status != 200:
            raise self._fail("GET", path, f"answered {resp.status}")

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Mount ``digest`` from ``source`` into ``repository``: None when mounted, else the upload
        location the registry opened instead (the blob must then be uploaded there)."""
        path = f"{repository}/blobs/uploads/?mount={digest}&from={urllib.parse.quote(source, safe='/')}"
        resp = self.request("POST", path, self.scope(repository, "pull,push", source))
        if resp.status == 201:
            self.transfers.note("mount", self.registry, repository, digest, 0)
            return None
        return self._location("POST", path, resp)

    def upload_blob(self, repository: str, digest: str, size: int, open_blob: Callable[[], BinaryIO], location: str | None = None) -> None:
        """Upload a blob in one PUT (to ``location`` when a mount attempt opened one)."""
        scope = self.scope(repository, "pull,push")
        if location is None:
            path = f"{repository}/blobs/uploads/"
            location = self._location("POST", path, self.request("POST", path, scope))
        url = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        resp = self.request("PUT", url, scope, {"Content-Type": "application/octet-stream"}, open_blob, size)
        if resp.status != 201:
            raise self._fail("PUT", f"{repository}/blobs/uploads/", f"refused the blob {digest[:19]} ({resp.status}: {_message(resp.body)})")
        self.transfers.note("upload", self.registry, repository, digest, size)

    def _location(self, method: str, path: str, resp: Response) -> str:
        location = resp.headers.get("location", "")
        if resp.status != 202 or not location:
            raise self._fail(method, path, f"answered {resp.status} without an upload location ({_message(resp.body)})")
        base = f"{'https' if self.secure else 'http'}://{self.registry}/v2/{path}"
        absolute = urllib.parse.urljoin(base, location)
        parts = urllib.parse.urlsplit(absolute)
        if parts.netloc != self.registry:
            raise self._fail(method, path, f"the upload location {excerpt(location, 60)} is on another host")
        return absolute

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        """A manifest's bytes and digest (checked when ``reference`` is a digest); None when absent."""
        path = f"{repository}/manifests/{reference}"
        resp = self.request("GET", path, self.scope(repository), {"Accept": MANIFEST_ACCEPT}, limit=MANIFEST_LIMIT)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._fail("GET", path, f"answered {resp.status} ({_message(resp.body)})")
        digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise self._fail("GET", path, f"the manifest's bytes have the digest {digest[:19]}")
        return resp.body, digest

    def get_small_blob(self, repository: str, digest: str, size: int) -> bytes:
        """A small blob (a config) read whole: exactly ``size`` bytes with ``digest``."""
        path = f"{repository}/blobs/{digest}"
        if size > MANIFEST_LIMIT:
            raise self._fail("GET", path, f"a {size}-byte blob is not read whole")
        resp = self.request("GET", path, self.scope(repository), limit=size)
        if resp.status != 200:
            raise self._fail("GET", path, f"answered {resp.status}")
        if len(resp.body) != size or "sha256:" + hashlib.sha256(resp.body).hexdigest() != digest:
            raise self._fail("GET", path, "the blob's bytes are not the ones its descriptor names")
        return resp.body

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        path = f"{repository}/manifests/{reference}"
        resp = self.request("PUT", path, self.scope(repository, "pull,push"), {"Content-Type": media_type}, data)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if resp.status != 201:
            raise self._fail("PUT", path, f"refused the manifest ({resp.status}: {_message(resp.body)})")
        said = resp.headers.get("docker-content-digest")
        if said is not None and said != digest:
            raise self._fail("PUT", path, f"stored the manifest as {excerpt(said, 80)}, not {digest[:19]}")
        return digest

    def put_blob_bytes(self, repository: str, data: bytes) -> str:
        """A small blob (a config) uploaded unless the repository has it; its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(repository, digest):
            self.upload_blob(repository, digest, len(data), lambda: io.BytesIO(data))
        return digest


def _read_bounded(resp: http.client.HTTPResponse, limit: int) -> bytes | None:
    """At most ``limit`` bytes of the body; None when there is more."""
    data = resp.read(limit + 1)
    return None if len(data) > limit else data


def _message(body: bytes) -> str:
    """The registry's error message (``{"errors": [{"message": ...}]}``), or an excerpt of the body."""
    try:
        errors = json.loads(body).get("errors") or []
        return excerpt("; ".join(str(e.get("code", "")) + " " + str(e.get("message", "")) for e in errors[:3]), 120)
    except (ValueError, AttributeError, TypeError):
        return excerpt(body[:200].decode("utf-8", "replace"), 120)


def open_file(path: Path) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")
