"""Run a batch package (``azureml_batch``) as a job: input folder read-only, output folder writable.

The container runs with the network off and as the calling user (so the output files are theirs);
the model is mounted read-only when the package expects it, as for online packages. The job's
settings are the image's (``PKGC_BATCH_*``, from a batch deployment's ``settings``) unless
``JobSettings`` overrides them; the driver (templates/runtime/pkgc_batch.py) reads both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.engines.base import Engine, Mount
from compiler.engines.gpus import GpuRequest
from compiler.errors import ResolveError, SpecError, SpecProblem, VerifyError, excerpt
from compiler.runtime.run import model_mount, package_labels
from compiler.workspace import Workspace

CONTAINER_INPUT = "/mnt/pkgc/input"
CONTAINER_OUTPUT = "/mnt/pkgc/output"
OUTPUT_ACTIONS = ("append_row", "summary_only")


@dataclass(frozen=True)
class JobSettings:
    """The job's flags; None keeps the image's default (a batch deployment's settings, else the driver's)."""

    mini_batch_size: int | None = None
    output_action: str | None = None
    output_file_name: str | None = None
    max_retries: int | None = None
    timeout: float | None = None  # seconds per mini-batch
    error_threshold: int | None = None
    max_concurrency: int | None = None
    logging_level: str | None = None

    def arguments(self) -> list[str]:
        args: list[str] = []
        for name, value in self.__dict__.items():
            if value is not None:
                args += [f"--{name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
        return args


@dataclass(frozen=True)
class BatchRequest:
    image: str
    input_dir: Path
    output_dir: Path
    settings: JobSettings = JobSettings()
    model_path: Path | None = None
    gpus: GpuRequest | None = None


@dataclass(frozen=True)
class BatchResult:
    image: str
    seconds: float
    log: str
    output_dir: Path

    def as_dict(self) -> dict:
        return {"passed": True, "image": self.image, "seconds": round(self.seconds, 2), "output": str(self.output_dir)}


def job_arguments(req: BatchRequest) -> list[str]:
    """The batch driver's arguments (see templates/runtime/pkgc_batch.py)."""
    return ["--input", CONTAINER_INPUT, "--output", CONTAINER_OUTPUT, *req.settings.arguments()]


def _folders(req: BatchRequest) -> tuple[Path, Path]:
    input_dir, output_dir = req.input_dir.resolve(), req.output_dir.resolve()
    if not input_dir.is_dir():
        raise SpecError(SpecProblem("--input", "", f"'{excerpt(str(req.input_dir), 80)}' is not a folder"))
    if output_dir.exists() and not output_dir.is_dir():
        raise SpecError(SpecProblem("--output", "", f"'{excerpt(str(req.output_dir), 80)}' is not a folder"))
    if output_dir == input_dir or input_dir in output_dir.parents:
        raise SpecError(SpecProblem("--output", "", "must not be the input folder or inside it"))
    output_dir.mkdir(parents=True, exist_ok=True)
    return input_dir, output_dir


def run_batch(engine: Engine, workspace: Workspace, req: BatchRequest) -> BatchResult:
    """Run the job to its end; a failed job is a VerifyError (exit 4) carrying the driver's last lines."""
    labels = package_labels(engine, req.image)
    if not labels.is_job:
        raise ResolveError(f"image '{excerpt(req.image)}' is an online package ({labels.server}); run it without --batch")
    input_dir, output_dir = _folders(req)
    mounts = model_mount(labels, workspace, req.model_path)
    mounts += [Mount(input_dir, CONTAINER_INPUT, read_only=True), Mount(output_dir, CONTAINER_OUTPUT, read_only=False)]
    user = f"{os.getuid()}:{os.getgid()}"
    started = time.monotonic()
    handle = engine.run(req.image, (), None, mounts, {}, network="none", command=job_arguments(req), user=user,
                        gpus=req.gpus)  # fmt: skip
    try:
        code = engine.wait(handle.container_id)
        log = engine.logs(handle.container_id)
    finally:
        engine.stop(handle.container_id)
    seconds = time.monotonic() - started
    if code != 0:
        lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
        driver = [line for line in lines if line.startswith(("pkgc-batch:", "pkgc:"))]
        reason = driver[-1] if driver else " | ".join(lines[-3:]) or "(no output)"
        raise VerifyError(f"{req.image}: the batch job exited with code {code}: {reason}")
    return BatchResult(req.image, seconds, log, output_dir)
