"""pkgc's gunicorn worker under slow clients, run by the real gunicorn on loopback as pkgc's entrypoint
starts it: silent and one-byte connections hold up no request, a slow request is cut off by its
header or body timeout (408), an oversized body is refused (413), connections stay alive, and the
scoring timeout (SIGALRM in the main thread) still fires while slow clients wait."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys

import gunicorn  # noqa: F401 - a test dependency: the worker runs under the real gunicorn
import pytest

from compiler.resources import templates_dir
from tests.slow_clients import free_port, median_latency, raw_exchange, slow_clients, timed_request, wait_listening

APP = """\
import signal, threading, time

def app(environ, start_response):
    def alarm(signum, frame):
        raise TimeoutError
    signal.signal(signal.SIGALRM, alarm)  # raises ValueError outside the main thread
    signal.setitimer(signal.ITIMER_REAL, 0.3)  # the Azure ML server's scoring timeout, in small
    try:
        body = environ["wsgi.input"].read()
        if environ["PATH_INFO"] == "/slow":
            time.sleep(5)
        if environ["PATH_INFO"] == "/echo":
            answer = b"%d" % len(body)
        else:
            answer = b"main" if threading.current_thread() is threading.main_thread() else b"pool"
    except TimeoutError:
        answer = b"timeout"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]
"""
LIMITS = {"PKGC_HEADER_TIMEOUT_S": "2", "PKGC_BODY_TIMEOUT_S": "2", "PKGC_MAX_BODY_BYTES": "100000"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn serving APP with pkgc's worker (one worker, keep-alive 5 s), with small limits."""
    folder = tmp_path_factory.mktemp("worker")
    (folder / "app.py").write_text(APP)
    env = dict(os.environ, GUNICORN_CMD_ARGS="--worker-class pkgc_worker.KeepAliveWorker",
               PYTHONPATH=str(templates_dir() / "runtime"), **LIMITS)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--keep-alive", "5", "app:app"],
                            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_listening(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_silent_and_one_byte_connections_delay_a_probe_by_under_100_ms(server):
    baseline = median_latency(server, "/")
    kept = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    assert timed_request(server, "/", conn=kept)[1:] == (200, b"main")
    with slow_clients(server, silent=10, one_byte=1):
        fresh = [timed_request(server, "/") for _ in range(5)]
        again = [timed_request(server, "/", conn=kept) for _ in range(5)]
        slow = timed_request(server, "/slow")  # scoring goes on, and its timeout fires
    assert {(status, body) for _, status, body in fresh + again} == {(200, b"main")}
    worst = max(seconds for seconds, _, _ in fresh + again)
    print(f"\nprobe: {baseline * 1000:.1f} ms alone, at most {worst * 1000:.1f} ms beside 10 silent + 1 one-byte connections")
    assert worst - baseline < 0.1
    assert slow[1:] == (200, b"timeout") and slow[0] < 2


def test_a_kept_alive_connection_serves_request_after_request(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    answers = [timed_request(server, "/", conn=conn)[1:] for _ in range(3)]
    sock = conn.sock
    assert answers == [(200, b"main")] * 3
    assert timed_request(server, "/echo", conn=conn, method="POST", body=b"x" * 5000)[1:] == (200, b"5000")
    assert timed_request(server, "/slow", conn=conn)[1:] == (200, b"timeout")
    assert conn.sock is sock  # one connection throughout, the timed-out request included


def test_a_request_whose_headers_stall_gets_408_after_the_header_timeout(server):
    seconds, answer = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n", wait=10)
    assert answer.startswith(b"HTTP/1.1 408 ") and 1.8 < seconds < 5


def test_a_body_that_stalls_gets_408_after_the_body_timeout(server):
    seconds, answer = raw_exchange(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", wait=10)
    assert answer.startswith(b"HTTP/1.1 408 ") and 1.8 < seconds < 5


def test_a_silent_connection_is_closed_unanswered_after_the_header_timeout(server):
    seconds, answer = raw_exchange(server, b"", wait=10)
    assert answer == b"" and 1.8 < seconds < 5


def test_a_body_over_the_limit_is_refused_with_413_unread(server):
    seconds, answer = raw_exchange(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100001\r\n\r\n", wait=10)
    assert answer.startswith(b"HTTP/1.1 413 ") and seconds < 1
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"  # 64 KiB: the second one is over the limit
    chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2 + b"0\r\n\r\n"
    seconds, answer = raw_exchange(server, chunked, wait=10)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_pipelined_requests_and_expect_100_continue(server):
    two = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    _, answer = raw_exchange(server, two, wait=10)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.endswith(b"main")
    _, answer = raw_exchange(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", wait=3)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client may now send its body


def test_bad_limits_stop_the_worker_with_a_message(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    env = dict(os.environ, GUNICORN_CMD_ARGS="--worker-class pkgc_worker.KeepAliveWorker",
               PYTHONPATH=str(templates_dir() / "runtime"), PKGC_BODY_TIMEOUT_S="soon")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{free_port()}", "-w", "1", "app:app"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode != 0 and "PKGC_BODY_TIMEOUT_S='soon' is not a positive float" in proc.stderr
