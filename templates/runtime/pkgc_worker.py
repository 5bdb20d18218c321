"""gunicorn worker of pkgc's azureml_online packages: kept-alive connections, each request in the main thread.

The Azure ML inference server starts gunicorn's sync worker, which closes the connection after every
response: each request pays a new TCP connection (and, behind `docker run -p`, a new proxied one).
gunicorn's gthread worker keeps connections alive but runs requests in pool threads, where the
server's scoring timeout (SIGALRM, main thread only) silently does nothing. This worker is gthread
with its pool replaced by an executor that runs each request at once, in the main thread: one request
at a time per worker as with the sync worker, the scoring timeout intact, and idle kept-alive
connections waiting in gunicorn's poller without holding up other clients.

pkgc's entrypoint selects it (GUNICORN_CMD_ARGS="--worker-class pkgc_worker.KeepAliveWorker", with
/opt/pkgc/lib on PYTHONPATH) unless GUNICORN_CMD_ARGS is set or the code folder has its own
gunicorn.conf.py; GUNICORN_CMD_ARGS="--worker-class sync" restores the server's default.
"""

from concurrent.futures import Executor, Future

from gunicorn.workers.gthread import ThreadWorker


class InlineExecutor(Executor):
    """An executor that runs each call at once in the calling thread and returns its done future."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # SystemExit (gunicorn's worker abort) and the like go on up, as in the sync worker
            future.set_exception(exc)
        return future


class KeepAliveWorker(ThreadWorker):
    """gunicorn's gthread worker (keep-alive, poller) running every request in its main thread."""

    def get_thread_pool(self):
        return InlineExecutor()
