"""Benchmark the two back ends side by side on the sklearn example (a script, not a test).

With the host package cache warm and the lock present (made before any timing):
  - cold build: docker back end (--no-cache), OCI back end with an empty OCI store, with the engine
    (base imported from it, image loaded into it) and with no engine (--output oci:DIR);
  - model-only rebuild: each back end, plus the OCI back end with no engine;
  - image size: engine size of each, and the OCI back end's compressed blobs;
  - start-up (`docker run` -> first 200 on /score): the OCI-built image with its unchecked-hash
    byte-code, and the same image forced to run without it (PYTHONPYCACHEPREFIX on an empty folder,
    PYTHONDONTWRITEBYTECODE: every module compiled in memory at each start).
Prints a table and writes bench/results/backends-<time>.json.

Usage: python3 bench/backends.py [--runs N] [--prefix NAME]   (images are named pkgc/<prefix>-*)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import build, first_score, pkgc, report  # noqa: E402
from compiler.engines import DockerEngine  # noqa: E402
from compiler.options import load_options  # noqa: E402

NOWHERE = "unix:///nonexistent/docker.sock"


def fresh_cache(work: Path, name: str, pyc_from: Path | None = None) -> Path:
    """A cache folder with the warm package files (hard links) and an empty OCI store; with
    ``pyc_from``, that cache's compiled files too (a warm pyc cache)."""
    cache = work / name
    shutil.copytree(load_options().cache_dir / "files", cache / "files", copy_function=os.link)
    if pyc_from is not None and (pyc_from / "pyc").is_dir():
        shutil.copytree(pyc_from / "pyc", cache / "pyc", copy_function=os.link)
    return cache


def remove_images(engine: DockerEngine, repositories: list[str]) -> None:
    """Every tag of the bench's own repositories, so no run reuses an image of an earlier one."""
    for repository in repositories:
        for image in engine._api.images(name=repository):
            for tag in image.get("RepoTags") or []:
                engine.remove_image(tag)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of each start-up measurement")
    parser.add_argument("--prefix", default="bench-backends", help="target names: <prefix>-oci, <prefix>-docker, ...")
    args = parser.parse_args()
    engine = DockerEngine.connect()
    work = Path(tempfile.mkdtemp(prefix="pkgc-bench-backends-"))
    env = dict(os.environ, PKGC_WORKSPACE=str(work / "workspace"))
    example = work / "example"
    shutil.copytree(ROOT / "examples" / "sklearn-regression", example, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
    source = (example / "package-azure-app.yml").read_text()
    specs = {}
    for name in ("oci", "docker", "noengine"):
        specs[name] = example / f"package-{name}.yml"
        specs[name].write_text(source.replace("sklearn-regression-docker-pkg", f"{args.prefix}-{name}"))
    repositories = [f"pkgc/{args.prefix}-{name}" for name in specs]
    remove_images(engine, repositories)
    pkgc(env, "base-image", "build", "debian-bookworm")
    model1 = pkgc(env, "model", "create", "--name", "bench-model", "--path", str(example / "model")).strip()
    pkgc(env, "environment", "create", "--file", str(example / "environment" / "sklearn-regression-env.yml"))
    for spec in specs.values():
        pkgc(env, "build", str(spec), "--model", model1, "--emit", "plan")  # lock + fetch outside the timings
    figures: dict[str, object] = {}

    oci_env = dict(env, PKGC_CACHE_DIR=str(fresh_cache(work, "cache-oci")))
    cold_oci, figures["cold_build_oci_s"] = build(oci_env, specs["oci"], model1, "--builder", "oci")
    no_engine_env = dict(env, PKGC_CACHE_DIR=str(fresh_cache(work, "cache-noengine")), DOCKER_HOST=NOWHERE)
    shutil.copytree(Path(oci_env["PKGC_CACHE_DIR"]) / "oci", Path(no_engine_env["PKGC_CACHE_DIR"]) / "oci-seed")
    base_store = Path(no_engine_env["PKGC_CACHE_DIR"]) / "oci-seed"  # the base image only, as `base-image build` leaves it
    for sub in ("layers", "scans"):
        shutil.rmtree(base_store / sub, ignore_errors=True)
    os.rename(base_store, Path(no_engine_env["PKGC_CACHE_DIR"]) / "oci")
    out = work / "out"
    _, figures["cold_build_oci_no_engine_s"] = build(no_engine_env, specs["noengine"], model1, "--output", f"oci:{out}")
    cold_docker, figures["cold_build_docker_s"] = build(env, specs["docker"], model1, "--builder", "docker", "--no-cache")

    model_file = work / "model2" / "sklearn_regression_model.pkl"
    model_file.parent.mkdir(parents=True)
    model_file.write_bytes((example / "model" / "sklearn_regression_model.pkl").read_bytes() + b"\0")
    model2 = pkgc(env, "model", "create", "--name", "bench-model", "--path", str(model_file.parent)).strip()
    after_oci, figures["model_rebuild_oci_s"] = build(oci_env, specs["oci"], model2, "--builder", "oci")
    figures["model_rebuild_oci_in_process_s"] = after_oci["build_seconds"]
    no_engine_model = pkgc(no_engine_env, "model", "create", "--name", "bench-model", "--path", str(model_file.parent)).strip()
    _, figures["model_rebuild_oci_no_engine_s"] = build(no_engine_env, specs["noengine"], no_engine_model, "--output", f"oci:{out}")
    _, figures["model_rebuild_docker_s"] = build(env, specs["docker"], model2, "--builder", "docker")

    figures["image_oci_mb"] = round(cold_oci["size_bytes"] / 1e6, 1)
    figures["image_docker_mb"] = round(cold_docker["size_bytes"] / 1e6, 1)
    figures["oci_layout_compressed_mb"] = round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6, 1)
    body = (example / "sample-request.json").read_bytes()
    no_pyc = {"PYTHONPYCACHEPREFIX": "/tmp/pkgc-no-bytecode", "PYTHONDONTWRITEBYTECODE": "1"}
    variants = {"first_200_oci_bytecode_s": (cold_oci["image"], {}), "first_200_oci_no_bytecode_s": (cold_oci["image"], no_pyc),
                "first_200_docker_s": (cold_docker["image"], {})}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits every variant alike
        for name, (image, run_env) in variants.items():
            times[name].append(first_score(engine, image, body, run_env))
    figures.update({name: median(values) for name, values in times.items()})
    report(figures, "backends-")
    remove_images(engine, repositories)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
