"""Benchmark pkgc on the bundled example with the real engine (a script, not a test).

Measures: cold build (every layer rebuilt: --no-cache, host package cache warm), warm rebuild with
nothing changed (content-hash reuse), rebuild after a model-only change, rebuild after a
score.py-only change (with how many layers each change touched), image sizes, and
`docker run` -> first 200 on /score. Prints a table and writes bench/results/<time>.json.

Usage: python3 bench/bench.py [--runs N]
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

from compiler.engines import DockerEngine  # noqa: E402
from compiler.runtime.http import request  # noqa: E402


def pkgc(env: dict, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "-q", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"pkgc {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def build(env: dict, spec: Path, model: str, *extra: str) -> tuple[dict, float]:
    started = time.monotonic()
    result = json.loads(pkgc(env, "build", str(spec), "--model", model, "--json", *extra))
    return result, time.monotonic() - started


def layers_changed(engine: DockerEngine, before: str, after: str) -> int:
    old, new = engine.image_info(before).layers, engine.image_info(after).layers
    shared = 0
    for a, b in zip(old, new):
        if a != b:
            break
        shared += 1
    return len(new) - shared


def first_score(engine: DockerEngine, image: str, body: bytes, env: dict[str, str] | None = None) -> float:
    """Seconds from `docker run` to the first 200 on POST /score."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    handle = engine.run(image, 5001, port, [], env or {})
    try:
        while time.monotonic() - started < 120:
            try:
                if request(f"http://127.0.0.1:{port}/score", data=body, timeout=2).status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("the package never answered /score")
    finally:
        engine.stop(handle.container_id)


def report(figures: dict, prefix: str) -> Path:
    """Round, write ``bench/results/<prefix><time>.json`` and print the figures as a table."""
    figures = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
    out = ROOT / "bench" / "results" / time.strftime(f"{prefix}%Y%m%dT%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(f"(written to {out})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of the start-up measurement")
    args = parser.parse_args()
    engine = DockerEngine.connect()
    work = Path(tempfile.mkdtemp(prefix="pkgc-bench-"))
    env = dict(os.environ, PKGC_WORKSPACE=str(work / "workspace"))
    example = work / "example"
    shutil.copytree(ROOT / "examples" / "sklearn-regression", example, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
    spec = example / "package-azure-app.yml"
    pkgc(env, "base-image", "build", "debian-bookworm")
    model1 = pkgc(env, "model", "create", "--name", "bench-model", "--path", str(example / "model")).strip()
    pkgc(env, "environment", "create", "--file", str(example / "environment" / "sklearn-regression-env.yml"))
    figures: dict[str, object] = {}

    pkgc(env, "build", str(spec), "--model", model1, "--emit", "plan")  # lock + fetch outside the timings
    cold, figures["cold_build_s"] = build(env, spec, model1, "--no-cache")
    _, figures["unchanged_rebuild_s"] = build(env, spec, model1)

    subprocess.run([sys.executable, str(example / "train.py"), str(work / "model2" / "model")], check=True, capture_output=True)
    (work / "model2" / "model" / "sklearn_regression_model.pkl").write_bytes(
        (work / "model2" / "model" / "sklearn_regression_model.pkl").read_bytes() + b"\0"
    )
    model2 = pkgc(env, "model", "create", "--name", "bench-model", "--path", str(work / "model2" / "model")).strip()
    after_model, figures["model_change_rebuild_s"] = build(env, spec, model2)
    figures["model_change_layers_rebuilt"] = layers_changed(engine, cold["image_id"], after_model["image_id"])

    score = example / "src" / "score.py"
    score.write_text(score.read_text() + "\n# a change to the scoring script\n")
    after_code, figures["code_change_rebuild_s"] = build(env, spec, model2)
    figures["code_change_layers_rebuilt"] = layers_changed(engine, after_model["image_id"], after_code["image_id"])
    figures["layers_total"] = len(engine.image_info(after_code["image_id"]).layers)

    readonly, _ = build(env, example / "package-moe.yml", model2)
    base = engine.image_info("pkgc/base-debian-bookworm:latest")
    figures["base_image_mb"] = round(base.size / 1e6, 1)
    figures["copy_image_mb"] = round(after_code["size_bytes"] / 1e6, 1)
    figures["readonly_image_mb"] = round(readonly["size_bytes"] / 1e6, 1)
    body = (example / "sample-request.json").read_bytes()
    runs = sorted(first_score(engine, after_code["image"], body) for _ in range(args.runs))
    figures["run_to_first_score_s_median"] = round(runs[len(runs) // 2], 2)
    report(figures, "")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
