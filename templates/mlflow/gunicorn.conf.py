# Read by gunicorn from its working folder (this one) when the Azure ML inference server starts it:
# pkgc's worker keeps connections alive and runs requests in the main thread (see pkgc_worker.py).
# The server's own command-line settings (bind, workers, timeout, logs) still apply on top of this.
worker_class = "pkgc_worker.KeepAliveWorker"
