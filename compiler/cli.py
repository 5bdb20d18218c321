"""pkgc's command line: builds the parser from ``compiler/commands/*`` and maps errors to exit codes.

Every PkgcError becomes one line per problem on stderr and its exit code (2 bad input, 3 build
failure, 4 verification failure, 5 no engine); results go to stdout.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from pathlib import Path
from typing import NoReturn

from compiler import __version__
from compiler.cache.faults import storage_fault
from compiler.cache.use import cache_in_use
from compiler.closed_pipe import reader_gone, stop_writing
from compiler.commands import assets, attestations, baseimage, build, cache, invoke, lock, run, sbom, verify
from compiler.errors import PkgcError
from compiler.options import config_dir_for, load_options, progress_mode
from compiler.progress.events import MODES
from compiler.reporter import Reporter

LOGGED_COMMANDS = ("build", "lock", "base-image")  # the long runs: their whole log is kept in <cache>/logs
CACHE_WRITERS = (*LOGGED_COMMANDS, "model")  # hold the cache while they run (compiler/cache/use.py)

NATIVE_THREADED_MODULES = ("rattler",)  # see entry()

COMMAND_MODULES = (build, lock, assets, baseimage, run, invoke, verify, sbom, attestations, cache)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pkgc", description="Compile a model package spec into an inference image.")
    parser.add_argument("--version", action="version", version=f"pkgc {__version__}")
    parser.add_argument("--workspace", help="workspace folder (default: $PKGC_WORKSPACE or ~/.pkgc/workspace)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--progress", choices=MODES, help="how stderr shows progress: auto (default; tty on a terminal, "
                        "else plain), tty, plain (a line per event), json (an object per line); also $PKGC_PROGRESS")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one pkgc command; the exit code. In-process callers (tests) use this; the command uses
    ``entry``."""
    try:
        return _main(argv)
    except BrokenPipeError:  # --help or a usage error into a closed pipe
        if reader_gone(sys.stdout) or reader_gone(sys.stderr):
            return stop_writing()
        raise


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    try:
        reporter = Reporter(quiet=args.quiet, mode=progress_mode(args.progress))
        spec_dir = config_dir_for(args.spec) if getattr(args, "spec", None) else Path.cwd()
        options = load_options(args.workspace, spec_dir)
        if args.command in LOGGED_COMMANDS:
            reporter.keep_log(options.cache_dir / "logs", args.command)
        try:
            with cache_in_use(options.cache_dir) if args.command in CACHE_WRITERS else contextlib.nullcontext():
                code = args.func(args, options, reporter)
        except OSError as exc:  # a full disk, a read-only cache: one line naming the path
            raise storage_fault(exc, options.cache_dir, options.workspace) or exc
        sys.stdout.flush()  # a reader that went away is found here, not at exit
        reporter.close(failed=code != 0)
        return code
    except PkgcError as exc:
        # bad input (2) and no engine (5) are one line each; a failed build also shows its log
        reporter.close(failed=exc.exit_code not in (2, 5) and getattr(exc, "shows_log", True), errors=exc.lines())
        return exc.exit_code
    except KeyboardInterrupt:
        reporter.close()
        return 130
    except BrokenPipeError:
        if not (reader_gone(sys.stdout) or reader_gone(sys.stderr)):
            return internal_error(reporter, sys.exc_info()[1])
        try:  # the reader took what it wanted (`pkgc schema | head -1`): nothing more to say
            reporter.close()
        except OSError:
            pass
        return stop_writing()
    except Exception as exc:  # an internal error: one line, the traceback only on request
        return internal_error(reporter, exc)


def internal_error(reporter: Reporter, exc: BaseException) -> int:
    """An internal error: one line, the traceback only on request (PKGC_DEBUG=1)."""
    message = f"internal error: {type(exc).__name__}: {exc} (set PKGC_DEBUG=1 for a traceback)"
    if os.environ.get("PKGC_DEBUG"):
        reporter.close(failed=True)
        raise exc
    if reporter.mode == "json":  # every stderr line stays one JSON object
        reporter.close(failed=True, errors=[message])
    else:
        reporter.close(failed=True)
        reporter.console.print(f"pkgc: {message}", markup=False, highlight=False)
    return 1


def entry() -> NoReturn:
    """The ``pkgc`` command: ``main()``, then exit without finalizing the interpreter when a native
    extension with its own threads (py-rattler's tokio runtime) was loaded. A rattler fetch that fails
    while its sibling request is still in flight (one channel subdir unreachable) finishes on a tokio
    thread after ``main`` returned; letting the interpreter finalize then aborts the process
    (``PyGILState_Release``, exit -6) instead of the exit code ``main`` chose."""
    code = main()
    if not any(name in sys.modules for name in NATIVE_THREADED_MODULES):
        sys.exit(code)
    atexit._run_exitfuncs()  # what finalizing would have run for Python code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
