"""`pkgc run` on a server that crashed: the first exception it printed (with its innermost frame), not
the log's last line. The logs are the real output of real interpreters, as a server prints them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from compiler.runtime.run import crash_report, first_error

# A server that logs why it cannot start, raises while cleaning up, then prints more: as gunicorn
# ("Worker failed to boot", "Shutting down") and uvicorn do after a failed import.
SERVER = textwrap.dedent("""\
    import logging, sys
    logging.basicConfig(format="%(asctime)s [%(levelname)s] %(message)s", level=logging.INFO)
    logging.info("Starting server on port 8000")
    def load():
        import model_loader_that_is_not_installed
    try:
        try:
            load()
        except ImportError:
            logging.exception("Exception in worker process")
            {}.pop("handle")  # cleanup fails as well: a second, chained exception
    except KeyError:
        logging.info("Worker exiting (pid: 7)")
        print("Shutting down: Master", file=sys.stderr)
        print("Reason: Worker failed to boot.", file=sys.stderr)
        sys.exit(3)
""")


def log_of(script: str, tmp_path) -> str:
    path = tmp_path / "server.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


def test_the_first_exception_of_a_crashed_server_with_its_frame(tmp_path):
    log = log_of(SERVER, tmp_path)
    assert log.strip().splitlines()[-1] == "Reason: Worker failed to boot."
    error = first_error(log)
    assert error.startswith("ModuleNotFoundError: No module named 'model_loader_that_is_not_installed' (at ")
    assert error.endswith("server.py:5, in load)")
    report = crash_report(log)
    assert report == f"first error: {error}; last line: Reason: Worker failed to boot."


def test_an_uncaught_chained_exception_names_its_cause_first(tmp_path):
    log = log_of("try:\n    int('seven')\nexcept ValueError as exc:\n    raise RuntimeError('settings unreadable') from exc\n", tmp_path)
    assert first_error(log).startswith("ValueError: invalid literal for int() with base 10: 'seven' (at ")
    assert "RuntimeError: settings unreadable" in log


def test_an_error_line_without_a_traceback_and_a_clean_log(tmp_path):
    log = log_of("import sys\nprint('loading')\nprint('pkgc: model m:1 is not mounted', file=sys.stderr)\nprint('bye')\n", tmp_path)
    assert first_error(log) == "pkgc: model m:1 is not mounted"
    quiet = log_of("print('one')\nprint('two')\n", tmp_path)
    assert first_error(quiet) is None and crash_report(quiet) == "container log: one | two"
    assert crash_report("") == "container log: (empty)"


# The server's two writers share the container log: a log line of another thread (or gunicorn's master,
# on stdout) lands between the traceback's frames (stderr) and its exception line.
INTERLEAVED = textwrap.dedent("""\
    import sys, traceback
    def load():
        from json import name_that_json_does_not_have
    try:
        load()
    except ImportError as exc:
        *frames, last = traceback.format_exception(exc)
        sys.stderr.write("".join(frames)); sys.stderr.flush()
        print("2026-12-03 21:18:29,889 I [1] gunicorn.error - Worker exiting (pid: 12)", flush=True)
        print("Initializing logger", flush=True)
        sys.stderr.write(last); sys.stderr.flush()
        print("Reason: Worker failed to boot.", file=sys.stderr)
""")


def test_the_exception_line_after_another_writer_s_lines(tmp_path):
    path = tmp_path / "server.py"
    path.write_text(INTERLEAVED)
    log = subprocess.run([sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60).stdout
    lines = log.splitlines()
    assert lines.index("Initializing logger") < next(i for i, line in enumerate(lines) if line.startswith("ImportError"))
    error = first_error(log)
    assert error.startswith("ImportError: cannot import name 'name_that_json_does_not_have' from 'json' (")
    assert error.endswith("server.py:3, in load)")
