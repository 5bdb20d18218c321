"""Slow clients on loopback, for the served-package tests: connections that send nothing or one byte
while a probe's latency is measured, and raw requests whose answer (or silence) is read back."""

from __future__ import annotations

import http.client
import socket
import statistics
import time
from contextlib import contextmanager


def timed_request(port: int, path: str, conn: http.client.HTTPConnection | None = None,
                  method: str = "GET", body: bytes | None = None) -> tuple[float, int, bytes]:  # fmt: skip
    """Seconds, status and body of one request (on ``conn`` when given, else a new connection)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        data = response.read()
        return time.monotonic() - started, response.status, data
    finally:
        if own:
            conn.close()


def median_latency(port: int, path: str, n: int = 7, **kwargs) -> float:
    return statistics.median(timed_request(port, path, **kwargs)[0] for _ in range(n))


@contextmanager
def slow_clients(port: int, silent: int = 10, one_byte: int = 1):
    """``silent`` connections that send nothing and ``one_byte`` that send one byte, held open."""
    socks = []
    try:
        for i in range(silent + one_byte):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i >= silent:
                sock.sendall(b"P")
            socks.append(sock)
        time.sleep(0.3)  # accepted by the server, one byte read
        yield socks
    finally:
        for sock in socks:
            sock.close()


def raw_exchange(port: int, data: bytes, wait: float) -> tuple[float, bytes]:
    """Send ``data`` on a new connection, then read until the server closes it (at most ``wait`` s):
    the seconds that took and what came back."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return time.monotonic() - started, received


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")
