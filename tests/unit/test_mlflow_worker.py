"""pkgc's gunicorn worker for MLflow packages, run by the real gunicorn with the generated config:
connections stay open between requests, requests run in the main thread (where the Azure ML server's
SIGALRM scoring timeout works), and an idle kept-alive connection holds up no other client."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time

import pytest

from compiler.mlflow.mlmodel import MLflowModel
from compiler.mlflow.scoring import generated_files
from compiler.resources import templates_dir

APP = """\
import signal, threading

def app(environ, start_response):
    def alarm(signum, frame):
        raise TimeoutError
    signal.signal(signal.SIGALRM, alarm)  # raises ValueError outside the main thread
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        if environ["PATH_INFO"] == "/slow":
            threading.Event().wait(5)
        body = b"main" if threading.current_thread() is threading.main_thread() else b"pool"
    except TimeoutError:
        body = b"timeout"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture
def server(tmp_path):
    """gunicorn serving APP from a folder holding the generated scoring files, as the Azure ML server
    starts it: from that folder, with its own settings on the command line."""
    pytest.importorskip("gunicorn")
    model = MLflowModel(tmp_path, ("python_function",), "mlflow.sklearn", "3.11.7", None, None, None, None, "3.17.2")
    for name, data in generated_files(model, "model").items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "app.py").write_text(APP)
    # as pkgc's entrypoint starts the server: the worker from /opt/pkgc/lib (here, the template folder)
    env = dict(os.environ, GUNICORN_CMD_ARGS="--worker-class pkgc_worker.KeepAliveWorker", PYTHONPATH=str(templates_dir() / "runtime"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "app:app"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def get(conn: http.client.HTTPConnection, path: str = "/") -> tuple[bytes, bool]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.read(), response.will_close


def test_connection_kept_requests_in_main_thread_timeout_works(server):
    first = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    assert [get(first) for _ in range(3)] == [(b"main", False)] * 3
    sock = first.sock
    assert get(first, "/slow") == (b"timeout", False)  # SIGALRM fired: the timeout works
    assert first.sock is sock  # one connection throughout
    other = http.client.HTTPConnection("127.0.0.1", server, timeout=3)
    assert get(other) == (b"main", False)  # the idle kept-alive connection holds nobody up
    assert get(first) == (b"main", False)
