"""The live view: each renderer's output for the same run, the log file and its tail on failure,
the progress mode's choice, and the CLI keeping stdout for the result."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from compiler.errors import SpecError
from compiler.options import progress_mode
from compiler.progress.events import MessageEvent, StageEvent, human_bytes
from compiler.progress.json import JsonRenderer
from compiler.progress.plain import PlainRenderer
from compiler.progress.throttle import Throttle
from compiler.progress.tty import TtyRenderer
from compiler.reporter import Reporter, choose_mode


def run_stages(reporter: Reporter, fail: bool = False) -> None:
    """A small run: a step outside stages, a fetch moving bytes, a build whose engine output fails it."""
    reporter.step("builder: oci")
    with reporter.stage("fetch") as fetch:
        reporter.detail("fetching 2 pip packages on the host")
        fetch.update(1_500_000, total=3_000_000)
        fetch.update(3_000_000, total=3_000_000)
    reporter.warn("something to know")
    with pytest.raises(RuntimeError) if fail else _nothing():
        with reporter.stage("build"):
            reporter.build_output("Step 1/2 : FROM base\nStep 2/2 : RUN false\n")
            if fail:
                raise RuntimeError("boom")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def plain_reporter(tmp_path, mode="plain", quiet=False) -> tuple[Reporter, io.StringIO]:
    stream = io.StringIO()
    console = Console(file=stream, width=100, force_terminal=mode == "tty", color_system=None, record=True)
    reporter = Reporter(quiet=quiet, console=console, mode=mode)
    reporter.keep_log(tmp_path / "logs", "build")
    return reporter, stream


def test_plain_is_one_ansi_free_line_per_event_with_engine_output(tmp_path):
    reporter, stream = plain_reporter(tmp_path)
    run_stages(reporter)
    reporter.close()
    lines = stream.getvalue().splitlines()
    assert "\x1b" not in stream.getvalue()
    assert lines[0] == "pkgc builder: oci"
    assert "pkgc [fetch] started" in lines and "     fetching 2 pip packages on the host" in lines
    assert not any(line.startswith("pkgc [fetch] 1.5 MB") for line in lines)  # progress: at most every 2 s
    assert any(line.startswith("pkgc [fetch] done in 0.0 s (3.0 MB / 3.0 MB)") for line in lines)
    assert "pkgc warning: something to know" in lines
    assert "  | Step 2/2 : RUN false" in lines and any(line.startswith("pkgc [build] done in") for line in lines)


def test_json_is_one_object_per_line_with_stage_events_and_the_failure_tail(tmp_path):
    reporter, stream = plain_reporter(tmp_path, mode="json")
    run_stages(reporter, fail=True)
    reporter.close(failed=True, errors=["image build failed: boom"])
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    stages = [(e["stage"], e["status"]) for e in events if e["type"] == "stage"]
    assert stages == [("fetch", "start"), ("fetch", "done"), ("build", "start"), ("build", "failed")]  # progress throttled
    done = next(e for e in events if e["type"] == "stage" and e["status"] == "done")
    assert done["bytes"] == done["total"] == 3_000_000 and done["elapsed"] >= 0
    outputs = [e["text"] for e in events if e["type"] == "message" and e["level"] == "output"]
    assert outputs == ["Step 1/2 : FROM base", "Step 2/2 : RUN false"] and all(
        e["stage"] == "build" for e in events if e.get("level") == "output"
    )
    log = next(e for e in events if e["type"] == "log")
    assert log["path"] == str(reporter.log.path) and log["tail"][-1].endswith("pkgc [build] failed after 0.0 s")
    assert events[-1] == {"type": "message", "level": "error", "text": "image build failed: boom"}


def test_tty_collapses_finished_stages_and_prints_the_log_tail_on_failure(tmp_path):
    reporter, stream = plain_reporter(tmp_path, mode="tty")
    assert isinstance(reporter.renderer, TtyRenderer)
    run_stages(reporter, fail=True)
    reporter.close(failed=True, errors=["image build failed: boom"])
    text = reporter.console.export_text()
    lines = text.splitlines()
    # one line per finished stage, its details collapsed into it; engine output only in the tail
    fetch = [line for line in lines if "fetch" in line and not line.startswith(" ")]
    assert len(fetch) == 1 and fetch[0].startswith("✔ fetch") and "3.0 MB / 3.0 MB" in fetch[0]
    assert "fetching 2 pip packages on the host" in fetch[0]
    assert any(line.startswith("✘ build") and "Step 2/2 : RUN false" in line for line in lines)
    assert "pkgc builder: oci" in lines and "pkgc warning: something to know" in lines
    tail_at = lines.index(next(line for line in lines if line.startswith("--- the last")))
    assert any("output: Step 2/2 : RUN false" in line for line in lines[tail_at:])
    assert not any("output:" in line for line in lines[:tail_at])
    assert lines[-2] == f"pkgc full log: {reporter.log.path}" and lines[-1] == "pkgc: error: image build failed: boom"


def test_tty_live_region_shows_running_stages_with_bytes():
    console = Console(file=io.StringIO(), width=100, color_system=None, record=True)
    renderer = TtyRenderer(console, clock=lambda: 10.0)
    renderer.handle(StageEvent("load", "start", 0.0))
    renderer.handle(StageEvent("load", "progress", 2.5, bytes=40_000_000, total=100_000_000))
    renderer.handle(MessageEvent("detail", "sending 6 of 7 layers", "load"))
    console.print(renderer)
    shown = console.export_text()
    assert "load" in shown and "40.0 MB / 100.0 MB" in shown and "sending 6 of 7 layers" in shown
    renderer.close(None)


def test_log_file_keeps_everything_even_what_quiet_hides(tmp_path):
    reporter, stream = plain_reporter(tmp_path, quiet=True)
    run_stages(reporter, fail=True)
    reporter.close(failed=True, errors=["image build failed: boom"])
    assert stream.getvalue().splitlines() == [
        "pkgc warning: something to know", f"pkgc full log: {reporter.log.path}", "pkgc: error: image build failed: boom"
    ]  # fmt: skip
    logged = reporter.log.path.read_text()
    for words in ("step: builder: oci", "fetch     pkgc [fetch] done in", "build     output: Step 2/2 : RUN false",
                  "build     pkgc [build] failed after", "error: image build failed: boom"):  # fmt: skip
        assert words in logged
    assert "1.5 MB" not in logged  # progress events are for the screen only


def test_logs_are_pruned_to_the_newest(tmp_path):
    import os

    folder = tmp_path / "logs"
    folder.mkdir()
    for i in range(25):
        old = folder / f"build-old-{i}.log"
        old.write_text("x")
        os.utime(old, (1000 + i, 1000 + i))
    Reporter(console=Console(file=io.StringIO())).keep_log(folder, "build")
    kept = sorted(p.name for p in folder.glob("*.log"))
    assert len(kept) == 20 and "build-old-24.log" in kept and "build-old-5.log" not in kept


def test_progress_mode_and_auto():
    assert progress_mode(None, {}) == "auto" and progress_mode(None, {"PKGC_PROGRESS": "json"}) == "json"
    assert progress_mode("plain", {"PKGC_PROGRESS": "json"}) == "plain"
    with pytest.raises(SpecError, match="PKGC_PROGRESS: 'fancy' is not one of auto|tty|plain|json"):
        progress_mode(None, {"PKGC_PROGRESS": "fancy"})
    assert choose_mode("auto", Console(file=io.StringIO())) == "plain"
    assert choose_mode("auto", Console(file=io.StringIO(), force_terminal=True)) == "tty"


def test_throttle_and_sizes():
    now = [0.0]
    throttle = Throttle(1.0, clock=lambda: now[0])
    assert throttle.passes(StageEvent("s", "start", 0))
    assert not throttle.passes(StageEvent("s", "progress", 0.5, bytes=1))
    now[0] = 1.5
    assert throttle.passes(StageEvent("s", "progress", 1.5, bytes=2))
    assert throttle.passes(StageEvent("s", "done", 1.6))
    assert [human_bytes(n) for n in (512, 12_300, 4_500_000, 1_200_000_000)] == ["512 B", "12.3 kB", "4.5 MB", "1.2 GB"]


def test_cli_json_progress_keeps_stdout_for_the_result(tmp_path, capsys, monkeypatch):
    from compiler.cli import main

    monkeypatch.setenv("PKGC_CACHE_DIR", str(tmp_path / "cache"))
    spec = tmp_path / "package.yml"
    spec.write_text("model: {}\n")
    assert main(["--workspace", str(tmp_path / "ws"), "--progress", "json", "build", str(spec), "--emit", "spec"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    events = [json.loads(line) for line in err.splitlines()]
    assert events and events[-1]["type"] == "message" and events[-1]["level"] == "error" and str(spec) in events[-1]["text"]


def test_fetch_reports_the_bytes_of_the_files_at_hand(tmp_path):
    import hashlib

    from compiler.fetch.cache import PackageCache, fetch_lock
    from compiler.lock.types import Lock, LockedPackage

    data = b"a wheel's bytes" * 1000
    package = LockedPackage("demo", "1.0", "pip", "https://example.invalid/demo-1.0-py3-none-any.whl",
                            "demo-1.0-py3-none-any.whl", hashlib.sha256(data).hexdigest())  # fmt: skip
    cache = PackageCache(tmp_path)
    source = tmp_path / package.filename
    source.write_bytes(data)
    cache.add(source, package)
    heard: list[int] = []
    fetch_lock(Lock("venv", "3.11", "x", (package,)), cache, progress=heard.append)
    assert heard[-1] == len(data)


def test_cli_internal_error_in_json_mode_is_an_event(tmp_path, capsys, monkeypatch):
    from compiler import cli
    from compiler.commands import baseimage

    def broken(args, options, reporter):
        raise ValueError("no such thing")

    monkeypatch.setenv("PKGC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PKGC_DEBUG", raising=False)
    monkeypatch.setattr(baseimage, "list_recipes_cmd", broken)  # the parser is built in main(): it takes this one
    assert cli.main(["--workspace", str(tmp_path / "ws"), "--progress", "json", "base-image", "list"]) == 1
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert events[-1]["level"] == "error" and events[-1]["text"].startswith("internal error: ValueError: no such thing")
