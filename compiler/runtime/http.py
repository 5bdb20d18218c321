"""Small HTTP client for probing and invoking a package on loopback (standard library only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from compiler.errors import VerifyError


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(url: str, data: bytes | None = None, timeout: float = 30.0, content_type: str = "application/json") -> Response:
    """GET (or POST ``data``, JSON unless ``content_type`` says otherwise) ``url``; HTTP errors are responses, not exceptions."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", content_type)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read())


def wait_ready(url: str, timeout: float, still_running: Callable[[], bool]) -> float:
    """Poll ``url`` until it answers 200; return the seconds waited. Fails early if the server died."""
    started = time.monotonic()
    while True:
        try:
            if request(url, timeout=2.0).status == 200:
                return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if not still_running():
            raise VerifyError(f"the package stopped before {url} answered")
        if time.monotonic() - started > timeout:
            raise VerifyError(f"{url} did not answer 200 within {timeout:.0f} s")
        time.sleep(0.25)
