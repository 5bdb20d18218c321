"""pkgc batch driver: run an Azure ML batch scoring script over a folder of files, as a job.

    python pkgc_batch.py --input DIR --output DIR [--mini-batch-size N]
        [--output-action append_row|summary_only] [--output-file-name NAME] [--max-retries N]
        [--timeout SECONDS] [--error-threshold N] [--max-concurrency N] [--logging-level LEVEL]

As Azure ML batch deployments do: each worker process calls ``init()`` once, then ``run(mini_batch)``
with lists of ``--mini-batch-size`` file paths (the input folder's files, recursively, in sorted
order). ``run`` returns a pandas DataFrame or a list with one element per result. ``append_row``
writes every result, in input order, to ``--output-file-name`` (default ``predictions.csv``) in the
output folder: a DataFrame's rows as CSV without header or index, a list's elements one per line.
``summary_only`` writes no result file. Either way a one-line summary goes to stderr.

Failures, as Azure ML's ``retry_settings`` and ``error_threshold`` define them:

- a mini-batch whose ``run()`` raises, whose worker dies, or that runs longer than ``--timeout``
  seconds (the worker is killed and a new one started, calling ``init()`` again) fails that attempt;
  it is tried again up to ``--max-retries`` times;
- a mini-batch that fails every attempt fails its files: they are left out of the output and named
  on stderr. ``--error-threshold N`` is the number of failed files the job tolerates (-1: any
  number); one more stops the job (exit 1, no output file);
- ``--max-concurrency N`` mini-batches run at once, in N worker processes.

Every default can be baked into the image as ``PKGC_BATCH_<FLAG>`` variables (a batch deployment's
``settings`` become them); a flag given to the job wins. The output file appears only when the job
succeeds (written to a temporary name, then renamed). Exit codes: 0 success (tolerated failures
included), 1 ``init()`` failed or the error threshold was passed, 2 bad arguments. Standard library
only: it runs with whatever Python the package's environment has.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import multiprocessing
import os
import sys
import time
import traceback
from multiprocessing.connection import wait

ACTIONS = ("append_row", "summary_only")
LEVELS = ("debug", "info", "warning", "error", "critical")
ENV_PREFIX = "PKGC_BATCH_"
# flag -> (type, built-in default); the built-in defaults keep a package spec's job strict: no
# retries, no timeout, the first failed file stops it. A batch deployment's settings replace them.
OPTIONS = {
    "mini_batch_size": (int, 10),
    "output_action": (str, "append_row"),
    "output_file_name": (str, "predictions.csv"),
    "max_retries": (int, 0),
    "timeout": (float, 0.0),
    "error_threshold": (int, 0),
    "max_concurrency": (int, 1),
    "logging_level": (str, "info"),
}


class BadArgument(ValueError):
    """A flag or PKGC_BATCH_ variable the job cannot run with."""


def _default(name: str):
    kind, value = OPTIONS[name]
    variable = ENV_PREFIX + name.upper()
    text = os.environ.get(variable)
    if text is None or text == "":
        return value
    try:
        return kind(text)
    except ValueError:
        raise BadArgument(f"{variable}={text!r} is not a valid {kind.__name__}") from None


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pkgc-batch", description="run the package's batch scoring script over files")
    parser.add_argument("--input", required=True, help="folder of input files (read recursively)")
    parser.add_argument("--output", required=True, help="folder for the output file")
    try:
        defaults = {name: _default(name) for name in OPTIONS}
    except BadArgument as exc:
        parser.error(str(exc))
    parser.add_argument("--mini-batch-size", type=int, default=defaults["mini_batch_size"], help="files per run() call")
    parser.add_argument("--output-action", default=defaults["output_action"], help="append_row or summary_only")
    parser.add_argument("--output-file-name", default=defaults["output_file_name"])
    parser.add_argument("--max-retries", type=int, default=defaults["max_retries"], help="tries after a failed one")
    parser.add_argument("--timeout", type=float, default=defaults["timeout"], help="seconds per mini-batch (0: none)")
    parser.add_argument("--error-threshold", type=int, default=defaults["error_threshold"], help="failed files tolerated (-1: all)")
    parser.add_argument("--max-concurrency", type=int, default=defaults["max_concurrency"], help="worker processes")
    parser.add_argument("--logging-level", default=defaults["logging_level"], help=f"one of {', '.join(LEVELS)}")
    args = parser.parse_args(argv)
    args.output_action = args.output_action.lower()
    args.logging_level = args.logging_level.lower()
    problems = [
        (args.mini_batch_size < 1, "--mini-batch-size must be at least 1"),
        (args.output_action not in ACTIONS, f"--output-action must be one of {', '.join(ACTIONS)}"),
        (os.sep in args.output_file_name or args.output_file_name in ("", ".", ".."), "--output-file-name must be a plain file name"),
        (args.max_retries < 0, "--max-retries must be 0 or more"),
        (args.timeout < 0, "--timeout must be 0 (no limit) or more seconds"),
        (args.error_threshold < -1, "--error-threshold must be -1 (ignore every failure) or more"),
        (not 1 <= args.max_concurrency <= 256, "--max-concurrency must be between 1 and 256"),
        (args.logging_level not in LEVELS, f"--logging-level must be one of {', '.join(LEVELS)}"),
        (not os.path.isdir(args.input), f"--input {args.input}: not a folder"),
        (not os.path.isdir(args.output), f"--output {args.output}: not a folder"),
    ]
    for failed, message in problems:
        if failed:
            parser.error(message)
    return args


def input_files(folder: str) -> list[str]:
    """Every file under ``folder``, sorted by path; hidden files and folders are skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in filenames if not f.startswith("."))
    return sorted(found)


def load_script(path: str):
    """Import the scoring script as a module (its folder first on sys.path, as Azure ML does)."""
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise RuntimeError(f"the scoring script {path} has no {name}() function")
    return module


def result_lines(result, files: list[str]) -> list[str]:
    """The lines one run() result contributes to the output file."""
    if hasattr(result, "to_csv"):  # a pandas DataFrame (or Series), without importing pandas here
        text = result.to_csv(header=False, index=False)
        return [line for line in text.splitlines() if line]
    if isinstance(result, (list, tuple)):
        return [str(item) for item in result]
    raise TypeError(f"run() returned {type(result).__name__} for {len(files)} files; expected a pandas DataFrame or a list")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _worker(script: str, level: str, conn) -> None:
    """A worker process: init() once, then run() every mini-batch the driver sends, until None."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        module = load_script(script)
        module.init()
    except BaseException as exc:  # init() failing is the job failing, whatever it raised
        traceback.print_exc()
        conn.send(("init_failed", _describe(exc)))
        return
    conn.send(("ready", None))
    while True:
        batch = conn.recv()
        if batch is None:
            return
        try:
            conn.send(("ok", result_lines(module.run(list(batch)), batch)))
        except Exception as exc:
            traceback.print_exc()
            conn.send(("error", f"raised {_describe(exc)}"))


class Worker:
    """One worker process and the mini-batch it is running (index, deadline)."""

    def __init__(self, context, script: str, level: str):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(script, level, child), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.batch: int | None = None
        self.deadline: float | None = None

    def give(self, index: int, files: list[str], timeout: float) -> None:
        self.batch = index
        self.deadline = time.monotonic() + timeout if timeout > 0 else None
        self.conn.send(files)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class JobFailed(Exception):
    """init() failed or more files failed than the error threshold allows."""


class Job:
    """The mini-batches, their attempts and results; the workers that run them."""

    def __init__(self, args: argparse.Namespace, script: str, files: list[str]):
        self.args, self.script = args, script
        size = args.mini_batch_size
        self.batches = [files[i : i + size] for i in range(0, len(files), size)]
        self.pending = list(range(len(self.batches)))
        self.attempts = [0] * len(self.batches)
        self.results: dict[int, list[str]] = {}
        self.failed: dict[int, str] = {}
        self.workers: list[Worker] = []
        self.context = multiprocessing.get_context("fork")

    @property
    def failed_files(self) -> int:
        return sum(len(self.batches[i]) for i in self.failed)

    def _label(self, index: int) -> str:
        return f"mini-batch {index + 1}/{len(self.batches)}"

    def _attempt_failed(self, index: int, reason: str) -> None:
        """``reason`` completes "run() of mini-batch i/n ...": raised X: message, timed out, ended."""
        self.attempts[index] += 1
        names = ", ".join(os.path.basename(f) for f in self.batches[index])
        tries = self.attempts[index]
        what = f"run() of {self._label(index)} {reason}"
        if tries <= self.args.max_retries:
            print(f"pkgc-batch: {what} (attempt {tries}); retrying", file=sys.stderr)
            self.pending.append(index)
            return
        self.failed[index] = reason
        threshold = self.args.error_threshold
        tried = f" (attempt {tries}, the last)" if tries > 1 else ""
        if threshold != -1 and self.failed_files > threshold:
            raise JobFailed(f"error_threshold {threshold} passed ({self.failed_files} failed files): {what}{tried} on {names}")
        print(f"pkgc-batch: {what}{tried}; its files are left out: {names}", file=sys.stderr)

    def _spawn(self) -> Worker:
        return Worker(self.context, self.script, self.args.logging_level)

    def run(self) -> None:
        self.workers = [self._spawn() for _ in range(min(self.args.max_concurrency, len(self.batches)))]
        try:
            while self.pending or any(w.batch is not None for w in self.workers):
                for worker in self.workers:
                    if worker.ready and worker.batch is None and self.pending:
                        index = self.pending.pop(0)
                        worker.give(index, self.batches[index], self.args.timeout)
                self._wait()
        finally:
            for worker in self.workers:
                worker.stop(kill=worker.batch is not None)

    def _wait(self) -> None:
        """Wait for a message or the nearest deadline; a dead or killed worker is replaced in place."""
        deadlines = [w.deadline for w in self.workers if w.deadline is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        ready = wait([w.conn for w in self.workers], timeout)
        for number, worker in enumerate(self.workers):
            if worker.conn in ready:
                self._receive(number, worker)
            elif worker.deadline is not None and time.monotonic() >= worker.deadline:
                index = worker.batch
                worker.stop(kill=True)
                self.workers[number] = self._spawn()
                self._attempt_failed(index, f"timed out after {self.args.timeout:g} s")

    def _receive(self, number: int, worker: Worker) -> None:
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            index = worker.batch
            worker.stop(kill=True)
            if index is None:  # died before init() reported
                raise JobFailed(f"a worker exited with code {worker.process.exitcode} before running any mini-batch") from None
            self.workers[number] = self._spawn()
            self._attempt_failed(index, f"ended: its worker exited with code {worker.process.exitcode}")
            return
        if kind == "init_failed":
            raise JobFailed(f"init() raised {value}")
        if kind == "ready":
            worker.ready = True
            return
        index, worker.batch, worker.deadline = worker.batch, None, None
        if kind == "ok":
            self.results[index] = value
        else:
            self._attempt_failed(index, value)

    def lines(self) -> list[str]:
        return [line for index in sorted(self.results) for line in self.results[index]]


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    script = os.environ.get("AZUREML_ENTRY_SCRIPT", "")
    if not os.path.isfile(script):
        print(f"pkgc-batch: scoring script '{script}' (AZUREML_ENTRY_SCRIPT) not found", file=sys.stderr)
        return 2
    files = input_files(args.input)
    os.environ["AZUREML_BI_OUTPUT_PATH"] = args.output  # as Azure ML sets it, for scripts writing files themselves
    started = time.monotonic()
    job = Job(args, script, files)
    try:
        job.run()
    except JobFailed as exc:
        print(f"pkgc-batch: {exc}", file=sys.stderr)
        return 1
    lines = job.lines()
    if args.output_action == "append_row":
        target = os.path.join(args.output, args.output_file_name)
        partial = target + ".partial"
        with open(partial, "w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        os.replace(partial, target)
    seconds = time.monotonic() - started
    where = f", {len(lines)} rows in {args.output_file_name}" if args.output_action == "append_row" else ""
    failed = f", {job.failed_files} files failed (error_threshold {args.error_threshold})" if job.failed else ""
    print(f"pkgc-batch: {len(files)} files in {len(job.batches)} mini-batches{where}{failed} ({seconds:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
