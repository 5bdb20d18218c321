"""BentoML building the same N packages as bench/fleet.py (its ``--bentoml-fleet``): the same M Ridge
models and E environments (the conda files' pip packages; BentoML's python section takes no conda
packages, and python=3.11 is the base's), on K simulated runners (threads) in parallel. Each runner has
its own empty BENTOML_HOME (model and bento stores) and its own uv cache: BentoML has no store shared
between runners, so that is its fleet. Per package, timed: the model into the runner's store
(``bentoml.sklearn.save_model``, as pkgc's runners time ``pkgc model create``), ``bentoml build``
(which locks the packages with uv) and ``bentoml containerize`` with the legacy builder
(DOCKER_BUILDKIT=0), on the base ../shared/peers/bentoml.sh uses (its venv, its BENTO_BASE stand-in of
python:3.11.7-slim with the CA registered). The runners share this host's one Docker engine: each gets
its own copy of the base (the base plus one LABEL, made before the clock starts), so Docker's layer
cache is per runner, as on separate CI machines; a runner reuses its own layers for the environments
it built before. Images are named ``fleetbento-*``; ``cleanup`` removes them and the stores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PREFIX = "fleetbento"
SERVICE = '''import numpy as np

import bentoml


@bentoml.service
class RidgeRegressor:
    def __init__(self) -> None:
        # "ridge" is the alias bentofile.yaml gives the model this bento was built with
        self.model = bentoml.sklearn.load_model("ridge")

    @bentoml.api
    def predict(self, data: list[list[float]]) -> list[float]:
        # the example's request body: {"data": [[...10 features...], ...]}
        return self.model.predict(np.asarray(data, dtype=float)).tolist()
'''
SAVE_MODEL = "import sys, joblib, bentoml; bentoml.sklearn.save_model(sys.argv[2], joblib.load(sys.argv[1]))"


@dataclass(frozen=True)
class BentoSetup:
    venv: Path  # peers.sh's BentoML venv (bentoml + scikit-learn)
    base: str  # peers.sh's BENTO_BASE


@dataclass
class BentoRunner:
    runner: int
    seconds: float = 0.0
    package_seconds: dict[str, float] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)  # package -> image
    error: str = ""


def setup(work: Path, peers: Path, base_image: str) -> BentoSetup:
    """Source peers.sh (untimed, cached under work/peers): BentoML's venv and base, as bentoml.sh has them."""
    script = (f"export BASE={base_image} PEERS_TMP={work / 'peers'}; source {peers} || exit 1; "
              'echo "$BENTO_DIR/venv"; echo "$BENTO_BASE"')  # fmt: skip
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"fleet: BentoML's setup (peers.sh) failed: {proc.stderr.strip()[-300:]}")
    venv, base = proc.stdout.strip().splitlines()[-2:]
    return BentoSetup(Path(venv), base)


def pip_packages(conda_file: Path) -> list[str]:
    """The pip packages of a conda file; a conda package other than python and pip is refused."""
    spec = yaml.safe_load(conda_file.read_text()) or {}
    pip, other = [], []
    for dep in spec.get("dependencies") or []:
        if isinstance(dep, dict):
            pip += [str(p) for p in dep.get("pip") or []]
        elif str(dep).split("=")[0].strip() not in ("python", "pip"):
            other.append(str(dep))
    if other:
        raise SystemExit(f"fleet: {conda_file}: dependencies: conda packages BentoML's python section cannot take: {', '.join(other)}")
    return pip


def bentofile(packages: list[str], base: str, model_tag: str) -> str:
    lines = ['service: "service:RidgeRegressor"', "include:", "  - service.py", "python:", "  packages:"]
    lines += [f"    - {p}" for p in packages]
    lines += ["docker:", f"  base_image: {base}", "models:", f"  - tag: {model_tag}", "    alias: ridge"]
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], env: dict, what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        tail = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()][-3:]
        raise RuntimeError(f"{what} failed ({proc.returncode}): {' | '.join(tail)[-600:]}")
    return proc.stdout


def runner_base(setup_: BentoSetup, index: int, run_id: str) -> str:
    """The base with one LABEL: another image id, so this runner's layer cache is its own."""
    tag = f"{PREFIX}-base-r{index}:{run_id}"
    dockerfile = f"FROM {setup_.base}\nLABEL {PREFIX}.runner={index}\n"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, capture_output=True, text=True, check=True,
                   env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
    return tag


def run_runner(index: int, packages: list, work: Path, setup_: BentoSetup, base: str, run_id: str, report: BentoRunner) -> None:
    """Build this runner's share: model into its own store, bentoml build, bentoml containerize."""
    root = work / "runs" / "bentoml" / f"r{index}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {**os.environ, "BENTOML_HOME": str(root / "home"), "BENTOML_DO_NOT_TRACK": "True", "DOCKER_BUILDKIT": "0",
           "UV_CACHE_DIR": str(root / "uv-cache")}  # fmt: skip
    bentoml, python = str(setup_.venv / "bin" / "bentoml"), str(setup_.venv / "bin" / "python")
    imported: set[int] = set()
    started = time.monotonic()
    try:
        for package in packages:
            begun = time.monotonic()
            model_tag = f"fleet-ridge-m{package.model}:v1"
            if package.model not in imported:
                model = work / "models" / f"m{package.model}" / "sklearn_regression_model.pkl"
                _run([python, "-c", SAVE_MODEL, str(model), model_tag], env, f"runner {index}: model m{package.model} into BentoML's store")
                imported.add(package.model)
            project = root / "proj" / package.name
            project.mkdir(parents=True)
            (project / "service.py").write_text(SERVICE)
            requirements = pip_packages(work / "envs" / f"e{package.env}" / "conda.yaml")
            (project / "bentofile.yaml").write_text(bentofile(requirements, base, model_tag))
            out = _run([bentoml, "build", "-o", "tag"], env, f"runner {index}: bentoml build {package.name}", cwd=project)
            tag = next(line for line in reversed(out.splitlines()) if "__tag__:" in line).split("__tag__:", 1)[1].strip()
            image = f"{PREFIX}-{package.name}:{run_id}"
            _run([bentoml, "containerize", tag, "--backend", "docker", "-t", image, "--opt", "force-rm"], env,
                 f"runner {index}: bentoml containerize {package.name}")  # fmt: skip
            report.images[package.name] = image
            report.package_seconds[package.name] = round(time.monotonic() - begun, 1)
    except (RuntimeError, subprocess.CalledProcessError, StopIteration) as exc:
        report.error = str(exc)
    report.seconds = round(time.monotonic() - started, 1)


def image_bytes(image: str) -> int:
    return int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True, check=True).stdout)


def _history(image: str) -> list[tuple[str, int]]:
    out = subprocess.run(["docker", "history", "--no-trunc", "--human=false", "--format", "{{.ID}}\t{{.Size}}", image],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [(i, int(s)) for i, s in (line.split("\t") for line in out.splitlines() if line)]


def distinct_bytes(images: list[str], base: str) -> int:
    """The engine's bytes for all the images: the base once, plus each layer above it once (the legacy
    builder keeps an image id per step, so a layer a runner reused counts once)."""
    below = {i for i, _s in _history(base)}
    above = {i: s for image in images for i, s in _history(image) if i not in below and i != "<missing>"}
    return image_bytes(base) + sum(above.values())


def check_answer(image: str, body: dict, expected: list[float], run_id: str) -> dict:
    """Run the image on a free loopback port, POST the example's request to /predict, compare with the
    host model's prediction, remove the container."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"{PREFIX}-check-{run_id}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:3000", image], capture_output=True, check=True)
    started, answer, error = time.monotonic(), None, ""
    try:
        while time.monotonic() - started < 180:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=5) as r:
                    answer = json.loads(r.read(1 << 20))
                    break
            except OSError as exc:
                error = str(exc)
                time.sleep(0.5)
    finally:
        logs = subprocess.run(["docker", "logs", "--tail", "5", name], capture_output=True, text=True)
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    matches = answer is not None and len(answer) == len(expected) and all(abs(a - e) <= 1e-6 * max(1.0, abs(e)) for a, e in zip(answer, expected))
    result = {"image": image, "answer": answer, "expected": expected, "matches": matches,
              "seconds_to_answer": round(time.monotonic() - started, 1)}  # fmt: skip
    if answer is None:
        result["error"] = f"{error}; {(logs.stdout + logs.stderr).strip()[-300:]}"
    return result


def run_fleet(packages: list, runners: int, work: Path, setup_: BentoSetup, run_id: str) -> tuple[float, list[BentoRunner], list[str]]:
    """The fleet: K runners (threads) in parallel, dealt as bench/fleet.py deals pkgc's packages."""
    bases = [runner_base(setup_, r, run_id) for r in range(runners)]
    shares = [packages[r::runners] for r in range(runners)]
    reports = [BentoRunner(r) for r in range(runners)]
    threads = [threading.Thread(target=run_runner, args=(r, shares[r], work, setup_, bases[r], run_id, reports[r])) for r in range(runners)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started, reports, bases


def cleanup(run_id: str, work: Path) -> None:
    """Remove this run's fleetbento images (and their intermediate images) and the runners' stores."""
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout
    mine = [ref for ref in out.splitlines() if ref.startswith(f"{PREFIX}-") and ref.endswith(f":{run_id}")]
    mine.sort(key=lambda ref: ref.startswith(f"{PREFIX}-base-"))  # the runners' bases after the images on them
    if mine:
        subprocess.run(["docker", "rmi", *mine], capture_output=True)
    shutil.rmtree(work / "runs" / "bentoml", ignore_errors=True)


def fleet(packages: list, runners: int, work: Path, peers: Path, base_image: str, request: Path, keep: bool = False) -> dict:
    """BentoML's fleet figures: wall, per runner, per package, image bytes, one image's real answer."""
    import joblib

    setup_ = setup(work, peers, base_image)
    run_id = f"{os.getpid()}-{int(time.time())}"
    load_before = os.getloadavg()
    try:
        wall, reports, bases = run_fleet(packages, runners, work, setup_, run_id)
        load_after = os.getloadavg()
        errors = [r.error for r in reports if r.error]
        images = {p: i for r in reports for p, i in r.images.items()}
        sizes = {p: image_bytes(i) for p, i in images.items()}
        base_size = image_bytes(setup_.base)
        figures = {
            "store": "one empty BENTOML_HOME per runner (BentoML shares no store between runners)",
            "base": setup_.base, "packages": len(images), "wall_seconds": round(wall, 1),
            "runner_seconds": [r.seconds for r in reports],
            "package_seconds": {p: s for r in reports for p, s in r.package_seconds.items()},
            "image_bytes": sizes, "image_bytes_total": sum(sizes.values()), "base_bytes": base_size,
            "bytes_above_base_total": sum(s - base_size for s in sizes.values()),
            "distinct_bytes": distinct_bytes(list(images.values()), setup_.base) if images else 0,
            "load_before": load_before, "load_after": load_after,
        }  # fmt: skip
        if errors:
            figures["errors"] = errors
        if images:
            first = next(p for p in packages if p.name in images)
            body = json.loads(request.read_text())
            model = joblib.load(work / "models" / f"m{first.model}" / "sklearn_regression_model.pkl")
            expected = [float(v) for v in model.predict(body["data"])]
            figures["answer"] = {"package": first.name, **check_answer(images[first.name], body, expected, run_id)}
        return figures
    finally:
        if not keep:
            cleanup(run_id, work)
