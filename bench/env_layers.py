"""Benchmark the split environment: the rebuild after a one-package lock change (a script, not a test).

For the sklearn example's environment (``--env sklearn``) or a larger one (``--env large``: the
example plus lightgbm and xgboost, whose PyPI wheel pulls nvidia-nccl-cu12), with each pkgc source
tree given (``--code NAME=DIR``, e.g. ``before=/tmp/pkgc-before after=.``), from an empty OCI store
and pyc cache (the host package cache warm, lock and fetch outside the timings):
  1. the cold build of the environment as locked;
  2. the rebuild after one package's pin changes (``--change OLD:NEW``, default joblib 1.6.0 -> 1.5.3);
then the manifests' environment layers: how many, how many the change rewrote, the bytes it stored
new. Whole CLI calls (``pkgc build --json``), with the engine loading the image (``--no-engine``:
without). Prints a table and writes bench/results/env-layers-<time>.json.

Usage: python3 bench/env_layers.py [--env sklearn|large] [--code after=.] [--code before=DIR] [--runs N] [--no-engine]
(an old tree: git archive <commit> | tar -x -C DIR)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backends import NOWHERE, fresh_cache, median  # noqa: E402
from bench import report  # noqa: E402

PINS = {"sklearn": ["numpy==2.4.6", "scipy==1.17.1", "scikit-learn==1.9.1", "joblib==1.6.0"]}
PINS["large"] = PINS["sklearn"] + ["lightgbm==4.6.0", "xgboost==3.2.0"]


def conda_yaml(pins: list[str]) -> str:
    lines = "".join(f"      - {pin}\n" for pin in pins)
    return f"name: model-env\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n{lines}"


def pkgc(env: dict, code: Path, *args: str, stages: dict | None = None) -> str:
    """Run ``code``'s pkgc; with ``stages``, fill it with each stage's seconds (from ``--progress json``)."""
    flags = ["--progress", "json"] if stages is not None else ["-q"]
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", *flags, *args], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(code)}, cwd=code)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"pkgc {' '.join(args)} failed: {proc.stderr[-2000:]}")
    for line in proc.stderr.splitlines() if stages is not None else []:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "stage" and event.get("status") == "done":
            stages[event["stage"]] = float(event.get("elapsed") or 0.0)
    return proc.stdout


def environment_layers(cache: Path, manifest_digest: str) -> list[dict]:
    """The manifest's layers pkgc wrote for the environment: the config's history says which."""
    blobs = cache / "oci" / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_digest.split(":", 1)[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":", 1)[1]).read_text())
    history = [h for h in config["history"] if not h.get("empty_layer")]
    return [layer for layer, h in zip(manifest["layers"], history) if "environment layer" in h.get("created_by", "")]


def one_code(name: str, code: Path, work: Path, base_env: dict, pins: list[str], change: tuple[str, str]) -> dict:
    """Cold build, then the rebuild after the pin change, with ``code``'s pkgc and an empty OCI store."""
    cache = work / "cache"
    for folder in ("oci", "pyc"):
        shutil.rmtree(cache / folder, ignore_errors=True)
    example = work / f"example-{name}"
    shutil.rmtree(example, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "sklearn-regression", example, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
    env = {**base_env, "PKGC_WORKSPACE": str(work / f"workspace-{name}")}
    model = pkgc(env, code, "model", "create", "--name", "bench-envlayers", "--path", str(example / "model")).strip()
    spec = example / "package-azure-app.yml"
    figures: dict = {}
    digests = []
    for step, step_pins in (("cold", pins), ("changed", [change[1] if p == change[0] else p for p in pins])):
        (example / "environment" / "conda.yaml").write_text(conda_yaml(step_pins))
        pkgc(env, code, "environment", "create", "--file", str(example / "environment" / "sklearn-regression-env.yml"))
        pkgc(env, code, "build", str(spec), "--model", model, "--emit", "plan", "--relock")  # lock and fetch, untimed
        started, stages = time.monotonic(), {}
        result = json.loads(pkgc(env, code, "build", str(spec), "--model", model, "--json",
                                 "--target-environment", f"pkgc-envlayers-bench-{name}", stages=stages))  # fmt: skip
        figures[f"{name}_{step}_build_s"] = time.monotonic() - started
        figures[f"{name}_{step}_layers_stage_s"] = stages.get("layers", 0.0)
        figures[f"{name}_{step}_load_stage_s"] = stages.get("load", 0.0)
        layers = environment_layers(cache, result["manifest_digest"])
        figures[f"{name}_{step}_env_layers"] = len(layers)
        figures[f"{name}_{step}_env_mb"] = sum(layer["size"] for layer in layers) / 1e6
        digests.append({layer["digest"]: layer["size"] for layer in layers})
        figures[f"{name}_{step}_manifest"] = result["manifest_digest"][:19]
    new = {d: s for d, s in digests[1].items() if d not in digests[0]}
    figures[f"{name}_changed_env_layers_rewritten"] = len(new)
    figures[f"{name}_changed_env_mb_new"] = sum(new.values()) / 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", choices=sorted(PINS), default="sklearn")
    parser.add_argument("--code", action="append", default=[], help="NAME=DIR: a pkgc source tree to time (repeatable)")
    parser.add_argument("--change", default="joblib==1.6.0:joblib==1.5.3", help="OLD:NEW: the one pin that changes")
    parser.add_argument("--runs", type=int, default=1, help="runs of each code (the median is reported)")
    parser.add_argument("--no-engine", action="store_true", help="build into the OCI store only")
    args = parser.parse_args()
    codes = dict(item.split("=", 1) for item in args.code) or {"after": str(ROOT)}
    old, _, new = args.change.partition(":")
    if old not in PINS[args.env] or not new:
        raise SystemExit(f"--change: {old} is not one of {PINS[args.env]}")
    work = Path(tempfile.mkdtemp(prefix="pkgc-bench-envlayers-"))
    base_env = dict(os.environ, PKGC_CACHE_DIR=str(fresh_cache(work, "cache")))
    if args.no_engine:
        base_env["DOCKER_HOST"] = NOWHERE
    figures: dict = {"env": args.env, "change": args.change, "engine": not args.no_engine}
    try:
        runs: list[dict] = []
        for _ in range(args.runs):
            run: dict = {}
            for name, code in codes.items():
                run.update(one_code(name, Path(code).resolve(), work, base_env, PINS[args.env], (old, new)))
            runs.append(run)
        for key in runs[0]:
            values = [r[key] for r in runs]
            figures[key] = median(values) if isinstance(values[0], float) else values[0]
        figures["load_average_at_end"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
        report(figures, f"env-layers-{args.env}-")
    finally:
        if not args.no_engine:
            from backends import remove_images
            from compiler.engines import DockerEngine

            remove_images(DockerEngine.connect(), [f"pkgc/pkgc-envlayers-bench-{name}" for name in codes])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
