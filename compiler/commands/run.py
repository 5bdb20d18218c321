"""``pkgc run``: start a package (``pkgc invoke``, in invoke.py, talks to it)."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from compiler.commands import connect_engine, print_result
from compiler.commands.verify import add_gpus_argument
from compiler.engines.gpus import parse_gpus
from compiler.errors import PkgcError, SpecError, SpecProblem, excerpt
from compiler.labels import ROUTE_RE

# JobSettings field -> the flag's attribute (``pkgc run`` has its own --timeout)
BATCH_FLAGS = {"mini_batch_size": "mini_batch_size", "output_action": "output_action", "output_file_name": "output_file_name",
               "max_retries": "max_retries", "timeout": "mini_batch_timeout", "error_threshold": "error_threshold",
               "max_concurrency": "max_concurrency", "logging_level": "logging_level"}  # fmt: skip

HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$")


def port_number(text: str) -> int:
    """argparse type: a TCP port (1-65535)."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"'{text[:20]}' is not a port number (1-65535)")
    return int(text)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 1_000_000):
        raise argparse.ArgumentTypeError(f"'{text[:20]}' is not a number from 1 to 1000000")
    return int(text)


def route_path(text: str) -> str:
    """argparse type: an HTTP path such as /score."""
    if not ROUTE_RE.match(text):
        raise argparse.ArgumentTypeError(f"'{excerpt(text, 40)}' is not an HTTP path (it starts with '/')")
    return text


def host_name(text: str) -> str:
    """argparse type: a host name or IP address."""
    if not HOST_RE.match(text):
        raise argparse.ArgumentTypeError(f"'{excerpt(text, 40)}' is not a host name or IP address")
    return text


def register(sub) -> None:
    p = sub.add_parser("run", help="start a package, mounting its model read-only when it expects a mount")
    p.add_argument("image")
    p.add_argument("--port", type=port_number, help="host port (default: the package's port)")
    p.add_argument("--detach", "-d", action="store_true", help="leave it running and print the container id")
    p.add_argument("--name")
    p.add_argument("--model-path", help="model folder to mount instead of the workspace's copy")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the health route")
    p.add_argument("--json", action="store_true")
    add_gpus_argument(p)
    batch = p.add_argument_group("batch packages (azureml_batch): run as a job")
    batch.add_argument("--batch", action="store_true", help="run a batch package over --input, writing to --output")
    batch.add_argument("--input", help="folder of input files (mounted read-only)")
    batch.add_argument("--output", help="folder for the results (created when missing)")
    batch.add_argument("--mini-batch-size", type=positive_int, help="files per run() call (default: the image's, else 10)")
    batch.add_argument("--output-action", choices=("append_row", "summary_only"), help="default: the image's, else append_row")
    batch.add_argument("--output-file-name", help="default: the image's, else predictions.csv")
    batch.add_argument("--max-retries", type=int, help="tries after a failed mini-batch (default: the image's, else 0)")
    batch.add_argument("--mini-batch-timeout", type=float, help="seconds per mini-batch, 0 for none (default: the image's, else none)")
    batch.add_argument("--error-threshold", type=int, help="failed files tolerated, -1 for any (default: the image's, else 0)")
    batch.add_argument("--max-concurrency", type=positive_int, help="worker processes (default: the image's, else 1)")
    batch.add_argument("--logging-level", choices=("debug", "info", "warning", "error", "critical"), help="default: the image's, else info")
    p.set_defaults(func=run)


def run_batch_job(args, options, reporter) -> int:
    """``pkgc run --batch``: the job's log goes to stderr, the summary to stdout."""
    from compiler.runtime.batch import BatchRequest, JobSettings, run_batch
    from compiler.workspace import Workspace

    missing = [flag for flag in ("input", "output") if not getattr(args, flag)]
    if missing:
        raise SpecError(SpecProblem(f"--{missing[0]}", "", "is required with --batch"))
    if args.port or args.detach or args.name:
        raise SpecError(SpecProblem("--batch", "", "runs a job to its end: --port, --detach and --name do not apply"))
    settings = JobSettings(**{field: getattr(args, flag) for field, flag in BATCH_FLAGS.items()})
    req = BatchRequest(image=args.image, input_dir=Path(args.input), output_dir=Path(args.output), settings=settings,
                       model_path=Path(args.model_path) if args.model_path else None, gpus=parse_gpus(args.gpus))  # fmt: skip
    reporter.step(f"running batch job {args.image} over {args.input}")
    result = run_batch(connect_engine(), Workspace(options.workspace), req)
    for line in result.log.strip().splitlines():
        reporter.detail(line)
    print_result(result.as_dict(), args.json, f"batch job done in {result.seconds:.1f} s; output in {result.output_dir}")
    return 0


def run(args, options, reporter) -> int:
    from compiler.runtime.run import crash_report, readiness_url, score_url, start_package, wait_until_ready
    from compiler.workspace import Workspace

    if args.batch:
        return run_batch_job(args, options, reporter)
    extra = [flag for flag in ("input", "output", *BATCH_FLAGS.values()) if getattr(args, flag) is not None]
    if extra:
        raise SpecError(SpecProblem(f"--{extra[0].replace('_', '-')}", "", "applies to batch packages only: add --batch"))
    gpus = parse_gpus(args.gpus)  # bad input before the engine is asked
    engine = connect_engine()
    handle, labels = start_package(
        engine, args.image, Workspace(options.workspace), host_port=args.port,
        model_path=Path(args.model_path) if args.model_path else None, name=args.name, gpus=gpus,
    )  # fmt: skip
    url = f"http://127.0.0.1:{handle.host_port}"
    try:
        seconds = wait_until_ready(engine, handle, labels, args.timeout)
    except PkgcError:
        engine.stop(handle.container_id)
        raise
    reporter.step(f"{args.image} answers on {url} after {seconds:.1f} s (container {handle.container_id[:12]})")
    result = {"container": handle.container_id, "url": url, "port": handle.host_port,
              "score_url": score_url(handle, labels), "readiness_url": readiness_url(handle, labels),
              "ports": {str(k): v for k, v in handle.ports.items()}, "model_mounted": labels.needs_mount,
              "gpus": str(gpus) if gpus else None}  # fmt: skip
    if args.detach:
        print_result(result, args.json, handle.container_id)
        return 0
    try:
        reporter.step("press Ctrl-C to stop")
        while engine.container_running(handle.container_id):
            time.sleep(1)
        code = engine.exit_code(handle.container_id) or 0
        if code:  # it stopped by itself: say why, before the container goes
            reporter.error(f"the package exited with code {code}; {crash_report(engine.logs(handle.container_id))}")
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        engine.stop(handle.container_id)
