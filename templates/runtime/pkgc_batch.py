"""pkgc batch driver: run an Azure ML batch scoring script over a folder of files, as a job.

    python pkgc_batch.py --input DIR --output DIR [--mini-batch-size N]
                         [--output-action append_row|summary_only] [--output-file-name NAME]

As Azure ML batch deployments do: ``init()`` is called once, then ``run(mini_batch)`` with lists of
``--mini-batch-size`` file paths (the input folder's files, recursively, in sorted order). ``run``
returns a pandas DataFrame or a list with one element per result. ``append_row`` writes every
result, in input order, to ``--output-file-name`` (default ``predictions.csv``) in the output
folder: a DataFrame's rows as CSV without header or index, a list's elements one per line.
``summary_only`` writes no result file. Either way a one-line summary goes to stderr.

The output file appears only when every mini-batch succeeded (written to a temporary name, then
renamed). When ``run()`` raises, the job stops with exit code 1 and a line naming the exception and
the files of that mini-batch. Exit codes: 0 success, 1 run() or init() failed, 2 bad arguments.
Standard library only: it runs with whatever Python the package's environment has.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback

ACTIONS = ("append_row", "summary_only")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pkgc-batch", description="run the package's batch scoring script over files")
    parser.add_argument("--input", required=True, help="folder of input files (read recursively)")
    parser.add_argument("--output", required=True, help="folder for the output file")
    parser.add_argument("--mini-batch-size", type=int, default=10, help="files per run() call (default 10)")
    parser.add_argument("--output-action", choices=ACTIONS, default="append_row")
    parser.add_argument("--output-file-name", default="predictions.csv")
    args = parser.parse_args(argv)
    if args.mini_batch_size < 1:
        parser.error("--mini-batch-size must be at least 1")
    if os.sep in args.output_file_name or args.output_file_name in ("", ".", ".."):
        parser.error("--output-file-name must be a plain file name")
    if not os.path.isdir(args.input):
        parser.error(f"--input {args.input}: not a folder")
    if not os.path.isdir(args.output):
        parser.error(f"--output {args.output}: not a folder")
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
            raise SystemExit(f"pkgc-batch: the scoring script {path} has no {name}() function")
    return module


def result_lines(result, files: list[str]) -> list[str]:
    """The lines one run() result contributes to the output file."""
    if hasattr(result, "to_csv"):  # a pandas DataFrame (or Series), without importing pandas here
        text = result.to_csv(header=False, index=False)
        return [line for line in text.splitlines() if line]
    if isinstance(result, (list, tuple)):
        return [str(item) for item in result]
    raise TypeError(f"run() returned {type(result).__name__} for {len(files)} files; expected a pandas DataFrame or a list")


def _fail(what: str, exc: BaseException, files: list[str] | None = None) -> int:
    traceback.print_exc()
    named = f" on {', '.join(os.path.basename(f) for f in files)}" if files else ""
    print(f"pkgc-batch: {what} raised {type(exc).__name__}: {exc}{named}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    script = os.environ.get("AZUREML_ENTRY_SCRIPT", "")
    if not os.path.isfile(script):
        print(f"pkgc-batch: scoring script '{script}' (AZUREML_ENTRY_SCRIPT) not found", file=sys.stderr)
        return 2
    files = input_files(args.input)
    os.environ["AZUREML_BI_OUTPUT_PATH"] = args.output  # as Azure ML sets it, for scripts writing files themselves
    started = time.monotonic()
    try:
        module = load_script(script)
        module.init()
    except Exception as exc:
        return _fail("init()", exc)
    lines: list[str] = []
    batches = [files[i : i + args.mini_batch_size] for i in range(0, len(files), args.mini_batch_size)]
    for number, batch in enumerate(batches, 1):
        try:
            lines.extend(result_lines(module.run(list(batch)), batch))
        except Exception as exc:
            return _fail(f"run() of mini-batch {number}/{len(batches)}", exc, batch)
    if args.output_action == "append_row":
        target = os.path.join(args.output, args.output_file_name)
        partial = target + ".partial"
        with open(partial, "w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        os.replace(partial, target)
    seconds = time.monotonic() - started
    where = f", {len(lines)} rows in {args.output_file_name}" if args.output_action == "append_row" else ""
    print(f"pkgc-batch: {len(files)} files in {len(batches)} mini-batches{where} ({seconds:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
