"""Benchmark the cost of a second platform (a script, not a test).

The bundled sklearn example, copy mode, from an empty OCI store and pyc cache (the host package cache
warm; the two-platform lock and both bases made before the timings):
  1. ``pkgc build --platform linux/amd64``: the first platform, every layer written;
  2. ``pkgc build --platform linux/amd64,linux/arm64``: the same package with arm64 added, the amd64
     image already built: what the second platform costs (its environment layers, its config and
     manifest, the index; the runtime, model and code layers are the amd64 image's).
Whole CLI calls with the engine loading the host's image. Prints the figures and writes
bench/results/platforms-<time>.json.

Usage: python3 bench/platforms.py
"""

from __future__ import annotations

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

from backends import fresh_cache  # noqa: E402
from bench import report  # noqa: E402

BOTH = "linux/amd64,linux/arm64"


def pkgc(env: dict, *args: str) -> tuple[str, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "-q", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"pkgc {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout, time.monotonic() - started


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="pkgc-bench-platforms-"))
    try:
        cache = fresh_cache(work, "cache")
        env = dict(os.environ, PKGC_WORKSPACE=str(work / "workspace"), PKGC_CACHE_DIR=str(cache))
        example = work / "example"
        shutil.copytree(ROOT / "examples" / "sklearn-regression", example, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
        model, _ = pkgc(env, "model", "create", "--name", "bench-platforms", "--path", str(example / "model"))
        pkgc(env, "environment", "create", "--file", str(example / "environment" / "sklearn-regression-env.yml"))
        spec = example / "package-azure-app.yml"
        pkgc(env, "base-image", "build", "debian-bookworm", "--platform", BOTH)
        pkgc(env, "lock", str(spec), "--model", model.strip(), "--platform", BOTH)
        load = os.getloadavg()[0]
        first_out, first = pkgc(env, "build", str(spec), "--model", model.strip(), "--platform", "linux/amd64", "--json")
        both_out, second = pkgc(env, "build", str(spec), "--model", model.strip(), "--platform", BOTH, "--json")
        one, two = json.loads(first_out), json.loads(both_out)
        arm64 = next(p for p in two["platforms"] if p["platform"] == "linux/arm64")
        amd64 = next(p for p in two["platforms"] if p["platform"] == "linux/amd64")
        shared = {l["digest"] for l in amd64["layers"]} & {l["digest"] for l in arm64["layers"]}
        report({
            "first_platform_s (amd64, cold)": first,
            "second_platform_s (arm64 added)": second,
            "ratio second/first (target <= 0.5)": second / first,
            "amd64 manifest unchanged by adding arm64": amd64["manifest_digest"] == one["manifest_digest"],
            "arm64 layers shared with amd64": f"{len([l for l in arm64['layers'] if l['digest'] in shared])} of {len(arm64['layers'])}",
            "arm64 new bytes (MB)": sum(l["size"] for l in arm64["layers"] if l["digest"] not in shared) / 1e6,
            "amd64 layer bytes (MB)": sum(l["size"] for l in amd64["layers"]) / 1e6,
            "load average (1 min) at start": load,
        }, "platforms-")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
