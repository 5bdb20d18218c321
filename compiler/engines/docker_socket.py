"""The few Docker Engine API calls a build makes (ping, inspect, list, load, tag), spoken over the
engine's unix socket with the standard library's HTTP client.

The Docker SDK (with requests and urllib3: about 0.1 s to import, and one ``/version`` round trip
to pick its API version) stays for everything else (containers, builds, save); a build that only
loads an OCI-built image into a local engine never imports it. Paths carry no API version: the engine
answers in its own, as the SDK's ``auto`` does. Every body read is bounded."""

from __future__ import annotations

import codecs
import http.client
import json
import socket
import urllib.parse
from typing import BinaryIO, Iterable, Iterator

from compiler.errors import BuildError, excerpt

MAX_JSON_BYTES = 64 << 20  # an inspect or list answer; a list of thousands of images stays well below
MAX_MESSAGE_BYTES = 1 << 20  # one progress message of a load


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout, blocksize=1 << 20)  # a multi-GB archive in 1 MiB sends
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class SocketApi:
    """A Docker-compatible engine at a unix socket; one connection per call (the engine keeps none)."""

    def __init__(self, path: str, timeout: float):
        self.path, self.timeout = path, timeout

    def _call(self, method: str, path: str, params: dict | None = None, body=None, headers: dict | None = None,
              timeout: float | None = None) -> tuple[_UnixConnection, http.client.HTTPResponse]:  # fmt: skip
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        connection = _UnixConnection(self.path, timeout or self.timeout)
        try:
            connection.request(method, url, body=body, headers=headers or {})
            return connection, connection.getresponse()
        except BaseException:
            connection.close()
            raise

    def _json(self, method: str, path: str, params: dict | None = None, timeout: float | None = None) -> tuple[int, object]:
        connection, response = self._call(method, path, params, timeout=timeout)
        try:
            data = response.read(MAX_JSON_BYTES + 1)
        finally:
            connection.close()
        if len(data) > MAX_JSON_BYTES:
            raise BuildError(f"the engine's answer to {method} {path} is larger than {MAX_JSON_BYTES} bytes")
        try:
            return response.status, json.loads(data) if data.strip() else None
        except ValueError:
            return response.status, data.decode("utf-8", "replace")

    @staticmethod
    def _refused(what: str, status: int, answer: object) -> BuildError:
        message = answer.get("message") if isinstance(answer, dict) else answer
        return BuildError(f"the engine refused {what} ({status}): {excerpt(str(message or ''), 200)}")

    def ping(self, timeout: float) -> None:
        status, answer = self._json("GET", "/_ping", timeout=timeout)
        if status != 200:
            raise self._refused("a ping", status, answer)

    def inspect_image(self, ref: str) -> dict | None:
        """The engine's inspect of image ``ref``; None when it has none (404) or ``ref`` is not an
        engine reference (400; or a redirect to the cleaned path: ``docker://...`` has a ``//``)."""
        status, answer = self._json("GET", f"/images/{urllib.parse.quote(ref, safe='/:')}/json")
        if status in (301, 307, 308, 400, 404):
            return None
        if status != 200 or not isinstance(answer, dict):
            raise self._refused(f"to inspect {excerpt(ref)}", status, answer)
        return answer

    def image_ids(self, repository: str) -> list[str]:
        """Ids of the engine's images tagged in ``repository``, in the engine's order."""
        status, answer = self._json("GET", "/images/json", {"filters": json.dumps({"reference": [repository]})})
        if status != 200 or not isinstance(answer, list):
            raise self._refused(f"to list {excerpt(repository)}", status, answer)
        return [image["Id"] for image in answer if isinstance(image, dict) and isinstance(image.get("Id"), str)]

    def tag(self, image: str, repository: str, tag: str) -> None:
        path = f"/images/{urllib.parse.quote(image, safe='/:')}/tag"
        status, answer = self._json("POST", path, {"repo": repository, "tag": tag})
        if status not in (200, 201):
            raise self._refused(f"to tag {excerpt(image)} as {excerpt(repository)}:{excerpt(tag)}", status, answer)

    def load(self, archive: BinaryIO | Iterable[bytes], size: int | None) -> Iterator[dict]:
        """``docker load`` of a docker-archive: ``size`` bytes read from the file ``archive``, or, with
        ``size`` None, the blocks ``archive`` yields, sent chunked as they come. The engine's progress
        messages as they come (it reports each layer as it applies it, so a multi-GB layer never leaves
        the connection silent past the read timeout)."""
        headers = {"Content-Type": "application/x-tar"} | ({"Content-Length": str(size)} if size is not None else {})
        connection, response = self._call("POST", "/images/load", {"quiet": "0"}, body=archive, headers=headers)
        try:
            if response.status != 200:
                data = response.read(MAX_MESSAGE_BYTES)
                try:
                    answer = json.loads(data)
                except ValueError:
                    answer = data.decode("utf-8", "replace")
                raise self._refused("the image", response.status, answer)
            yield from _messages(response)
        finally:
            connection.close()


def _messages(response: http.client.HTTPResponse) -> Iterator[dict]:
    """The JSON objects of a streamed answer, one after the other (whitespace between them)."""
    decoder, text, buffer = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")("replace"), ""
    while block := response.read1(1 << 16):
        buffer += text.decode(block)
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                message, end = decoder.raw_decode(buffer)
            except ValueError:
                if len(buffer) > MAX_MESSAGE_BYTES:
                    raise BuildError(f"the engine sent a load message larger than {MAX_MESSAGE_BYTES} bytes") from None
                break  # the rest of this message is still coming
            buffer = buffer[end:]
            if isinstance(message, dict):
                yield message
