"""gunicorn worker of pkgc's azureml_online packages: requests read off the scoring thread, run in the main thread.

The Azure ML inference server starts gunicorn's sync worker: it closes the connection after every
response, and it reads each request in the one thread that also scores, so a client that sends
nothing (or one byte) holds up every other client. gunicorn's gthread worker keeps connections alive
but runs requests in pool threads, where the server's scoring timeout (SIGALRM, main thread only)
silently does nothing.

This worker splits the two jobs:
- reading: an acceptor thread accepts connections (at most gunicorn's `worker_connections`); each
  connection has its own thread that reads one whole request into memory with gunicorn's own HTTP
  parser: the headers within PKGC_HEADER_TIMEOUT_S (default 10) of their first byte (a new
  connection that sends nothing is closed after that long too), the body, at most
  PKGC_MAX_BODY_BYTES (default 100 MiB; more is a 413), within PKGC_BODY_TIMEOUT_S (default 60);
  a late request is a 408. A kept-alive connection waits gunicorn's `keepalive` for its next request.
- scoring: the main thread takes complete requests one at a time and runs the WSGI app on them
  (the scoring timeout intact, one request at a time per worker as with the sync worker); the
  response is collected in memory and the connection's thread writes it back (within
  PKGC_BODY_TIMEOUT_S), so a client that does not read its answer holds up nobody either.

pkgc's entrypoint selects it (GUNICORN_CMD_ARGS="--worker-class pkgc_worker.KeepAliveWorker", with
/opt/pkgc/lib on PYTHONPATH) unless GUNICORN_CMD_ARGS is set or the code folder has its own
gunicorn.conf.py; GUNICORN_CMD_ARGS="--worker-class sync" restores the server's default.
"""

from __future__ import annotations

import io
import os
import queue
import selectors
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from gunicorn import http, util
from gunicorn.http import wsgi
from gunicorn.http.body import Body
from gunicorn.http.errors import NoMoreData
from gunicorn.workers import base

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Limits:
    """How long a client may take and how much it may send; from PKGC_* environment variables."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_body: int = 100 * 2**20

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Limits:
        def number(name: str, default: float, kind: type) -> float:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                value = 0
            if not 0 < value < 10**12:  # NaN and infinity too
                raise ValueError(f"pkgc_worker: {name}='{text[:40]}' is not a positive {kind.__name__}")
            return value

        return cls(number("PKGC_HEADER_TIMEOUT_S", cls.header_timeout, float),
                   number("PKGC_BODY_TIMEOUT_S", cls.body_timeout, float),
                   int(number("PKGC_MAX_BODY_BYTES", cls.max_body, int)))  # fmt: skip


class ClientTimeout(Exception):
    """The client did not send its request in time (a 408 when it had begun one)."""


class BodyTooLarge(Exception):
    """The request body is over PKGC_MAX_BODY_BYTES (a 413)."""


class Reader:
    """The client socket as gunicorn's parser reads it: every recv bounded by the current deadline.

    Waiting for a request, the deadline is the idle limit until the first byte arrives, then the
    header timeout from that byte; reading a body, the body timeout."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.deadline = 0.0
        self.then: float | None = None  # the header timeout, armed by the request's first byte
        self.begun = False

    def await_request(self, idle: float, header_timeout: float) -> None:
        self.deadline, self.then, self.begun = time.monotonic() + idle, header_timeout, False

    def expect_body(self, timeout: float) -> None:
        self.deadline, self.then = time.monotonic() + timeout, None

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ClientTimeout
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            raise ClientTimeout from None
        if data and not self.begun:
            self.begun = True
            if self.then is not None:
                self.deadline, self.then = time.monotonic() + self.then, None
        return data


class Output:
    """Where the main thread's response goes: collected in memory, written by the connection's thread."""

    def __init__(self):
        self.parts: list[bytes] = []

    def sendall(self, data) -> None:
        self.parts.append(bytes(data))

    def send(self, data) -> int:
        # gunicorn sends only the interim "100 Continue" with send(): the connection's thread did already
        return len(data)

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        data = file.read() if count is None else file.read(count)
        self.parts.append(data)
        return len(data)

    def data(self) -> bytes:
        return b"".join(self.parts)


@dataclass
class Job:
    """One complete request, handed from its connection's thread to the main thread and back."""

    req: object
    client: object
    server: object
    done: threading.Event = field(default_factory=threading.Event)
    response: bytes = b""
    keep_alive: bool = False


def header(req, name: str) -> str | None:
    """The value of request header ``name`` (upper case, as gunicorn stores names), or None."""
    return next((value for key, value in req.headers if key == name), None)


class KeepAliveWorker(base.Worker):
    """Reads requests in a thread per connection; runs them, one at a time, in the main thread."""

    def init_process(self):
        self.limits = Limits.from_env(dict(os.environ))
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.slots = threading.BoundedSemaphore(max(1, self.cfg.worker_connections))
        super().init_process()

    def run(self):
        # Helper threads block every signal, so SIGALRM (the scoring timeout) and gunicorn's signals
        # always reach the main thread; the connection threads inherit the acceptor's mask.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            threading.Thread(target=self.accept_loop, name="pkgc-accept", daemon=True).start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            try:
                job = self.jobs.get(timeout=1.0)
            except queue.Empty:
                continue
            self.serve(job)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline:  # what is already read is answered
            try:
                self.serve(self.jobs.get_nowait())
            except queue.Empty:
                break

    # --- the main thread: run the app on a complete request ---

    def serve(self, job: Job) -> None:
        req, out, resp, environ = job.req, Output(), None, {}
        try:
            self.cfg.pre_request(self, req)
            started = datetime.now()
            resp, environ = wsgi.create(req, out, job.client, job.server, self.cfg)
            self.nr += 1
            if self.nr >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(respiter, "close"):
                    respiter.close()
            job.keep_alive = not resp.should_close()
        except Exception as exc:
            job.keep_alive = False
            if resp is not None and resp.headers_sent:
                self.log.exception("Error handling request")  # what was written goes out, then the connection closes
            else:
                out = Output()
                self.handle_error(req, out, job.client, exc)
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")
            job.response = out.data()
            job.done.set()

    # --- the helper threads: accept, read, write back ---

    def accept_loop(self) -> None:
        selector = selectors.DefaultSelector()
        for listener in self.sockets:
            listener.setblocking(False)
            selector.register(listener, selectors.EVENT_READ)
        while self.alive:
            if not self.slots.acquire(timeout=1.0):
                continue  # worker_connections reached: new clients wait in the listen backlog
            accepted = None
            while self.alive and accepted is None:
                for key, _ in selector.select(1.0):
                    try:
                        sock, client = key.fileobj.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                        continue
                    accepted = (sock, client, key.fileobj.getsockname())
                    break
            if accepted is None:
                self.slots.release()
                continue
            threading.Thread(target=self.connection, args=accepted, name="pkgc-conn", daemon=True).start()

    def connection(self, sock: socket.socket, client, server) -> None:
        """Read requests off ``sock`` one by one, have each run, write each response back."""
        reader, req = Reader(sock), None
        try:
            sock.setblocking(True)
            if self.cfg.is_ssl:
                from gunicorn.sock import ssl_wrap_socket

                sock.settimeout(self.limits.header_timeout)
                sock = reader.sock = ssl_wrap_socket(sock, self.cfg)
            parser = http.RequestParser(self.cfg, reader, client)
            idle = self.limits.header_timeout
            while self.alive:
                reader.await_request(idle, self.limits.header_timeout)
                req = next(parser, None)
                if not req:
                    return
                idle = self.cfg.keepalive
                req.body = Body(io.BytesIO(self.read_body(req, reader)))
                job = Job(req, client, server)
                self.jobs.put(job)
                job.done.wait()
                self.write(sock, job.response)
                if not job.keep_alive:
                    return
        except ClientTimeout:
            if reader.begun:
                self.refuse(sock, 408, "Request Timeout", "the request did not arrive in time")
        except BodyTooLarge:
            self.refuse(sock, 413, "Content Too Large", f"the request body is over {self.limits.max_body} bytes")
        except (NoMoreData, StopIteration, OSError):
            pass  # the client went away (or the socket failed): nothing to answer
        except Exception as exc:  # the parser's own errors: invalid request line, headers over the limits ...
            sock.settimeout(self.limits.body_timeout)
            self.handle_error(req, sock, client, exc)
        finally:
            util.close(sock)
            self.slots.release()

    def read_body(self, req, reader: Reader) -> bytes:
        """The whole body, bounded by size and time; "100 Continue" first when the client waits for it."""
        length = header(req, "CONTENT-LENGTH")
        if length is not None and length.isdigit() and int(length) > self.limits.max_body:
            raise BodyTooLarge
        reader.expect_body(self.limits.body_timeout)
        expect = header(req, "EXPECT")
        if expect is not None and expect.lower() == "100-continue" and req.version >= (1, 1):
            self.write(reader.sock, CONTINUE)
        parts, total = [], 0
        while True:
            data = req.body.read(65536)
            if not data:
                return b"".join(parts)
            total += len(data)
            if total > self.limits.max_body:
                raise BodyTooLarge
            parts.append(data)

    def write(self, sock: socket.socket, data: bytes) -> None:
        sock.settimeout(self.limits.body_timeout)  # the whole sendall, since Python 3.5
        sock.sendall(data)

    def refuse(self, sock: socket.socket, status: int, reason: str, message: str) -> None:
        try:
            sock.settimeout(1.0)
            util.write_error(sock, status, reason, message)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
